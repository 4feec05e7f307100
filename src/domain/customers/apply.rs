//! `apply` for the customer events, the reverse maps kept in step, and
//! the records a customer event touches.

use super::*;
use crate::domain::book::Booking;
use crate::domain::event::Event;
use crate::domain::state::{State, Visit};
use crate::domain::{Actor, Id};

impl State {
    /// Puts a customer in (or replaces it), keeping the index in step.
    pub fn put_customer(&mut self, c: Customer) {
        if let Some(old) = self.customers.get(&c.id) {
            let old = old.clone();
            self.customer_index.remove(&old);
        }
        self.customer_index.insert(&c);
        self.customers.insert(c.id, c);
    }

    pub(in crate::domain) fn drop_customer(&mut self, id: Id) {
        if let Some(old) = self.customers.remove(&id) {
            self.customer_index.remove(&old);
        }
    }

    /// The customer a visit points to.
    pub fn customer_of_visit(&self, visit_id: Id) -> Option<&Customer> {
        let id = self.customer_index.visit_owner.get(&visit_id)?;
        self.customers.get(id)
    }

    pub fn customer_of_booking(&self, booking_id: Id) -> Option<&Customer> {
        let id = self.customer_index.booking_owner.get(&booking_id)?;
        self.customers.get(id)
    }

    pub(in crate::domain) fn apply_customers(&mut self, event: &Event, at: i64, actor: &Actor) {
        match event {
            Event::CustomerCreated { customer } => {
                self.bump_id(customer.id);
                self.put_customer(customer.clone());
            }
            Event::CustomerUpdated {
                customer_id,
                name,
                phone,
                email,
                notes,
            } => {
                if let Some(mut c) = self.customers.get(customer_id).cloned() {
                    c.name = name.clone();
                    c.phone = phone.clone();
                    c.email = email.clone();
                    c.notes = notes.clone();
                    self.put_customer(c);
                }
            }
            Event::CustomerLinked {
                customer_id,
                visit_id,
                booking_id,
            } => self.link(*customer_id, *visit_id, *booking_id, at),
            Event::CustomersMerged { from_id, into_id } => {
                let (Some(from), Some(mut into)) = (
                    self.customers.get(from_id).cloned(),
                    self.customers.get(into_id).cloned(),
                ) else {
                    return;
                };
                self.drop_customer(from.id);
                into.visit_ids.extend(&from.visit_ids);
                into.visit_ids.sort_unstable();
                into.visit_ids.dedup();
                into.booking_ids.extend(&from.booking_ids);
                into.booking_ids.sort_unstable();
                into.booking_ids.dedup();
                into.absorbed.extend(from.key_ids());
                into.last_visit_at = into.last_visit_at.max(from.last_visit_at);
                into.phone = into.phone.or(from.phone);
                into.email = into.email.or(from.email);
                into.notes = into.notes.or(from.notes);
                self.put_customer(into);
            }
            Event::CustomerForgotten { customer_id, .. } => {
                let Some(mut c) = self.customers.get(customer_id).cloned() else {
                    return;
                };
                for id in &c.visit_ids {
                    if let Some(v) = self.visits.get_mut(id) {
                        redact_visit(v);
                    }
                }
                for id in &c.booking_ids {
                    if let Some(mut b) = self.bookings.get(id).cloned() {
                        redact_booking(&mut b);
                        self.put_booking(b);
                    }
                }
                c.name = FORGOTTEN.into();
                c.phone = None;
                c.email = None;
                c.notes = None;
                c.forgotten = true;
                self.put_customer(c);
            }
            Event::VisitUpdated {
                visit_id,
                customer_name,
                phone,
                notes,
                service_ids,
                requested_therapist,
                services_cents,
                service_minutes,
                cleanup_min,
                planned_end,
                changed,
            } => {
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.customer_name = customer_name.clone();
                    v.phone = phone.clone();
                    v.notes = notes.clone();
                    v.service_ids = service_ids.clone();
                    v.requested_therapist = *requested_therapist;
                    v.services_cents = *services_cents;
                    v.service_minutes = *service_minutes;
                    v.cleanup_min = *cleanup_min;
                    v.planned_end = *planned_end;
                }
                self.visit_edits
                    .entry(*visit_id)
                    .or_default()
                    .push(VisitEdit {
                        at,
                        by: actor.staff_id(),
                        changed: changed.clone(),
                    });
            }
            _ => {}
        }
    }

    /// Points a visit or booking at a customer (moving it from another).
    pub(in crate::domain) fn link(
        &mut self,
        customer_id: Id,
        visit_id: Option<Id>,
        booking_id: Option<Id>,
        at: i64,
    ) {
        let previous = visit_id
            .and_then(|v| self.customer_index.visit_owner.get(&v))
            .or_else(|| booking_id.and_then(|b| self.customer_index.booking_owner.get(&b)))
            .copied();
        if let Some(prev) = previous.filter(|p| *p != customer_id) {
            if let Some(mut p) = self.customers.get(&prev).cloned() {
                p.visit_ids.retain(|v| Some(*v) != visit_id);
                p.booking_ids.retain(|b| Some(*b) != booking_id);
                self.put_customer(p);
            }
        }
        let Some(mut c) = self.customers.get(&customer_id).cloned() else {
            return;
        };
        if let Some(v) = visit_id {
            if !c.visit_ids.contains(&v) {
                c.visit_ids.push(v);
            }
            c.last_visit_at = Some(c.last_visit_at.unwrap_or(at).max(at));
        }
        if let Some(b) = booking_id {
            if !c.booking_ids.contains(&b) {
                c.booking_ids.push(b);
            }
        }
        self.put_customer(c);
    }

    /// The records a customer event changes (besides `Counters`).
    pub(in crate::domain) fn touched_customers(
        &self,
        event: &Event,
        keys: &mut Vec<crate::domain::state::RecordKey>,
    ) {
        use crate::domain::state::RecordKey;
        let linked = |keys: &mut Vec<RecordKey>, c: &Customer| {
            keys.extend(
                c.visit_ids
                    .iter()
                    .filter(|v| self.visits.contains_key(v))
                    .map(|v| RecordKey::Visit(*v)),
            );
            keys.extend(
                c.booking_ids
                    .iter()
                    .filter(|b| self.bookings.contains_key(b))
                    .map(|b| RecordKey::Booking(*b)),
            );
        };
        match event {
            Event::CustomerCreated { customer } => keys.push(RecordKey::Customer(customer.id)),
            Event::CustomerUpdated { customer_id, .. } => {
                keys.push(RecordKey::Customer(*customer_id));
                // The visits and bookings show the customer's notes.
                if let Some(c) = self.customers.get(customer_id) {
                    linked(keys, c);
                }
            }
            Event::CustomerLinked {
                customer_id,
                visit_id,
                booking_id,
            } => {
                keys.push(RecordKey::Customer(*customer_id));
                keys.extend(visit_id.map(RecordKey::Visit));
                keys.extend(booking_id.map(RecordKey::Booking));
                let previous = visit_id
                    .and_then(|v| self.customer_index.visit_owner.get(&v))
                    .or_else(|| booking_id.and_then(|b| self.customer_index.booking_owner.get(&b)));
                keys.extend(previous.map(|p| RecordKey::Customer(*p)));
            }
            Event::CustomersMerged { from_id, into_id } => {
                keys.push(RecordKey::Customer(*from_id));
                keys.push(RecordKey::Customer(*into_id));
                for id in [from_id, into_id] {
                    if let Some(c) = self.customers.get(id) {
                        linked(keys, c);
                    }
                }
            }
            Event::CustomerForgotten { customer_id, .. } => {
                keys.push(RecordKey::Customer(*customer_id));
                if let Some(c) = self.customers.get(customer_id) {
                    linked(keys, c);
                }
            }
            Event::VisitUpdated { visit_id, .. } => {
                keys.push(RecordKey::Visit(*visit_id));
                keys.push(RecordKey::VisitEdits(*visit_id));
                // The room's planned end and the therapist's screen follow.
                if let Some(v) = self.visits.get(visit_id) {
                    keys.extend(v.room.map(RecordKey::Room));
                    keys.extend(v.therapist.map(RecordKey::Staff));
                }
            }
            _ => {}
        }
    }
}

pub fn redact_visit(v: &mut Visit) {
    v.customer_name = FORGOTTEN.into();
    v.phone = None;
    v.notes = None;
}

pub fn redact_booking(b: &mut Booking) {
    b.customer_name = FORGOTTEN.into();
    b.phone = None;
    b.notes = None;
}
