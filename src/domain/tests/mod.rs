//! Tests of the pure domain core: every command in every relevant state,
//! every command × role, the therapist and visit state machines, the turn
//! rotation, the role-filtered views and a seeded random day on the floor.
//!
//! `harness` drives the core exactly as the writer does (decide, then apply
//! each event with the next `seq`) and checks on every applied event that
//! `State::touched` covers what `apply` changed.

mod archive;
mod book;
mod book_sim;
mod books;
mod books_day;
mod counter;
mod counter_sim;
mod customers;
mod harness;
mod matrix;
mod money;
mod presence;
mod privacy;
mod rooms;
mod rotation;
mod simulation;
mod staff;
mod views;
mod visits;
