//! Turn rotation: who takes the next walk-in.
//!
//! Eligible: active therapists that are `available` and have every skill the
//! visit's services need. Order: fewest weighted turns today, then longest
//! available (earliest became free), then earliest clock-in, then id (so the
//! order is total). A therapist skipped for lack of skill is not moved: the
//! order is computed, never stored, so skipping cannot cost a place.

use std::cmp::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::{Presence, Staff, State, Visit};
use super::{invalid, DomainError, Id, Role};

/// A weighted turn count in exact thousandths: a service weighted 1.5 is
/// worth `Turns(1500)`, and 0.1 + 0.2 is exactly 0.3. Sums and comparisons
/// are integer arithmetic, so a tie is a tie.
///
/// On the wire and in the log it is the decimal it stands for (`1.5`): the
/// log's layout since schema 1 holds an `f64` there, and every thousandth
/// survives the round trip through an `f64` exactly (decoding rounds to the
/// nearest thousandth, which also repairs sums an older build added up in
/// floating point, such as 0.30000000000000004).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Turns(pub u32);

impl Turns {
    pub const ZERO: Turns = Turns(0);
    /// One whole turn: the default weight of a service.
    pub const ONE: Turns = Turns(1000);
    /// The largest weight a service may carry.
    pub const MAX_WEIGHT: Turns = Turns(10_000);

    /// A decimal weight (0.001 steps) from a client, or `invalid` naming `field`.
    pub fn from_weight(field: &str, weight: f64) -> Result<Turns, DomainError> {
        let milli = weight * 1000.0;
        let rounded = milli.round();
        if !weight.is_finite()
            || rounded < 0.0
            || rounded > f64::from(Self::MAX_WEIGHT.0)
            || (milli - rounded).abs() > 1e-6
        {
            return Err(invalid(format!(
                "`{field}` must be between 0 and 10 in steps of 0.001"
            )));
        }
        Ok(Turns(rounded as u32))
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    pub fn saturating_add(self, other: Turns) -> Turns {
        Turns(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Turns) -> Turns {
        Turns(self.0.saturating_sub(other.0))
    }
}

impl std::iter::Sum for Turns {
    fn sum<I: Iterator<Item = Turns>>(iter: I) -> Turns {
        iter.fold(Turns::ZERO, Turns::saturating_add)
    }
}

impl std::fmt::Display for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As the wire writes it: always with a decimal point (`1.0`, `0.3`).
        write!(f, "{:?}", self.as_f64())
    }
}

impl Serialize for Turns {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Turns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Turns, D::Error> {
        let x = f64::deserialize(d)?;
        let milli = (x * 1000.0).round();
        if !milli.is_finite() || milli < 0.0 || milli > f64::from(u32::MAX) {
            return Err(serde::de::Error::custom(format!("turns {x} out of range")));
        }
        Ok(Turns(milli as u32))
    }
}

fn rotation_cmp(a: &Staff, b: &Staff, day: u32) -> Ordering {
    a.turns_on(day)
        .cmp(&b.turns_on(day))
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
pub fn turn_weight(state: &State, visit: &Visit) -> Turns {
    visit
        .service_ids
        .iter()
        .filter_map(|id| state.services.get(id))
        .map(|s| s.turn_weight)
        .sum()
}
