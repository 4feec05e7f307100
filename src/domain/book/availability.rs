//! `booking.availability`: for a date and services (and optionally one
//! therapist), every start on the grid at which a booking would be
//! accepted, each with the therapist and room it would get — the same
//! choice `booking.create` makes, through the same checks.

use serde_json::{json, Value};

use super::super::command::BookingAvailability;
use super::super::decide::{Decided, Reply};
use super::super::{invalid, DomainError, Now, Role, Rules};
use super::decide::{plan, room_blocker, rooms_in_order, sort_for_any, therapist_blocker};
use super::time;
use super::MINUTE_MS;
use crate::domain::rotation;
use crate::domain::state::{Staff, State};

pub fn availability(
    state: &State,
    a: &BookingAvailability,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let date = time::parse_date("date", &a.date)?;
    let plan = plan(state, &a.service_ids)?;
    let needed: Vec<&str> = plan.skills.iter().map(String::as_str).collect();
    let mut therapists: Vec<&Staff> = match a.therapist_id {
        Some(id) => vec![state
            .staff
            .get(&id)
            .filter(|t| t.active && t.role == Role::Therapist)
            .ok_or_else(|| invalid(format!("`therapist_id`: {id} is not an active therapist")))?],
        None => state
            .staff
            .values()
            .filter(|t| t.active && t.role == Role::Therapist)
            .collect(),
    };
    therapists.retain(|t| rotation::has_skills(t, &needed));
    sort_for_any(state, &mut therapists, date);
    // Only therapists with a shift that day can take anything.
    let shifts: Vec<(&Staff, i64, i64)> = therapists
        .iter()
        .filter_map(|t| state.shift(t.id, date).map(|s| (*t, s.start_ms, s.end_ms)))
        .collect();
    let rooms = rooms_in_order(state);
    let grid_ms = i64::from(rules.booking_grid_min.clamp(1, 60)) * MINUTE_MS;
    let horizon = now.ms + i64::from(rules.booking_horizon_days) * 24 * 60 * MINUTE_MS;
    let length = i64::from(plan.minutes) * MINUTE_MS;
    let mut slots: Vec<Value> = Vec::new();
    let Some((day_start, day_end)) = time::day_bounds(&rules.tz, date) else {
        return Err(invalid("`date` is out of range"));
    };
    let first = shifts.iter().map(|s| s.1).min().unwrap_or(day_end);
    let last = shifts.iter().map(|s| s.2).max().unwrap_or(day_start);
    // Grid points are local times; with the whole-hour offsets of nearly
    // every zone they are also a fixed step of instants from midnight.
    let mut start = day_start + (first - day_start + grid_ms - 1).max(0) / grid_ms * grid_ms;
    while start + length <= last {
        if start >= now.ms && start <= horizon {
            // The room does not depend on the therapist: find it once.
            let room = rooms
                .iter()
                .find(|r| room_blocker(state, &plan, **r, start, date, None, now).is_none());
            let therapist = room.and_then(|_| {
                shifts.iter().find(|(t, from, to)| {
                    start >= *from
                        && start + length <= *to
                        && therapist_blocker(state, &plan, t.id, start, date, None, now).is_none()
                })
            });
            if let (Some(r), Some((t, _, _))) = (room, therapist) {
                let (_, local) = time::local_of(&rules.tz, start);
                slots.push(json!({
                    "start": start,
                    "time": time::hhmm(local),
                    "therapist_id": t.id,
                    "room_id": r,
                }));
            }
        }
        start += grid_ms;
    }
    Ok(Decided {
        events: Vec::new(),
        reply: Reply::Json(json!({
            "date": time::date_words(date),
            "service_ids": plan.service_ids,
            "minutes": plan.minutes,
            "slots": slots,
        })),
    })
}
