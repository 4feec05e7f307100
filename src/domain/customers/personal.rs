//! What of an event or a record is personal and whose it is: the store
//! (`crate::store`) seals those fields with the customer's key, or drops
//! them once the customer is forgotten.

use super::*;
use crate::domain::book::Booking;
use crate::domain::event::Event;
use crate::domain::state::{Record, State, Visit};
use crate::domain::Id;

/// The personal fields taken out of an event or record, in a fixed order
/// per kind (the store seals them; `put_*` puts them back).
pub type Personal = Vec<Option<String>>;

fn take_visit(v: &mut Visit) -> Personal {
    let out = vec![
        Some(std::mem::take(&mut v.customer_name)),
        v.phone.take(),
        v.notes.take(),
    ];
    v.customer_name = FORGOTTEN.into();
    out
}

fn put_visit(v: &mut Visit, p: Personal) {
    let mut p = p.into_iter();
    v.customer_name = p.next().flatten().unwrap_or_else(|| FORGOTTEN.into());
    v.phone = p.next().flatten();
    v.notes = p.next().flatten();
}

fn take_booking(b: &mut Booking) -> Personal {
    let out = vec![
        Some(std::mem::take(&mut b.customer_name)),
        b.phone.take(),
        b.notes.take(),
    ];
    b.customer_name = FORGOTTEN.into();
    out
}

fn put_booking(b: &mut Booking, p: Personal) {
    let mut p = p.into_iter();
    b.customer_name = p.next().flatten().unwrap_or_else(|| FORGOTTEN.into());
    b.phone = p.next().flatten();
    b.notes = p.next().flatten();
}

fn take_customer(c: &mut Customer) -> Personal {
    let out = vec![
        Some(std::mem::take(&mut c.name)),
        c.phone.take(),
        c.email.take(),
        c.notes.take(),
    ];
    c.name = FORGOTTEN.into();
    out
}

fn put_customer(c: &mut Customer, p: Personal) {
    let mut p = p.into_iter();
    c.name = p.next().flatten().unwrap_or_else(|| FORGOTTEN.into());
    c.phone = p.next().flatten();
    c.email = p.next().flatten();
    c.notes = p.next().flatten();
}

/// Takes the personal fields out of `event` (leaving the forgotten form);
/// `None` when it has none.
pub fn take_personal_event(event: &mut Event) -> Option<Personal> {
    match event {
        Event::VisitCreated { visit }
        | Event::BookingCheckedIn { visit, .. }
        | Event::VisitRestored { visit } => Some(take_visit(visit)),
        Event::BookingCreated { booking } => Some(take_booking(booking)),
        Event::BookingLate { message, .. } => {
            Some(vec![Some(std::mem::replace(message, FORGOTTEN.into()))])
        }
        Event::CustomerCreated { customer } => Some(take_customer(customer)),
        Event::CustomerUpdated {
            name,
            phone,
            email,
            notes,
            ..
        } => Some(vec![
            Some(std::mem::replace(name, FORGOTTEN.into())),
            phone.take(),
            email.take(),
            notes.take(),
        ]),
        Event::VisitUpdated {
            customer_name,
            phone,
            notes,
            ..
        } => Some(vec![
            Some(std::mem::replace(customer_name, FORGOTTEN.into())),
            phone.take(),
            notes.take(),
        ]),
        _ => None,
    }
}

/// Puts back what [`take_personal_event`] took.
pub fn put_personal_event(event: &mut Event, p: Personal) {
    let mut it = p.clone().into_iter();
    let mut next = || it.next().flatten();
    match event {
        Event::VisitCreated { visit }
        | Event::BookingCheckedIn { visit, .. }
        | Event::VisitRestored { visit } => put_visit(visit, p),
        Event::BookingCreated { booking } => put_booking(booking, p),
        Event::BookingLate { message, .. } => *message = next().unwrap_or_default(),
        Event::CustomerCreated { customer } => put_customer(customer, p),
        Event::CustomerUpdated {
            name,
            phone,
            email,
            notes,
            ..
        } => {
            *name = next().unwrap_or_else(|| FORGOTTEN.into());
            *phone = next();
            *email = next();
            *notes = next();
        }
        Event::VisitUpdated {
            customer_name,
            phone,
            notes,
            ..
        } => {
            *customer_name = next().unwrap_or_else(|| FORGOTTEN.into());
            *phone = next();
            *notes = next();
        }
        _ => {}
    }
}

pub fn take_personal_record(record: &mut Record) -> Option<Personal> {
    match record {
        Record::Visit(v) => Some(take_visit(v)),
        Record::Booking(b) => Some(take_booking(b)),
        Record::Customer(c) => Some(take_customer(c)),
        _ => None,
    }
}

pub fn put_personal_record(record: &mut Record, p: Personal) {
    match record {
        Record::Visit(v) => put_visit(v, p),
        Record::Booking(b) => put_booking(b, p),
        Record::Customer(c) => put_customer(c, p),
        _ => {}
    }
}

/// How the store keeps an event's or record's personal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Nothing personal, or not linked to a customer record: as it is.
    Plain,
    /// Sealed with this customer's key.
    Key(Id),
    /// The customer is forgotten (possibly in this very batch): the
    /// personal fields are dropped, never written.
    Drop,
}

fn seal_for(state: &State, owner: Option<&Id>) -> Seal {
    match owner.and_then(|id| state.customers.get(id)) {
        None => Seal::Plain,
        Some(c) if c.forgotten => Seal::Drop,
        Some(c) => Seal::Key(c.id),
    }
}

/// How `event`'s personal fields are stored, judged on the state after
/// the event's batch.
pub fn seal_of_event(state: &State, event: &Event) -> Seal {
    let owner = match event {
        Event::VisitCreated { visit } | Event::VisitRestored { visit } => {
            state.customer_index.visit_owner.get(&visit.id)
        }
        Event::BookingCheckedIn { booking_id, .. } | Event::BookingLate { booking_id, .. } => {
            state.customer_index.booking_owner.get(booking_id)
        }
        Event::BookingCreated { booking } => state.customer_index.booking_owner.get(&booking.id),
        Event::CustomerCreated { customer } => Some(&customer.id),
        Event::CustomerUpdated { customer_id, .. } => Some(customer_id),
        Event::VisitUpdated { visit_id, .. } => state.customer_index.visit_owner.get(visit_id),
        _ => None,
    };
    match (owner, event) {
        // A merged-away customer's creation: the record is gone, its key
        // lives on with the customer it was merged into.
        (Some(id), Event::CustomerCreated { .. } | Event::CustomerUpdated { .. })
            if !state.customers.contains_key(id) =>
        {
            match state.customers.values().find(|c| c.absorbed.contains(id)) {
                Some(c) if c.forgotten => Seal::Drop,
                Some(_) => Seal::Key(*id),
                None => Seal::Drop,
            }
        }
        _ => seal_for(state, owner),
    }
}

pub fn seal_of_record(state: &State, record: &Record) -> Seal {
    let owner = match record {
        Record::Visit(v) => state.customer_index.visit_owner.get(&v.id),
        Record::Booking(b) => state.customer_index.booking_owner.get(&b.id),
        Record::Customer(c) => Some(&c.id),
        _ => None,
    };
    seal_for(state, owner)
}
