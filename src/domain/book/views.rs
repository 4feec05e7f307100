//! Who sees what of the book (DOMAIN.md, "Who sees what"): the office
//! everything; a therapist their own bookings in full and others' without
//! phone and notes; a monitor today's bookings as time, number and room,
//! never a name; a customer their own booking only, without staff notes.

use serde_json::{json, Value};

use super::super::state::State;
use super::super::views::Viewer;
use super::super::{Id, Now};
use super::{time, Block, Booking, BookingState, Shift};

pub fn shift(s: &Shift) -> Value {
    json!({
        "therapist_id": s.therapist_id,
        "date": time::date_words(s.date),
        "start": s.start,
        "end": s.end,
        "start_ms": s.start_ms,
        "end_ms": s.end_ms,
    })
}

pub fn block(b: &Block) -> Value {
    json!({
        "id": b.id,
        "therapist_id": b.therapist_id,
        "room_id": b.room_id,
        "start": b.start_ms,
        "end": b.end_ms,
        "reason": b.reason,
    })
}

pub fn shifts_on(state: &State, date: u32, therapist: Option<Id>) -> Vec<Value> {
    state
        .shifts
        .values()
        .filter(|s| s.date == date && therapist.is_none_or(|t| s.therapist_id == t))
        .map(shift)
        .collect()
}

pub fn blocks_between(state: &State, from: i64, to: i64, therapist: Option<Id>) -> Vec<Value> {
    state
        .blocks
        .values()
        .filter(|b| b.end_ms > from && b.start_ms < to)
        .filter(|b| therapist.is_none_or(|t| b.therapist_id == Some(t) || b.room_id.is_some()))
        .map(block)
        .collect()
}

/// Everything staff may know of a booking (never its token hash).
pub fn booking_full(b: &Booking) -> Value {
    json!({
        "id": b.id,
        "number": b.number,
        "date": time::date_words(b.date),
        "time": b.time,
        "start": b.start_ms,
        "end": b.end_ms,
        "room_until": b.room_until_ms,
        "customer_name": b.customer_name,
        "phone": b.phone,
        "notes": b.notes,
        "service_ids": b.service_ids,
        "therapist_id": b.therapist_id,
        "room_id": b.room_id,
        "any_therapist": b.any_therapist,
        "state": b.state.as_str(),
        "state_since": b.state_since,
        "visit_id": b.visit_id,
        "reason": b.reason,
        "cancelled_by_customer": b.cancelled_by_customer,
        "created_at": b.created_at,
        "minutes": b.service_minutes,
    })
}

/// What the customer of a booking sees: their own booking, no staff notes.
pub fn booking_for_customer(b: &Booking, state: &State) -> Value {
    let services: Vec<Value> = b
        .service_ids
        .iter()
        .filter_map(|id| state.services.get(id))
        .map(|s| json!({"name": s.name, "duration_min": s.duration_min}))
        .collect();
    json!({
        "id": b.id,
        "number": b.number,
        "date": time::date_words(b.date),
        "time": b.time,
        "start": b.start_ms,
        "end": b.end_ms,
        "customer_name": b.customer_name,
        "services": services,
        "therapist": state.staff.get(&b.therapist_id).map(|t| t.name.clone()),
        "room": state.rooms.get(&b.room_id).map(|r| r.name.clone()),
        "state": b.state.as_str(),
        "visit_id": b.visit_id,
    })
}

/// A booking as `viewer` may see it, or `None`.
pub fn booking_for(viewer: Viewer, b: &Booking, state: &State, now: Now) -> Option<Value> {
    // The customer record: to the office, and name and notes to the
    // booking's own therapist.
    let with_customer = |mut v: Value| {
        if let Some(m) = v.as_object_mut() {
            let c = state.customer_of_booking(b.id);
            m.insert("customer_id".into(), json!(c.map(|c| c.id)));
            m.insert(
                "customer".into(),
                c.map(crate::domain::customers::therapist_view)
                    .unwrap_or(Value::Null),
            );
        }
        v
    };
    match viewer {
        Viewer::Office => Some(with_customer(booking_full(b))),
        Viewer::Therapist(me) => {
            let mut v = booking_full(b);
            if b.therapist_id != me {
                if let Some(m) = v.as_object_mut() {
                    m.remove("phone");
                    m.remove("notes");
                }
                return Some(v);
            }
            Some(with_customer(v))
        }
        Viewer::Monitor => (b.date == now.day
            && matches!(b.state, BookingState::Booked | BookingState::CheckedIn))
        .then(|| {
            json!({
                "id": b.id,
                "number": b.number,
                "time": b.time,
                "start": b.start_ms,
                "room_id": b.room_id,
                "room": state.rooms.get(&b.room_id).map(|r| r.name.clone()),
                "state": b.state.as_str(),
            })
        }),
        Viewer::Customer(visit) => {
            (b.visit_id == Some(visit)).then(|| booking_for_customer(b, state))
        }
        Viewer::BookingCustomer(id) => (b.id == id).then(|| booking_for_customer(b, state)),
    }
}

/// Today's book for a snapshot: bookings as `viewer` may see them; staff
/// also get today's shifts and blocks.
pub fn today(viewer: Viewer, state: &State, now: Now, day_bounds: Option<(i64, i64)>) -> Value {
    let bookings: Vec<Value> = state
        .bookings_on(now.day)
        .into_iter()
        .filter_map(|b| booking_for(viewer, b, state, now))
        .collect();
    match viewer {
        Viewer::Office | Viewer::Therapist(_) => {
            // Without the zone at hand: the blocks of the day around now.
            let (from, to) =
                day_bounds.unwrap_or((now.ms - 12 * 3_600_000, now.ms + 24 * 3_600_000));
            json!({
                "bookings": bookings,
                "shifts": shifts_on(state, now.day, None),
                "blocks": blocks_between(state, from, to, None),
            })
        }
        _ => json!({ "bookings": bookings }),
    }
}
