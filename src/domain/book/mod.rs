//! The book: therapists' shifts, blocks (time off, maintenance) and
//! bookings, with every interval rule in one place.
//!
//! A booking holds its therapist from `start_ms` to `end_ms` and its room
//! from `start_ms` to `room_until_ms` (the end plus the services' cleanup).
//! Two holding bookings never overlap on a therapist or a room, a booking
//! never overlaps a block, lies inside its therapist's shift, and walk-ins
//! are kept out of booked time by [`walk_in_clash`]. Times are instants (ms
//! since the epoch); `time.rs` turns the spa's local times into them.

mod apply;
pub mod availability;
pub mod decide;
pub mod time;
pub mod views;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::state::{Presence, RoomStatus, State, VisitState};
use super::Id;

pub const MINUTE_MS: i64 = 60_000;

/// A therapist's working hours on one local date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub therapist_id: Id,
    /// `yyyymmdd`, local.
    pub date: u32,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The local times as given (`HH:MM`).
    pub start: String,
    pub end: String,
}

/// Time taken out of a therapist's day or out of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: Id,
    pub therapist_id: Option<Id>,
    pub room_id: Option<Id>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub created_by: Option<Id>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingState {
    Booked,
    CheckedIn,
    Cancelled,
    NoShow,
}

impl BookingState {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingState::Booked => "booked",
            BookingState::CheckedIn => "checked_in",
            BookingState::Cancelled => "cancelled",
            BookingState::NoShow => "no_show",
        }
    }
}

/// An appointment made ahead of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: Id,
    /// `B-007`: numbered per local date of the appointment.
    pub number: String,
    pub number_of_day: u32,
    /// `yyyymmdd`, local date of `start_ms`.
    pub date: u32,
    /// Local start time (`HH:MM`).
    pub time: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The room is held until then (end + cleanup).
    pub room_until_ms: i64,
    pub customer_name: String,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub service_ids: Vec<Id>,
    pub therapist_id: Id,
    pub room_id: Id,
    /// Booked for "any therapist" (the hub picked `therapist_id`).
    pub any_therapist: bool,
    pub state: BookingState,
    pub state_since: i64,
    pub created_by: Option<Id>,
    pub created_at: i64,
    pub request_id: Option<String>,
    pub customer_token_hash: String,
    /// The visit made at check-in.
    pub visit_id: Option<Id>,
    /// Why it was cancelled (or marked no-show by staff).
    pub reason: Option<String>,
    pub cancelled_by_customer: bool,
    /// The desk was told the booking's therapist or room was still busy.
    pub late_alerted: bool,
    pub service_minutes: u32,
    pub cleanup_min: u32,
}

impl Booking {
    /// Whether the booking still holds its therapist and room: booked, or
    /// checked in with its visit not yet finished (or ended).
    pub fn holds(&self, state: &State) -> bool {
        match self.state {
            BookingState::Booked => true,
            BookingState::CheckedIn => self
                .visit_id
                .and_then(|v| state.visits.get(&v))
                .is_some_and(|v| {
                    matches!(
                        v.state,
                        VisitState::Waiting | VisitState::Called | VisitState::InService
                    )
                }),
            BookingState::Cancelled | BookingState::NoShow => false,
        }
    }
}

/// Derived look-ups over the bookings (rebuilt with every booking put into
/// the state, never persisted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookIndex {
    pub by_therapist: BTreeSet<(Id, i64, Id)>,
    pub by_room: BTreeSet<(Id, i64, Id)>,
    pub by_date: BTreeSet<(u32, Id)>,
    pub by_visit: BTreeSet<(Id, Id)>,
}

impl BookIndex {
    pub fn insert(&mut self, b: &Booking) {
        self.by_therapist.insert((b.therapist_id, b.start_ms, b.id));
        self.by_room.insert((b.room_id, b.start_ms, b.id));
        self.by_date.insert((b.date, b.id));
        if let Some(v) = b.visit_id {
            self.by_visit.insert((v, b.id));
        }
    }
    pub fn remove(&mut self, b: &Booking) {
        self.by_therapist
            .remove(&(b.therapist_id, b.start_ms, b.id));
        self.by_room.remove(&(b.room_id, b.start_ms, b.id));
        self.by_date.remove(&(b.date, b.id));
        if let Some(v) = b.visit_id {
            self.by_visit.remove(&(v, b.id));
        }
    }
}

/// The longest a booking can last: lookups start this far before the
/// interval they ask about.
const LOOKBACK_MS: i64 = 24 * 60 * MINUTE_MS;

/// What stands in an interval's way: a booking or a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Clash<'a> {
    Booking(&'a Booking),
    Block(&'a Block),
}

impl State {
    pub fn booking_of_visit(&self, visit_id: Id) -> Option<&Booking> {
        self.book_index
            .by_visit
            .range((visit_id, 0)..=(visit_id, Id::MAX))
            .next()
            .and_then(|(_, b)| self.bookings.get(b))
    }

    /// Bookings on a local date, in start order.
    pub fn bookings_on(&self, date: u32) -> Vec<&Booking> {
        let mut list: Vec<&Booking> = self
            .book_index
            .by_date
            .range((date, 0)..=(date, Id::MAX))
            .filter_map(|(_, id)| self.bookings.get(id))
            .collect();
        list.sort_by_key(|b| (b.start_ms, b.id));
        list
    }

    /// Holding bookings of a therapist that overlap `[from, to)`.
    pub fn therapist_bookings(&self, therapist: Id, from: i64, to: i64) -> Vec<&Booking> {
        self.book_index
            .by_therapist
            .range((therapist, from.saturating_sub(LOOKBACK_MS), 0)..(therapist, to, 0))
            .filter_map(|(_, _, id)| self.bookings.get(id))
            .filter(|b| b.end_ms > from && b.start_ms < to && b.holds(self))
            .collect()
    }

    /// Holding bookings whose room hold overlaps `[from, to)`.
    pub fn room_bookings(&self, room: Id, from: i64, to: i64) -> Vec<&Booking> {
        self.book_index
            .by_room
            .range((room, from.saturating_sub(LOOKBACK_MS), 0)..(room, to, 0))
            .filter_map(|(_, _, id)| self.bookings.get(id))
            .filter(|b| b.room_until_ms > from && b.start_ms < to && b.holds(self))
            .collect()
    }

    pub fn therapist_blocks(&self, therapist: Id, from: i64, to: i64) -> Vec<&Block> {
        self.blocks
            .values()
            .filter(|b| b.therapist_id == Some(therapist) && b.end_ms > from && b.start_ms < to)
            .collect()
    }

    pub fn room_blocks(&self, room: Id, from: i64, to: i64) -> Vec<&Block> {
        self.blocks
            .values()
            .filter(|b| b.room_id == Some(room) && b.end_ms > from && b.start_ms < to)
            .collect()
    }

    /// The first booking or block that keeps `therapist` from `[from, to)`
    /// (ignoring the booking `except`).
    pub fn therapist_clash(
        &self,
        therapist: Id,
        from: i64,
        to: i64,
        except: Option<Id>,
    ) -> Option<Clash<'_>> {
        if let Some(b) = self
            .therapist_bookings(therapist, from, to)
            .into_iter()
            .find(|b| Some(b.id) != except)
        {
            return Some(Clash::Booking(b));
        }
        self.therapist_blocks(therapist, from, to)
            .into_iter()
            .next()
            .map(Clash::Block)
    }

    /// The first booking or block that keeps `room` from `[from, to)`.
    pub fn room_clash(
        &self,
        room: Id,
        from: i64,
        to: i64,
        except: Option<Id>,
    ) -> Option<Clash<'_>> {
        if let Some(b) = self
            .room_bookings(room, from, to)
            .into_iter()
            .find(|b| Some(b.id) != except)
        {
            return Some(Clash::Booking(b));
        }
        self.room_blocks(room, from, to)
            .into_iter()
            .next()
            .map(Clash::Block)
    }

    /// A therapist's shift on a local date.
    pub fn shift(&self, therapist: Id, date: u32) -> Option<&Shift> {
        self.shifts.get(&(therapist, date))
    }

    /// When the live floor frees a therapist (now if they are free).
    pub fn therapist_busy_until(&self, therapist: Id, now: i64) -> i64 {
        let Some(t) = self.staff.get(&therapist) else {
            return now;
        };
        match t.presence {
            Presence::Called | Presence::InSession => t
                .current_visit
                .and_then(|v| self.visits.get(&v))
                .map(|v| {
                    v.planned_end
                        .unwrap_or(now + i64::from(v.service_minutes) * MINUTE_MS)
                        .max(now)
                })
                .unwrap_or(now),
            _ => now,
        }
    }

    /// When the live floor frees a room (now if it is free); `None` while
    /// it is out of service.
    pub fn room_busy_until(&self, room: Id, now: i64) -> Option<i64> {
        let r = self.rooms.get(&room)?;
        if r.status == RoomStatus::OutOfService {
            return None;
        }
        let min = super::views::room_free_in_min(r, self, now)?;
        Some(now + min * MINUTE_MS)
    }
}

/// Words for a clash, for a refusal: "T1 has B-003 at 15:00".
pub fn clash_words(state: &State, clash: &Clash<'_>) -> String {
    match clash {
        Clash::Booking(b) => format!("{} at {} on {}", b.number, b.time, time::date_words(b.date)),
        Clash::Block(b) => {
            let what = match (b.therapist_id, b.room_id) {
                (Some(t), _) => state
                    .staff
                    .get(&t)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                (_, Some(r)) => state
                    .rooms
                    .get(&r)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            format!("a block of {what} ({})", b.reason)
        }
    }
}

/// Whether a walk-in on `therapist` and `room` from `now` (done, with the
/// buffer, at `done`; the room cleaned at `room_done`) would eat into the
/// book: the booking or block it would run into. (A booked visit has its
/// own time and is not asked.)
pub fn walk_in_clash<'a>(
    state: &'a State,
    therapist: Option<Id>,
    room: Option<Id>,
    now: i64,
    done: i64,
    room_done: i64,
) -> Option<Clash<'a>> {
    if let Some(c) = therapist.and_then(|t| state.therapist_clash(t, now, done, None)) {
        return Some(c);
    }
    room.and_then(|r| state.room_clash(r, now, room_done, None))
}
