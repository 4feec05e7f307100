//! spa-hub: the spa floor's single source of truth and on-site realtime hub.
//!
//! The crate's map:
//! - [`domain`]: the pure core (state, commands, events, rules, views); no I/O.
//! - [`config`]: env file + environment → [`config::Config`]; bad values exit 78.
//! - [`store`]: sled + postcard: schema version, migrations, event log, records.
//! - [`writer`]: the single writer: batches, one transaction, one flush, then
//!   replies and publishes; the cleanup and overtime timers.
//! - [`clock`]: the wall clock and the spa's local day.
//! - [`logging`]: the `log` facade to the journal or stderr.

pub mod auth;
pub mod bench;
pub mod bench_book;
mod bench_hub;
mod bench_poll;
pub mod bench_year;
pub mod client;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod daemon;
pub mod domain;
pub mod gate;
pub mod http;
pub mod hub;
pub mod lights;
pub mod lockout;
pub mod logging;
pub mod store;
pub mod web;
pub mod writer;
