//! `State::apply` for the book's events.

use super::super::event::Event;
use super::super::state::State;
use super::BookingState;

impl State {
    pub(in crate::domain) fn apply_book(&mut self, event: &Event, at: i64) {
        match event {
            Event::ShiftSet { shift } => {
                self.shifts
                    .insert((shift.therapist_id, shift.date), shift.clone());
            }
            Event::ShiftCleared { therapist_id, date } => {
                self.shifts.remove(&(*therapist_id, *date));
            }
            Event::BlockCreated { block } => {
                self.bump_id(block.id);
                self.blocks.insert(block.id, block.clone());
            }
            Event::BlockRemoved { block_id } => {
                self.blocks.remove(block_id);
            }
            Event::BookingCreated { booking } => {
                self.bump_id(booking.id);
                let mut b = booking.clone();
                b.created_at = at;
                b.state_since = at;
                self.put_booking(b);
            }
            Event::BookingMoved { booking_id, to } => {
                if let Some(mut b) = self.bookings.get(booking_id).cloned() {
                    b.date = to.date;
                    b.number = to.number.clone();
                    b.number_of_day = to.number_of_day;
                    b.time = to.time.clone();
                    b.start_ms = to.start_ms;
                    b.end_ms = to.end_ms;
                    b.room_until_ms = to.room_until_ms;
                    b.therapist_id = to.therapist_id;
                    b.room_id = to.room_id;
                    b.late_alerted = false;
                    self.put_booking(b);
                }
            }
            Event::BookingCancelled {
                booking_id,
                reason,
                by_customer,
            } => self.set_booking_state(*booking_id, at, |b| {
                b.state = BookingState::Cancelled;
                b.reason = Some(reason.clone());
                b.cancelled_by_customer = *by_customer;
            }),
            Event::BookingNoShow { booking_id, reason } => {
                self.set_booking_state(*booking_id, at, |b| {
                    b.state = BookingState::NoShow;
                    b.reason = reason.clone();
                })
            }
            Event::BookingCheckedIn { booking_id, visit } => {
                // The visit is made as `visit.create` makes one (ticket
                // number, counters), then linked.
                self.apply_visit_created(visit);
                self.set_booking_state(*booking_id, at, |b| {
                    b.state = BookingState::CheckedIn;
                    b.visit_id = Some(visit.id);
                });
                // A booking's customer is its visit's customer.
                if let Some(c) = self.customer_index.booking_owner.get(booking_id).copied() {
                    self.link(c, Some(visit.id), None, at);
                }
            }
            Event::BookingLate { booking_id, .. } => {
                if let Some(mut b) = self.bookings.get(booking_id).cloned() {
                    b.late_alerted = true;
                    self.put_booking(b);
                }
            }
            _ => {}
        }
    }

    fn set_booking_state(
        &mut self,
        id: super::super::Id,
        at: i64,
        change: impl FnOnce(&mut super::Booking),
    ) {
        if let Some(mut b) = self.bookings.get(&id).cloned() {
            change(&mut b);
            b.state_since = at;
            self.put_booking(b);
        }
    }
}
