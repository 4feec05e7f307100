//! Turn rotation: who takes the next walk-in.
//!
//! Eligible: active therapists that are `available` and have every skill the
//! visit's services need. Order: fewest weighted turns today, then longest
//! available (earliest became free), then earliest clock-in, then id (so the
//! order is total). A therapist skipped for lack of skill is not moved: the
//! order is computed, never stored, so skipping cannot cost a place.

use std::cmp::Ordering;

use super::state::{Presence, Staff, State, Visit};
use super::{Id, Role};

fn rotation_cmp(a: &Staff, b: &Staff, day: u32) -> Ordering {
    a.turns_on(day)
        .total_cmp(&b.turns_on(day))
        .then(a.available_since.cmp(&b.available_since))
        .then(a.clocked_in_at.cmp(&b.clocked_in_at))
        .then(a.id.cmp(&b.id))
}

/// Clocked-in therapists (available ones first, in rotation order; then those
/// busy or on break, in the same order): the list staff screens show.
pub fn rotation(state: &State, day: u32) -> Vec<Id> {
    let mut on_floor: Vec<&Staff> = state
        .staff
        .values()
        .filter(|s| s.active && s.role == Role::Therapist && s.presence != Presence::Off)
        .collect();
    on_floor.sort_by(|a, b| {
        let a_free = a.presence != Presence::Available;
        let b_free = b.presence != Presence::Available;
        a_free.cmp(&b_free).then(rotation_cmp(a, b, day))
    });
    on_floor.into_iter().map(|s| s.id).collect()
}

/// The skills a visit needs (from its services' skill tags).
pub fn skills_needed<'a>(state: &'a State, visit: &Visit) -> Vec<&'a str> {
    let mut skills: Vec<&str> = visit
        .service_ids
        .iter()
        .filter_map(|id| state.services.get(id))
        .filter_map(|s| s.skill.as_deref())
        .collect();
    skills.sort_unstable();
    skills.dedup();
    skills
}

pub fn has_skills(therapist: &Staff, needed: &[&str]) -> bool {
    needed
        .iter()
        .all(|skill| therapist.skills.iter().any(|s| s == skill))
}

/// Available therapists who can take `visit`, in rotation order.
pub fn eligible<'a>(state: &'a State, visit: &Visit, day: u32) -> Vec<&'a Staff> {
    let needed = skills_needed(state, visit);
    let mut list: Vec<&Staff> = state
        .staff
        .values()
        .filter(|s| {
            s.active
                && s.role == Role::Therapist
                && s.presence == Presence::Available
                && has_skills(s, &needed)
        })
        .collect();
    list.sort_by(|a, b| rotation_cmp(a, b, day));
    list
}

/// The weighted turn a visit is worth: the sum of its services' weights.
pub fn turn_weight(state: &State, visit: &Visit) -> f64 {
    visit
        .service_ids
        .iter()
        .filter_map(|id| state.services.get(id))
        .map(|s| s.turn_weight)
        .sum()
}
