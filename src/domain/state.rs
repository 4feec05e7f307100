//! The whole floor in memory, and `apply(event)`: the only way it changes.
//!
//! `apply` never fails and never decides anything: every value it needs was
//! worked out by `decide` and carried in the event. The state is also cut into
//! [`Record`]s (one per entity plus one for the counters) so that the store
//! can persist exactly what a batch touched and rebuild the state at start-up
//! without replaying the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::book::{Block, BookIndex, Booking, Shift};
use super::customers::{Customer, CustomerIndex, VisitEdit};
use super::event::{Event, EventRecord};
use super::money::receipt::{Receipt, ReceiptCounter};
use super::money::retail::{GiftCard, Product, ServiceTax, Till};
use super::money::{Checkout, Drawer, Method, Refund};
use super::rotation::Turns;
use super::{Id, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    Available,
    Held,
    Occupied,
    Cleaning,
    OutOfService,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomStatus::Available => "available",
            RoomStatus::Held => "held",
            RoomStatus::Occupied => "occupied",
            RoomStatus::Cleaning => "cleaning",
            RoomStatus::OutOfService => "out_of_service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: Id,
    pub name: String,
    pub capacity: u8,
    pub light_channel: Option<u16>,
    pub status: RoomStatus,
    pub status_since: i64,
    pub reason: Option<String>,
    /// When a timed cleanup ends (wall clock, ms); `None` for untimed cleaning.
    pub cleaning_until: Option<i64>,
    /// Length of that cleanup, so a clock jump can never stretch it.
    pub cleaning_ms: i64,
    /// Visits called to or in service in this room.
    pub occupants: Vec<Id>,
    /// Derived: an occupant is past its planned end.
    pub overtime: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Off,
    Available,
    Break,
    Called,
    InSession,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Off => "off",
            Presence::Available => "available",
            Presence::Break => "break",
            Presence::Called => "called",
            Presence::InSession => "in_session",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staff {
    pub id: Id,
    pub name: String,
    pub role: Role,
    /// PHC string (argon2id); never leaves the hub.
    pub pin_hash: String,
    pub active: bool,
    pub skills: Vec<String>,
    pub presence: Presence,
    pub presence_since: i64,
    /// Rotation keys (therapists).
    pub clocked_in_at: Option<i64>,
    pub available_since: Option<i64>,
    pub turns: Turns,
    /// The day (`yyyymmdd`) `turns` counts for; another day means zero.
    pub turns_day: u32,
    pub current_visit: Option<Id>,
}

impl Staff {
    pub fn turns_on(&self, day: u32) -> Turns {
        if self.turns_day == day {
            self.turns
        } else {
            Turns::ZERO
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: Id,
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub revoked: bool,
    pub paired_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: Id,
    pub name: String,
    pub duration_min: u32,
    pub cleanup_min: u32,
    pub price_cents: i64,
    pub skill: Option<String>,
    pub turn_weight: Turns,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitState {
    Waiting,
    Called,
    InService,
    AwaitingPayment,
    Closed,
    Left,
    Voided,
}

impl VisitState {
    pub fn as_str(self) -> &'static str {
        match self {
            VisitState::Waiting => "waiting",
            VisitState::Called => "called",
            VisitState::InService => "in_service",
            VisitState::AwaitingPayment => "awaiting_payment",
            VisitState::Closed => "closed",
            VisitState::Left => "left",
            VisitState::Voided => "voided",
        }
    }

    /// Closed, left or voided: nothing more happens on the floor.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            VisitState::Closed | VisitState::Left | VisitState::Voided
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: Id,
    pub number: String,
    pub day: u32,
    pub customer_name: String,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub service_ids: Vec<Id>,
    pub requested_therapist: Option<Id>,
    pub state: VisitState,
    pub therapist: Option<Id>,
    pub room: Option<Id>,
    pub created_at: i64,
    pub called_at: Option<i64>,
    pub started_at: Option<i64>,
    pub planned_end: Option<i64>,
    pub finished_at: Option<i64>,
    /// When the visit reached closed, left or voided.
    pub ended_at: Option<i64>,
    pub extended_min: u32,
    /// The weighted turn this call took from the therapist (restored on undo).
    pub turn_taken: Turns,
    pub override_reason: Option<String>,
    pub reason: Option<String>,
    pub overtime: bool,
    pub customer_token_hash: String,
    /// Service value captured at creation (prices may change later).
    pub services_cents: i64,
    pub service_minutes: u32,
    pub cleanup_min: u32,
    /// What the checkout recorded (closed visits).
    pub checkout: Option<Checkout>,
    /// Refunds added after closing (the checkout itself never changes).
    pub refunds: Vec<Refund>,
}

impl Visit {
    /// What may still be refunded in `method`: paid in it (cash net of the
    /// change) minus the refunds already made in it.
    pub fn refundable_in(&self, method: Method) -> i64 {
        let Some(c) = &self.checkout else { return 0 };
        let paid = c
            .payments
            .iter()
            .filter(|p| p.method == method)
            .fold(0i64, |t, p| t.saturating_add(p.amount_cents));
        let change = if method == Method::Cash {
            c.change_cents
        } else {
            0
        };
        let refunded = self
            .refunds
            .iter()
            .filter(|r| r.method == method)
            .fold(0i64, |t, r| t.saturating_add(r.amount_cents));
        paid.saturating_sub(change).saturating_sub(refunded).max(0)
    }

    /// Paid minus change minus refunds: what may still be refunded.
    pub fn refundable_cents(&self) -> i64 {
        let Some(c) = &self.checkout else { return 0 };
        let refunded = self
            .refunds
            .iter()
            .fold(0i64, |t, r| t.saturating_add(r.amount_cents));
        c.paid_cents()
            .saturating_sub(c.change_cents)
            .saturating_sub(refunded)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub token_hash: String,
    pub staff_id: Id,
    pub role: Role,
    pub expires_at: i64,
}

/// Counters that are not an entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub seq: u64,
    pub next_id: Id,
    pub ticket_day: u32,
    pub tickets_today: u32,
}

/// The unit the store persists: one entity, or the counters.
// Short-lived (read, written, dropped): the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Counters(Counters),
    Room(Room),
    Staff(Staff),
    Device(Device),
    Service(Service),
    Visit(Visit),
    Session(Session),
    Drawer(Drawer),
    // Schema 2: appended, so schema-1 records keep decoding.
    Shift(Shift),
    Block(Block),
    Booking(Booking),
    // Schema 4 (the counter, #17): appended.
    Product(Product),
    Giftcard(GiftCard),
    Receipt(Receipt),
    ServiceTax(ServiceTax),
    ReceiptCounter(ReceiptCounter),
    // Schema 4.
    Customer(Customer),
    VisitEdits(Id, Vec<VisitEdit>),
}

impl Record {
    /// Where this record lives.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Counters(_) => RecordKey::Counters,
            Record::Room(r) => RecordKey::Room(r.id),
            Record::Staff(s) => RecordKey::Staff(s.id),
            Record::Device(d) => RecordKey::Device(d.id),
            Record::Service(s) => RecordKey::Service(s.id),
            Record::Visit(v) => RecordKey::Visit(v.id),
            Record::Shift(s) => RecordKey::Shift(s.therapist_id, s.date),
            Record::Block(b) => RecordKey::Block(b.id),
            Record::Booking(b) => RecordKey::Booking(b.id),
            Record::Session(s) => RecordKey::Session(s.token_hash.clone()),
            Record::Drawer(d) => RecordKey::Drawer(d.id),
            Record::Product(p) => RecordKey::Product(p.id),
            Record::Giftcard(g) => RecordKey::Giftcard(g.id),
            Record::Receipt(r) => RecordKey::Receipt(r.id),
            Record::ServiceTax(t) => RecordKey::ServiceTax(t.service_id),
            Record::ReceiptCounter(_) => RecordKey::ReceiptCounter,
            Record::Customer(c) => RecordKey::Customer(c.id),
            Record::VisitEdits(id, _) => RecordKey::VisitEdits(*id),
        }
    }
}

/// The address of a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    Counters,
    Room(Id),
    Staff(Id),
    Device(Id),
    Service(Id),
    Visit(Id),
    Session(String),
    Drawer(Id),
    Shift(Id, u32),
    Block(Id),
    Booking(Id),
    Product(Id),
    Giftcard(Id),
    Receipt(Id),
    ServiceTax(Id),
    ReceiptCounter,
    Customer(Id),
    VisitEdits(Id),
}

impl RecordKey {
    /// Bytes for the store: a kind byte, then the id big-endian (or the hash).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (kind, tail): (u8, Vec<u8>) = match self {
            RecordKey::Counters => (0, Vec::new()),
            RecordKey::Room(id) => (1, id.to_be_bytes().to_vec()),
            RecordKey::Staff(id) => (2, id.to_be_bytes().to_vec()),
            RecordKey::Device(id) => (3, id.to_be_bytes().to_vec()),
            RecordKey::Service(id) => (4, id.to_be_bytes().to_vec()),
            RecordKey::Visit(id) => (5, id.to_be_bytes().to_vec()),
            RecordKey::Session(hash) => (6, hash.as_bytes().to_vec()),
            RecordKey::Drawer(id) => (7, id.to_be_bytes().to_vec()),
            RecordKey::Shift(id, date) => {
                let mut tail = id.to_be_bytes().to_vec();
                tail.extend_from_slice(&date.to_be_bytes());
                (8, tail)
            }
            RecordKey::Block(id) => (9, id.to_be_bytes().to_vec()),
            RecordKey::Booking(id) => (10, id.to_be_bytes().to_vec()),
            // The counter's kinds start at 20, leaving 11–19 to the
            // customer records (#16).
            RecordKey::Product(id) => (20, id.to_be_bytes().to_vec()),
            RecordKey::Giftcard(id) => (21, id.to_be_bytes().to_vec()),
            RecordKey::Receipt(id) => (22, id.to_be_bytes().to_vec()),
            RecordKey::ServiceTax(id) => (23, id.to_be_bytes().to_vec()),
            RecordKey::ReceiptCounter => (24, Vec::new()),
            RecordKey::Customer(id) => (11, id.to_be_bytes().to_vec()),
            RecordKey::VisitEdits(id) => (12, id.to_be_bytes().to_vec()),
        };
        let mut bytes = Vec::with_capacity(1 + tail.len());
        bytes.push(kind);
        bytes.extend_from_slice(&tail);
        bytes
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub counters: Counters,
    pub rooms: BTreeMap<Id, Room>,
    pub staff: BTreeMap<Id, Staff>,
    pub devices: BTreeMap<Id, Device>,
    pub services: BTreeMap<Id, Service>,
    pub visits: BTreeMap<Id, Visit>,
    pub sessions: BTreeMap<String, Session>,
    pub drawers: BTreeMap<Id, Drawer>,
    /// Shifts by (therapist, local date).
    pub shifts: BTreeMap<(Id, u32), Shift>,
    pub blocks: BTreeMap<Id, Block>,
    pub bookings: BTreeMap<Id, Booking>,
    /// Derived from `bookings` (never persisted).
    pub book_index: BookIndex,
    /// Products, gift cards, receipts, service tax rates (#17).
    pub till: Till,
    pub customers: BTreeMap<Id, Customer>,
    /// Derived from `customers` (never persisted).
    pub customer_index: CustomerIndex,
    /// Each edited visit's `visit.update`s.
    pub visit_edits: BTreeMap<Id, Vec<VisitEdit>>,
}

impl State {
    pub fn seq(&self) -> u64 {
        self.counters.seq
    }

    /// The current value at `key`, for persisting or for undoing a batch.
    pub fn record(&self, key: &RecordKey) -> Option<Record> {
        match key {
            RecordKey::Counters => Some(Record::Counters(self.counters.clone())),
            RecordKey::Room(id) => self.rooms.get(id).cloned().map(Record::Room),
            RecordKey::Staff(id) => self.staff.get(id).cloned().map(Record::Staff),
            RecordKey::Device(id) => self.devices.get(id).cloned().map(Record::Device),
            RecordKey::Service(id) => self.services.get(id).cloned().map(Record::Service),
            RecordKey::Visit(id) => self.visits.get(id).cloned().map(Record::Visit),
            RecordKey::Session(h) => self.sessions.get(h).cloned().map(Record::Session),
            RecordKey::Drawer(id) => self.drawers.get(id).cloned().map(Record::Drawer),
            RecordKey::Shift(t, d) => self.shifts.get(&(*t, *d)).cloned().map(Record::Shift),
            RecordKey::Block(id) => self.blocks.get(id).cloned().map(Record::Block),
            RecordKey::Booking(id) => self.bookings.get(id).cloned().map(Record::Booking),
            RecordKey::Product(id) => self.till.products.get(id).cloned().map(Record::Product),
            RecordKey::Giftcard(id) => self.till.giftcards.get(id).cloned().map(Record::Giftcard),
            RecordKey::Receipt(id) => self.till.receipts.get(id).cloned().map(Record::Receipt),
            RecordKey::ServiceTax(id) => self.till.service_tax.get(id).map(|r| {
                Record::ServiceTax(ServiceTax {
                    service_id: *id,
                    rate_bp: *r,
                })
            }),
            RecordKey::ReceiptCounter => Some(Record::ReceiptCounter(self.till.counter)),
            RecordKey::Customer(id) => self.customers.get(id).cloned().map(Record::Customer),
            RecordKey::VisitEdits(id) => self
                .visit_edits
                .get(id)
                .map(|e| Record::VisitEdits(*id, e.clone())),
        }
    }

    /// Puts a booking in (or replaces it), keeping the index in step.
    pub fn put_booking(&mut self, booking: Booking) {
        if let Some(old) = self.bookings.get(&booking.id) {
            self.book_index.remove(old);
        }
        self.book_index.insert(&booking);
        self.bookings.insert(booking.id, booking);
    }

    fn drop_booking(&mut self, id: Id) {
        if let Some(old) = self.bookings.remove(&id) {
            self.book_index.remove(&old);
        }
    }

    /// Puts back a record (or removes what is at `key` when `None`).
    pub fn put_record(&mut self, key: &RecordKey, record: Option<Record>) {
        match (key, record) {
            (_, Some(Record::Counters(c))) => self.counters = c,
            (_, Some(Record::Room(r))) => {
                self.rooms.insert(r.id, r);
            }
            (_, Some(Record::Staff(s))) => {
                self.staff.insert(s.id, s);
            }
            (_, Some(Record::Device(d))) => {
                self.devices.insert(d.id, d);
            }
            (_, Some(Record::Service(s))) => {
                self.services.insert(s.id, s);
            }
            (_, Some(Record::Visit(v))) => {
                self.visits.insert(v.id, v);
            }
            (_, Some(Record::Session(s))) => {
                self.sessions.insert(s.token_hash.clone(), s);
            }
            (_, Some(Record::Drawer(d))) => {
                self.drawers.insert(d.id, d);
            }
            (_, Some(Record::Shift(sh))) => {
                self.shifts.insert((sh.therapist_id, sh.date), sh);
            }
            (_, Some(Record::Block(b))) => {
                self.blocks.insert(b.id, b);
            }
            (_, Some(Record::Booking(b))) => self.put_booking(b),
            (_, Some(Record::Product(p))) => {
                self.till.products.insert(p.id, p);
            }
            (_, Some(Record::Giftcard(g))) => self.till.put_card(g),
            (_, Some(Record::Receipt(r))) => self.till.put_receipt(r),
            (_, Some(Record::ServiceTax(t))) => {
                self.till.service_tax.insert(t.service_id, t.rate_bp);
            }
            (_, Some(Record::ReceiptCounter(c))) => self.till.counter = c,
            (RecordKey::Product(id), None) => {
                self.till.products.remove(id);
            }
            (RecordKey::Giftcard(id), None) => {
                if let Some(g) = self.till.giftcards.remove(id) {
                    self.till.card_by_hash.remove(&g.code_hash);
                }
            }
            (RecordKey::Receipt(id), None) => {
                if let Some(r) = self.till.receipts.remove(id) {
                    if let Some(q) = &r.request_id {
                        self.till.receipt_by_request.remove(q);
                    }
                    if let Some(sale) = r.refund_of {
                        if let Some(refunds) = self.till.refunds_by_sale.get_mut(&sale) {
                            refunds.retain(|x| x != id);
                            if refunds.is_empty() {
                                self.till.refunds_by_sale.remove(&sale);
                            }
                        }
                    }
                    if let Some(v) = r.visit_id {
                        if self.till.receipt_of_visit.get(&v) == Some(id) {
                            self.till.receipt_of_visit.remove(&v);
                        }
                    }
                }
            }
            (RecordKey::ServiceTax(id), None) => {
                self.till.service_tax.remove(id);
            }
            (RecordKey::ReceiptCounter, None) => self.till.counter = ReceiptCounter::default(),
            (_, Some(Record::Customer(c))) => self.put_customer(c),
            (_, Some(Record::VisitEdits(id, edits))) => {
                self.visit_edits.insert(id, edits);
            }
            (RecordKey::Customer(id), None) => self.drop_customer(*id),
            (RecordKey::VisitEdits(id), None) => {
                self.visit_edits.remove(id);
            }
            (RecordKey::Shift(t, d), None) => {
                self.shifts.remove(&(*t, *d));
            }
            (RecordKey::Block(id), None) => {
                self.blocks.remove(id);
            }
            (RecordKey::Booking(id), None) => self.drop_booking(*id),
            (RecordKey::Drawer(id), None) => {
                self.drawers.remove(id);
            }
            (RecordKey::Counters, None) => self.counters = Counters::default(),
            (RecordKey::Room(id), None) => {
                self.rooms.remove(id);
            }
            (RecordKey::Staff(id), None) => {
                self.staff.remove(id);
            }
            (RecordKey::Device(id), None) => {
                self.devices.remove(id);
            }
            (RecordKey::Service(id), None) => {
                self.services.remove(id);
            }
            (RecordKey::Visit(id), None) => {
                self.visits.remove(id);
            }
            (RecordKey::Session(h), None) => {
                self.sessions.remove(h);
            }
        }
    }

    /// Every record, for a full save (backup, tests).
    pub fn records(&self) -> Vec<(RecordKey, Record)> {
        let mut out = vec![(RecordKey::Counters, Record::Counters(self.counters.clone()))];
        out.extend(
            self.rooms
                .values()
                .map(|r| (RecordKey::Room(r.id), Record::Room(r.clone()))),
        );
        out.extend(
            self.staff
                .values()
                .map(|s| (RecordKey::Staff(s.id), Record::Staff(s.clone()))),
        );
        out.extend(
            self.devices
                .values()
                .map(|d| (RecordKey::Device(d.id), Record::Device(d.clone()))),
        );
        out.extend(
            self.services
                .values()
                .map(|s| (RecordKey::Service(s.id), Record::Service(s.clone()))),
        );
        out.extend(
            self.visits
                .values()
                .map(|v| (RecordKey::Visit(v.id), Record::Visit(v.clone()))),
        );
        out.extend(
            self.drawers
                .values()
                .map(|d| (RecordKey::Drawer(d.id), Record::Drawer(d.clone()))),
        );
        out.extend(self.sessions.values().map(|s| {
            (
                RecordKey::Session(s.token_hash.clone()),
                Record::Session(s.clone()),
            )
        }));
        out.extend(self.shifts.values().map(|sh| {
            (
                RecordKey::Shift(sh.therapist_id, sh.date),
                Record::Shift(sh.clone()),
            )
        }));
        out.extend(
            self.blocks
                .values()
                .map(|b| (RecordKey::Block(b.id), Record::Block(b.clone()))),
        );
        out.extend(
            self.bookings
                .values()
                .map(|b| (RecordKey::Booking(b.id), Record::Booking(b.clone()))),
        );
        out.extend(self.till.records());
        out.extend(
            self.customers
                .values()
                .map(|c| (RecordKey::Customer(c.id), Record::Customer(c.clone()))),
        );
        out.extend(self.visit_edits.iter().map(|(id, e)| {
            (
                RecordKey::VisitEdits(*id),
                Record::VisitEdits(*id, e.clone()),
            )
        }));
        out
    }

    /// Applies one committed event. Never fails: `decide` checked everything.
    pub fn apply(&mut self, record: &EventRecord) {
        let at = record.at;
        self.counters.seq = record.seq;
        match &record.event {
            Event::ShiftSet { .. }
            | Event::ShiftCleared { .. }
            | Event::BlockCreated { .. }
            | Event::BlockRemoved { .. }
            | Event::BookingCreated { .. }
            | Event::BookingMoved { .. }
            | Event::BookingCancelled { .. }
            | Event::BookingCheckedIn { .. }
            | Event::BookingNoShow { .. }
            | Event::BookingLate { .. } => self.apply_book(&record.event, at),
            // The shell moves its clock; the state holds nothing of it.
            Event::ClockSet { .. } => {}
            Event::ServiceTaxSet { .. }
            | Event::ProductCreated { .. }
            | Event::ProductUpdated { .. }
            | Event::ProductStockChanged { .. }
            | Event::Sold { .. }
            | Event::Refunded { .. }
            | Event::CorrectionApproved { .. } => self.apply_till(&record.event, at),
            Event::CustomerCreated { .. }
            | Event::CustomerUpdated { .. }
            | Event::CustomerLinked { .. }
            | Event::CustomersMerged { .. }
            | Event::CustomerForgotten { .. }
            | Event::VisitUpdated { .. } => self.apply_customers(&record.event, at, &record.actor),
            Event::VisitCheckedOut { .. }
            | Event::VisitRefunded { .. }
            | Event::VisitRetipped { .. }
            | Event::DrawerOpened { .. }
            | Event::DrawerMoved { .. }
            | Event::DrawerClosed { .. } => self.apply_money(&record.event, record.seq, at),
            Event::Archived { archive } => self.apply_archive(archive),
            Event::VisitRestored { visit } => {
                self.visits.insert(visit.id, visit.clone());
            }
            Event::ReceiptsArchived { receipt_ids } => {
                for id in receipt_ids {
                    self.put_record(&RecordKey::Receipt(*id), None);
                }
            }
            Event::ReceiptsRestored { receipts } => {
                for r in receipts {
                    self.till.put_receipt(r.clone());
                }
            }
            Event::RoomCreated { room } => {
                self.bump_id(room.id);
                self.rooms.insert(room.id, room.clone());
            }
            Event::RoomUpdated {
                room_id,
                name,
                capacity,
                light_channel,
            } => {
                if let Some(room) = self.rooms.get_mut(room_id) {
                    room.name = name.clone();
                    room.capacity = *capacity;
                    room.light_channel = *light_channel;
                }
            }
            Event::RoomRemoved { room_id } => {
                self.rooms.remove(room_id);
            }
            Event::RoomStatusSet {
                room_id,
                status,
                reason,
                cleaning_until,
                cleaning_ms,
            } => {
                if let Some(room) = self.rooms.get_mut(room_id) {
                    room.status = *status;
                    room.status_since = at;
                    room.reason = reason.clone();
                    room.cleaning_until = *cleaning_until;
                    room.cleaning_ms = *cleaning_ms;
                    room.overtime = false;
                }
            }
            Event::StaffCreated { staff } => {
                self.bump_id(staff.id);
                self.staff.insert(staff.id, staff.clone());
            }
            Event::StaffUpdated {
                staff_id,
                name,
                role,
                pin_hash,
                skills,
            } => {
                if let Some(staff) = self.staff.get_mut(staff_id) {
                    if let Some(name) = name {
                        staff.name = name.clone();
                    }
                    if let Some(role) = role {
                        staff.role = *role;
                    }
                    if let Some(pin_hash) = pin_hash {
                        staff.pin_hash = pin_hash.clone();
                    }
                    if let Some(skills) = skills {
                        staff.skills = skills.clone();
                    }
                }
                if pin_hash.is_some() || role.is_some() {
                    self.sessions.retain(|_, s| s.staff_id != *staff_id);
                }
            }
            Event::StaffDeactivated { staff_id } => {
                if let Some(staff) = self.staff.get_mut(staff_id) {
                    staff.active = false;
                    staff.presence = super::state::Presence::Off;
                    staff.presence_since = at;
                }
                self.sessions.retain(|_, s| s.staff_id != *staff_id);
            }
            Event::DevicePaired { device } => {
                self.bump_id(device.id);
                self.devices.insert(device.id, device.clone());
            }
            Event::DeviceRevoked { device_id } => {
                if let Some(device) = self.devices.get_mut(device_id) {
                    device.revoked = true;
                }
            }
            Event::ServiceCreated { service } => {
                self.bump_id(service.id);
                self.services.insert(service.id, service.clone());
            }
            Event::ServiceUpdated { service } => {
                self.services.insert(service.id, service.clone());
            }
            Event::ServiceRemoved { service_id } => {
                if let Some(service) = self.services.get_mut(service_id) {
                    service.active = false;
                }
            }
            Event::SessionOpened { session } => {
                self.sessions
                    .insert(session.token_hash.clone(), session.clone());
            }
            Event::SessionClosed { token_hash } => {
                self.sessions.remove(token_hash);
            }
            Event::PresenceChanged {
                therapist_id,
                presence,
            } => {
                if let Some(t) = self.staff.get_mut(therapist_id) {
                    match presence {
                        Presence::Available if t.presence == Presence::Off => {
                            // Clocking in joins the rotation at the tail.
                            t.clocked_in_at = Some(at);
                            t.available_since = Some(at);
                        }
                        Presence::Available => t.available_since = Some(at),
                        Presence::Off => {
                            t.clocked_in_at = None;
                            t.available_since = None;
                        }
                        _ => {}
                    }
                    t.presence = *presence;
                    t.presence_since = at;
                }
            }
            Event::VisitCreated { visit } => self.apply_visit_created(visit),
            Event::VisitCalled {
                visit_id,
                therapist_id,
                room_id,
                turn,
                day,
                override_reason,
            } => {
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.state = super::state::VisitState::Called;
                    v.therapist = Some(*therapist_id);
                    v.room = Some(*room_id);
                    v.called_at = Some(at);
                    v.turn_taken = *turn;
                    v.override_reason = override_reason.clone();
                }
                if let Some(t) = self.staff.get_mut(therapist_id) {
                    if t.turns_day != *day {
                        t.turns_day = *day;
                        t.turns = Turns::ZERO;
                    }
                    t.turns = t.turns.saturating_add(*turn);
                    t.presence = Presence::Called;
                    t.presence_since = at;
                    t.current_visit = Some(*visit_id);
                }
                self.occupy(*room_id, *visit_id, at);
            }
            Event::VisitCallUndone { visit_id } => {
                let Some(v) = self.visits.get_mut(visit_id) else {
                    return;
                };
                let (therapist, room, turn, called_day) =
                    (v.therapist, v.room, v.turn_taken, v.day);
                v.state = VisitState::Waiting;
                v.therapist = None;
                v.room = None;
                v.called_at = None;
                v.turn_taken = Turns::ZERO;
                v.override_reason = None;
                let _ = called_day;
                if let Some(t) = therapist.and_then(|id| self.staff.get_mut(&id)) {
                    t.turns = t.turns.saturating_sub(turn);
                    t.presence = Presence::Available;
                    t.presence_since = at;
                    t.current_visit = None;
                    // Restoring the turn also restores the place in the rotation.
                }
                if let Some(room) = room {
                    self.vacate(room, *visit_id, at, None);
                }
            }
            Event::VisitStarted {
                visit_id,
                planned_end,
            } => {
                let mut room_id = None;
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.state = VisitState::InService;
                    v.started_at = Some(at);
                    v.planned_end = Some(*planned_end);
                    v.overtime = false;
                    room_id = v.room;
                    if let Some(t) = v.therapist.and_then(|id| self.staff.get_mut(&id)) {
                        t.presence = Presence::InSession;
                        t.presence_since = at;
                    }
                }
                if let Some(room) = room_id.and_then(|id| self.rooms.get_mut(&id)) {
                    if room.status != RoomStatus::Occupied {
                        room.status = RoomStatus::Occupied;
                        room.status_since = at;
                    }
                }
                self.refresh_overtime(room_id);
            }
            Event::VisitStartUndone { visit_id } => {
                let mut room_id = None;
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.state = VisitState::Called;
                    v.started_at = None;
                    v.planned_end = None;
                    v.extended_min = 0;
                    v.overtime = false;
                    room_id = v.room;
                    if let Some(t) = v.therapist.and_then(|id| self.staff.get_mut(&id)) {
                        t.presence = Presence::Called;
                        t.presence_since = at;
                    }
                }
                self.settle_room_status(room_id, at);
            }
            Event::VisitExtended {
                visit_id,
                minutes,
                planned_end,
            } => {
                let mut room_id = None;
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.extended_min += minutes;
                    v.planned_end = Some(*planned_end);
                    v.overtime = false;
                    room_id = v.room;
                }
                self.refresh_overtime(room_id);
            }
            Event::VisitOvertime { visit_id } => {
                let mut room_id = None;
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.overtime = true;
                    room_id = v.room;
                }
                self.refresh_overtime(room_id);
            }
            Event::VisitFinished {
                visit_id,
                cleaning_until,
                cleaning_ms,
            } => {
                let Some(v) = self.visits.get_mut(visit_id) else {
                    return;
                };
                v.state = VisitState::AwaitingPayment;
                v.finished_at = Some(at);
                v.overtime = false;
                let (therapist, room) = (v.therapist, v.room);
                self.release_therapist(therapist, at);
                if let Some(room) = room {
                    // No cleanup time: the room is free at once.
                    let cleanup = (*cleaning_ms > 0).then_some((*cleaning_until, *cleaning_ms));
                    self.vacate(room, *visit_id, at, cleanup);
                }
            }
            Event::VisitLeft { visit_id, reason } | Event::VisitVoided { visit_id, reason } => {
                let left = matches!(record.event, Event::VisitLeft { .. });
                let Some(v) = self.visits.get_mut(visit_id) else {
                    return;
                };
                let before = v.state;
                v.state = if left {
                    VisitState::Left
                } else {
                    VisitState::Voided
                };
                v.reason = Some(reason.clone());
                v.ended_at = Some(at);
                v.overtime = false;
                let (therapist, room, turn) = (v.therapist, v.room, v.turn_taken);
                if matches!(before, VisitState::Called | VisitState::InService) {
                    if before == VisitState::Called {
                        // Unserved: as on an undone call, the therapist gets
                        // the turn and the place in the rotation back.
                        if let Some(t) = therapist.and_then(|id| self.staff.get_mut(&id)) {
                            t.turns = t.turns.saturating_sub(turn);
                            if t.presence == Presence::Called {
                                t.presence = Presence::Available;
                                t.presence_since = at;
                            }
                            t.current_visit = None;
                        }
                    } else {
                        self.release_therapist(therapist, at);
                    }
                    if let Some(room) = room {
                        // A session cut short still leaves a room to clean (untimed).
                        let cleanup = (before == VisitState::InService).then_some((None, 0));
                        self.vacate(room, *visit_id, at, cleanup);
                    }
                }
            }
        }
    }

    fn apply_money(&mut self, event: &Event, seq: u64, at: i64) {
        match event {
            Event::VisitCheckedOut { visit_id, checkout } => {
                let mut checkout = checkout.clone();
                checkout.seq = seq;
                checkout.at = at;
                if let Some(d) = self.drawers.get_mut(&checkout.drawer_id) {
                    for p in &checkout.payments {
                        d.taken.add(p.method, p.amount_cents);
                    }
                    d.change_cents = d.change_cents.saturating_add(checkout.change_cents);
                }
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.state = VisitState::Closed;
                    v.ended_at = Some(at);
                    v.checkout = Some(checkout);
                }
            }
            Event::VisitRefunded { visit_id, refund } => {
                let mut refund = refund.clone();
                refund.at = at;
                if let Some(d) = refund.drawer_id.and_then(|id| self.drawers.get_mut(&id)) {
                    d.refunded.add(refund.method, refund.amount_cents);
                }
                if let Some(v) = self.visits.get_mut(visit_id) {
                    v.refunds.push(refund);
                }
            }
            Event::VisitRetipped { visit_id, tips, .. } => {
                if let Some(c) = self
                    .visits
                    .get_mut(visit_id)
                    .and_then(|v| v.checkout.as_mut())
                {
                    c.tips = tips.clone();
                }
            }
            Event::DrawerOpened { drawer } => {
                self.bump_id(drawer.id);
                let mut drawer = drawer.clone();
                drawer.opened_at = at;
                self.drawers.insert(drawer.id, drawer);
            }
            Event::DrawerMoved {
                drawer_id,
                movement,
            } => {
                if let Some(d) = self.drawers.get_mut(drawer_id) {
                    let mut movement = movement.clone();
                    movement.at = at;
                    d.moves.push(movement);
                }
            }
            Event::DrawerClosed {
                drawer_id,
                z_report,
                forced,
            } => {
                if let Some(d) = self.drawers.get_mut(drawer_id) {
                    d.closed_at = Some(at);
                    d.z_report = Some(z_report.clone());
                    d.forced = *forced;
                }
            }
            _ => {}
        }
    }

    pub(super) fn bump_id(&mut self, id: Id) {
        if id >= self.counters.next_id {
            self.counters.next_id = id + 1;
        }
    }

    fn release_therapist(&mut self, therapist: Option<Id>, at: i64) {
        if let Some(t) = therapist.and_then(|id| self.staff.get_mut(&id)) {
            if matches!(t.presence, Presence::Called | Presence::InSession) {
                t.presence = Presence::Available;
                t.presence_since = at;
                t.available_since = Some(at);
            }
            t.current_visit = None;
        }
    }

    fn occupy(&mut self, room_id: Id, visit_id: Id, at: i64) {
        if let Some(room) = self.rooms.get_mut(&room_id) {
            if !room.occupants.contains(&visit_id) {
                room.occupants.push(visit_id);
            }
            if room.status != RoomStatus::Held && room.status != RoomStatus::Occupied {
                room.status = RoomStatus::Held;
                room.status_since = at;
                room.reason = None;
                room.cleaning_until = None;
            }
        }
    }

    /// Takes a visit out of its room; an emptied room goes to `available`, or
    /// to `cleaning` when `cleanup` says so (with its end and length).
    fn vacate(&mut self, room_id: Id, visit_id: Id, at: i64, cleanup: Option<(Option<i64>, i64)>) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        room.occupants.retain(|v| *v != visit_id);
        if room.occupants.is_empty() {
            match cleanup {
                Some((until, ms)) => {
                    room.status = RoomStatus::Cleaning;
                    room.cleaning_until = until;
                    room.cleaning_ms = ms;
                }
                None => {
                    room.status = RoomStatus::Available;
                    room.cleaning_until = None;
                    room.cleaning_ms = 0;
                }
            }
            room.status_since = at;
            room.reason = None;
            room.overtime = false;
        } else {
            self.settle_room_status(Some(room_id), at);
        }
    }

    /// Occupied while any occupant is in service, else held.
    fn settle_room_status(&mut self, room_id: Option<Id>, at: i64) {
        let Some(room_id) = room_id else { return };
        let in_service = self.rooms.get(&room_id).is_some_and(|room| {
            room.occupants.iter().any(|v| {
                self.visits
                    .get(v)
                    .is_some_and(|v| v.state == VisitState::InService)
            })
        });
        if let Some(room) = self.rooms.get_mut(&room_id) {
            if room.occupants.is_empty() {
                return;
            }
            let status = if in_service {
                RoomStatus::Occupied
            } else {
                RoomStatus::Held
            };
            if room.status != status {
                room.status = status;
                room.status_since = at;
            }
        }
        self.refresh_overtime(Some(room_id));
    }

    fn refresh_overtime(&mut self, room_id: Option<Id>) {
        let Some(room_id) = room_id else { return };
        let overtime = self.rooms.get(&room_id).is_some_and(|room| {
            room.occupants
                .iter()
                .any(|v| self.visits.get(v).is_some_and(|v| v.overtime))
        });
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.overtime = overtime;
        }
    }

    pub(super) fn apply_visit_created(&mut self, visit: &Visit) {
        self.bump_id(visit.id);
        if self.counters.ticket_day != visit.day {
            self.counters.ticket_day = visit.day;
            self.counters.tickets_today = 0;
        }
        self.counters.tickets_today += 1;
        self.visits.insert(visit.id, visit.clone());
    }

    /// Staff by name (case-insensitive), for login.
    pub fn staff_by_name(&self, name: &str) -> Option<&Staff> {
        self.staff
            .values()
            .find(|s| s.active && s.name.eq_ignore_ascii_case(name))
    }

    /// Waiting visits in queue order (oldest ticket first).
    pub fn waiting(&self) -> impl Iterator<Item = &Visit> {
        self.visits
            .values()
            .filter(|v| v.state == VisitState::Waiting)
    }
}

impl State {
    /// The records an event will change (besides `Counters`, always touched),
    /// read before applying it: the writer saves and persists exactly these.
    pub fn touched(&self, event: &Event) -> Vec<RecordKey> {
        let mut keys = vec![RecordKey::Counters];
        let visit_keys = |keys: &mut Vec<RecordKey>, visit_id: Id| {
            keys.push(RecordKey::Visit(visit_id));
            if let Some(v) = self.visits.get(&visit_id) {
                keys.extend(v.therapist.map(RecordKey::Staff));
                keys.extend(v.room.map(RecordKey::Room));
                // Other occupants of the room (their room status is shared).
                if let Some(room) = v.room.and_then(|r| self.rooms.get(&r)) {
                    keys.extend(room.occupants.iter().map(|o| RecordKey::Visit(*o)));
                }
            }
        };
        let staff_sessions = |keys: &mut Vec<RecordKey>, staff_id: Id| {
            keys.push(RecordKey::Staff(staff_id));
            keys.extend(
                self.sessions
                    .values()
                    .filter(|s| s.staff_id == staff_id)
                    .map(|s| RecordKey::Session(s.token_hash.clone())),
            );
        };
        match event {
            Event::RoomCreated { room } => keys.push(RecordKey::Room(room.id)),
            Event::RoomUpdated { room_id, .. }
            | Event::RoomRemoved { room_id }
            | Event::RoomStatusSet { room_id, .. } => keys.push(RecordKey::Room(*room_id)),
            Event::StaffCreated { staff } => keys.push(RecordKey::Staff(staff.id)),
            Event::StaffUpdated { staff_id, .. } | Event::StaffDeactivated { staff_id } => {
                staff_sessions(&mut keys, *staff_id)
            }
            Event::DevicePaired { device } => keys.push(RecordKey::Device(device.id)),
            Event::DeviceRevoked { device_id } => keys.push(RecordKey::Device(*device_id)),
            Event::ServiceCreated { service } | Event::ServiceUpdated { service } => {
                keys.push(RecordKey::Service(service.id))
            }
            Event::ServiceRemoved { service_id } => keys.push(RecordKey::Service(*service_id)),
            Event::SessionOpened { session } => {
                keys.push(RecordKey::Session(session.token_hash.clone()))
            }
            Event::SessionClosed { token_hash } => {
                keys.push(RecordKey::Session(token_hash.clone()))
            }
            Event::PresenceChanged { therapist_id, .. } => {
                keys.push(RecordKey::Staff(*therapist_id))
            }
            Event::VisitCreated { visit } => keys.push(RecordKey::Visit(visit.id)),
            Event::VisitCalled {
                visit_id,
                therapist_id,
                room_id,
                ..
            } => {
                keys.push(RecordKey::Visit(*visit_id));
                keys.push(RecordKey::Staff(*therapist_id));
                keys.push(RecordKey::Room(*room_id));
            }
            Event::VisitCallUndone { visit_id }
            | Event::VisitStarted { visit_id, .. }
            | Event::VisitStartUndone { visit_id }
            | Event::VisitExtended { visit_id, .. }
            | Event::VisitOvertime { visit_id }
            | Event::VisitFinished { visit_id, .. }
            | Event::VisitLeft { visit_id, .. }
            | Event::VisitVoided { visit_id, .. } => visit_keys(&mut keys, *visit_id),
            Event::VisitCheckedOut { visit_id, checkout } => {
                keys.push(RecordKey::Visit(*visit_id));
                keys.push(RecordKey::Drawer(checkout.drawer_id));
            }
            Event::VisitRefunded { visit_id, refund } => {
                keys.push(RecordKey::Visit(*visit_id));
                keys.extend(refund.drawer_id.map(RecordKey::Drawer));
            }
            Event::VisitRetipped { visit_id, .. } => keys.push(RecordKey::Visit(*visit_id)),
            Event::DrawerOpened { drawer } => keys.push(RecordKey::Drawer(drawer.id)),
            Event::DrawerMoved { drawer_id, .. } | Event::DrawerClosed { drawer_id, .. } => {
                keys.push(RecordKey::Drawer(*drawer_id))
            }
            Event::ShiftSet { shift } => {
                keys.push(RecordKey::Shift(shift.therapist_id, shift.date))
            }
            Event::ShiftCleared { therapist_id, date } => {
                keys.push(RecordKey::Shift(*therapist_id, *date))
            }
            Event::BlockCreated { block } => keys.push(RecordKey::Block(block.id)),
            Event::BlockRemoved { block_id } => keys.push(RecordKey::Block(*block_id)),
            Event::BookingCreated { booking } => keys.push(RecordKey::Booking(booking.id)),
            Event::BookingMoved { booking_id, .. }
            | Event::BookingCancelled { booking_id, .. }
            | Event::BookingNoShow { booking_id, .. }
            | Event::BookingLate { booking_id, .. } => keys.push(RecordKey::Booking(*booking_id)),
            Event::ClockSet { .. } => {}
            Event::BookingCheckedIn { booking_id, visit } => {
                keys.push(RecordKey::Booking(*booking_id));
                keys.push(RecordKey::Visit(visit.id));
                if let Some(c) = self.customer_index.booking_owner.get(booking_id) {
                    keys.push(RecordKey::Customer(*c));
                }
            }
            Event::CustomerCreated { .. }
            | Event::CustomerUpdated { .. }
            | Event::CustomerLinked { .. }
            | Event::CustomersMerged { .. }
            | Event::CustomerForgotten { .. }
            | Event::VisitUpdated { .. } => self.touched_customers(event, &mut keys),
            Event::Archived { archive } => keys.extend(archive.keys()),
            Event::VisitRestored { visit } => keys.push(RecordKey::Visit(visit.id)),
            Event::ReceiptsArchived { receipt_ids } => {
                keys.extend(receipt_ids.iter().map(|id| RecordKey::Receipt(*id)))
            }
            Event::ReceiptsRestored { receipts } => {
                keys.extend(receipts.iter().map(|r| RecordKey::Receipt(r.id)))
            }
            Event::ServiceTaxSet { .. }
            | Event::ProductCreated { .. }
            | Event::ProductUpdated { .. }
            | Event::ProductStockChanged { .. }
            | Event::Sold { .. }
            | Event::Refunded { .. }
            | Event::CorrectionApproved { .. } => self.touched_till(event, &mut keys),
        }
        keys.sort();
        keys.dedup();
        keys
    }
}
