//! What of an event may leave the box for head office.
//!
//! One exhaustive `match` over [`Event`]: a new variant does not compile
//! until someone decides here what of it head office may see. Two kinds of
//! field are judged:
//! - customer data (name, phone, email, notes): blanked unless the site
//!   runs with `SPA_NATS_PII=full`;
//! - credentials (PIN hashes, token hashes): always blanked, whatever the
//!   mode; head office never needs them and they are worth attacking.
//!
//! Blanking keeps the record's shape (an empty string, `None`), so head
//! office decodes the same `EventRecord` and its day report is the site's:
//! no report line reads a customer field or a credential.

use super::book::Booking;
use super::event::{Event, EventRecord};
use super::state::Visit;

/// `SPA_NATS_PII`: whether customer data goes to head office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pii {
    /// No customer name, phone, email or note leaves the box (the default).
    #[default]
    Omit,
    /// Customer data goes too (head office is the same data controller).
    Full,
}

impl Pii {
    pub fn as_str(self) -> &'static str {
        match self {
            Pii::Omit => "omit",
            Pii::Full => "full",
        }
    }
}

/// The copy of `record` that head office may see under `pii`.
pub fn for_head_office(record: &EventRecord, pii: Pii) -> EventRecord {
    let mut out = record.clone();
    let omit = pii == Pii::Omit;
    match &mut out.event {
        // Customer data.
        Event::VisitCreated { visit }
        | Event::BookingCheckedIn { visit, .. }
        | Event::VisitRestored { visit } => blank_visit(visit, omit),
        Event::BookingCreated { booking } => blank_booking(booking, omit),
        // The desk's alert names the customer.
        Event::BookingLate { message, .. } => {
            if omit {
                message.clear();
            }
        }
        // Credentials: never.
        Event::StaffCreated { staff } => staff.pin_hash.clear(),
        Event::StaffUpdated { pin_hash, .. } => {
            if pin_hash.is_some() {
                *pin_hash = Some(String::new());
            }
        }
        Event::DevicePaired { device } => device.token_hash.clear(),
        Event::SessionOpened { session } => session.token_hash.clear(),
        Event::SessionClosed { token_hash } => token_hash.clear(),
        // Ids, and the expired sessions' token hashes (credentials).
        Event::Archived { archive } => archive.sessions.iter_mut().for_each(String::clear),
        // A gift card's code hash is a credential (the code pays): never.
        Event::Sold { issued, .. } => issued.iter_mut().for_each(|c| c.code_hash.clear()),
        Event::CustomerCreated { customer } => {
            if omit {
                customer.name.clear();
                customer.phone = None;
                customer.email = None;
                customer.notes = None;
            }
        }
        Event::CustomerUpdated {
            name,
            phone,
            email,
            notes,
            ..
        } => {
            if omit {
                name.clear();
                *phone = None;
                *email = None;
                *notes = None;
            }
        }
        Event::VisitUpdated {
            customer_name,
            phone,
            notes,
            ..
        } => {
            if omit {
                customer_name.clear();
                *phone = None;
                *notes = None;
            }
        }
        // A customer's forget goes as it is, so head office forgets too
        // (`replicate::hq` blanks the visits and bookings it names); the
        // customer records themselves are customer data above. Links and
        // merges are ids.
        Event::CustomerForgotten { .. }
        | Event::CustomerLinked { .. }
        | Event::CustomersMerged { .. } => {}
        //
        // Nothing personal or secret in these (free-text reasons are staff's
        // words about the floor, not customer notes).
        Event::RoomCreated { .. }
        | Event::RoomUpdated { .. }
        | Event::RoomRemoved { .. }
        | Event::RoomStatusSet { .. }
        | Event::StaffDeactivated { .. }
        | Event::DeviceRevoked { .. }
        | Event::ServiceCreated { .. }
        | Event::ServiceUpdated { .. }
        | Event::ServiceRemoved { .. }
        | Event::PresenceChanged { .. }
        | Event::VisitCalled { .. }
        | Event::VisitCallUndone { .. }
        | Event::VisitStarted { .. }
        | Event::VisitStartUndone { .. }
        | Event::VisitExtended { .. }
        | Event::VisitOvertime { .. }
        | Event::VisitFinished { .. }
        | Event::VisitLeft { .. }
        | Event::VisitVoided { .. }
        | Event::VisitCheckedOut { .. }
        | Event::VisitRefunded { .. }
        | Event::VisitRetipped { .. }
        | Event::DrawerOpened { .. }
        | Event::DrawerMoved { .. }
        | Event::DrawerClosed { .. }
        | Event::ShiftSet { .. }
        | Event::ShiftCleared { .. }
        | Event::BlockCreated { .. }
        | Event::BlockRemoved { .. }
        | Event::BookingMoved { .. }
        | Event::BookingCancelled { .. }
        | Event::BookingNoShow { .. }
        | Event::ClockSet { .. }
        // The counter (#17): products, tax rates, refund receipts (lines,
        // amounts, staff ids and the staff's reason; no customer field) and
        // approvals (staff ids).
        | Event::ServiceTaxSet { .. }
        | Event::ProductCreated { .. }
        | Event::ProductUpdated { .. }
        | Event::ProductStockChanged { .. }
        | Event::Refunded { .. }
        | Event::CorrectionApproved { .. }
        // Receipts in and out of memory: ids, and receipts as above.
        | Event::ReceiptsArchived { .. }
        | Event::ReceiptsRestored { .. } => {}
    }
    out
}

/// Head office's copy of an event after the site forgot a customer: the
/// forgotten visits, bookings and the customer record blanked whatever the
/// PII mode. Returns whether anything changed.
pub fn forget_in(
    record: &mut EventRecord,
    customer_id: u64,
    visits: &[u64],
    bookings: &[u64],
) -> bool {
    use super::customers::{redact_booking, redact_visit, FORGOTTEN};
    match &mut record.event {
        Event::VisitCreated { visit }
        | Event::BookingCheckedIn { visit, .. }
        | Event::VisitRestored { visit }
            if visits.contains(&visit.id) =>
        {
            redact_visit(visit);
            true
        }
        Event::BookingCreated { booking } if bookings.contains(&booking.id) => {
            redact_booking(booking);
            true
        }
        Event::BookingLate {
            booking_id,
            message,
        } if bookings.contains(booking_id) => {
            *message = FORGOTTEN.into();
            true
        }
        Event::VisitUpdated {
            visit_id,
            customer_name,
            phone,
            notes,
            ..
        } if visits.contains(visit_id) => {
            *customer_name = FORGOTTEN.into();
            *phone = None;
            *notes = None;
            true
        }
        Event::CustomerCreated { customer } if customer.id == customer_id => {
            customer.name = FORGOTTEN.into();
            customer.phone = None;
            customer.email = None;
            customer.notes = None;
            true
        }
        Event::CustomerUpdated {
            customer_id: id,
            name,
            phone,
            email,
            notes,
        } if *id == customer_id => {
            *name = FORGOTTEN.into();
            *phone = None;
            *email = None;
            *notes = None;
            true
        }
        _ => false,
    }
}

fn blank_visit(visit: &mut Visit, omit: bool) {
    visit.customer_token_hash.clear();
    if omit {
        visit.customer_name.clear();
        visit.phone = None;
        visit.notes = None;
    }
}

fn blank_booking(booking: &mut Booking, omit: bool) {
    booking.customer_token_hash.clear();
    if omit {
        booking.customer_name.clear();
        booking.phone = None;
        booking.notes = None;
    }
}
