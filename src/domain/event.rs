//! What happened: the records of the append-only event log.
//!
//! Events are persisted with postcard, so they use only plain data (no
//! `serde_json::Value`, no skipped or flattened fields). An event carries
//! every value `apply` needs, so applying it never recomputes a decision.

use serde::{Deserialize, Serialize};

use super::archive::Archive;
use super::book::{Block, Booking, Shift};
use super::customers::Customer;
use super::money::receipt::Receipt;
use super::money::retail::{GiftCard, Product};
use super::money::{Checkout, Drawer, DrawerMove, Refund, TipShare, ZReport};
use super::rotation::Turns;
use super::state::{Device, Presence, Room, RoomStatus, Service, Session, Staff, Visit};
use super::{Actor, Id, Role};

/// One entry of the log: its gap-free number, the wall clock, who, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub at: i64,
    pub actor: Actor,
    pub event: Event,
}

// Entity-carrying variants are larger than the rest; an event lives only
// until it is persisted and applied, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    RoomCreated {
        room: Room,
    },
    RoomUpdated {
        room_id: Id,
        name: String,
        capacity: u8,
        light_channel: Option<u16>,
    },
    RoomRemoved {
        room_id: Id,
    },
    RoomStatusSet {
        room_id: Id,
        status: RoomStatus,
        reason: Option<String>,
        cleaning_until: Option<i64>,
        cleaning_ms: i64,
    },
    StaffCreated {
        staff: Staff,
    },
    StaffUpdated {
        staff_id: Id,
        name: Option<String>,
        role: Option<Role>,
        pin_hash: Option<String>,
        skills: Option<Vec<String>>,
    },
    StaffDeactivated {
        staff_id: Id,
    },
    DevicePaired {
        device: Device,
    },
    DeviceRevoked {
        device_id: Id,
    },
    ServiceCreated {
        service: Service,
    },
    ServiceUpdated {
        service: Service,
    },
    ServiceRemoved {
        service_id: Id,
    },
    SessionOpened {
        session: Session,
    },
    SessionClosed {
        token_hash: String,
    },
    PresenceChanged {
        therapist_id: Id,
        presence: Presence,
    },
    VisitCreated {
        visit: Visit,
    },
    VisitCalled {
        visit_id: Id,
        therapist_id: Id,
        room_id: Id,
        /// Weighted turn counted for the therapist (0 for a request).
        turn: Turns,
        /// The day the turn counts for.
        day: u32,
        override_reason: Option<String>,
    },
    VisitCallUndone {
        visit_id: Id,
    },
    VisitStarted {
        visit_id: Id,
        planned_end: i64,
    },
    VisitStartUndone {
        visit_id: Id,
    },
    VisitExtended {
        visit_id: Id,
        minutes: u32,
        planned_end: i64,
    },
    VisitOvertime {
        visit_id: Id,
    },
    VisitFinished {
        visit_id: Id,
        cleaning_until: Option<i64>,
        cleaning_ms: i64,
    },
    VisitLeft {
        visit_id: Id,
        reason: String,
    },
    VisitVoided {
        visit_id: Id,
        reason: String,
    },
    VisitCheckedOut {
        visit_id: Id,
        checkout: Checkout,
    },
    VisitRefunded {
        visit_id: Id,
        refund: Refund,
    },
    VisitRetipped {
        visit_id: Id,
        tips: Vec<TipShare>,
        reason: String,
    },
    DrawerOpened {
        drawer: Drawer,
    },
    DrawerMoved {
        drawer_id: Id,
        movement: DrawerMove,
    },
    DrawerClosed {
        drawer_id: Id,
        z_report: ZReport,
        forced: bool,
    },
    // The book (schema 2). New variants only ever go at the end: postcard
    // numbers them by position, so older logs keep decoding.
    ShiftSet {
        shift: Shift,
    },
    ShiftCleared {
        therapist_id: Id,
        date: u32,
    },
    BlockCreated {
        block: Block,
    },
    BlockRemoved {
        block_id: Id,
    },
    BookingCreated {
        booking: Booking,
    },
    BookingMoved {
        booking_id: Id,
        to: BookingSlot,
    },
    BookingCancelled {
        booking_id: Id,
        reason: String,
        by_customer: bool,
    },
    BookingCheckedIn {
        booking_id: Id,
        visit: Visit,
    },
    BookingNoShow {
        booking_id: Id,
        /// Set when staff marked it; `None` when the grace period ran out.
        reason: Option<String>,
    },
    /// A checked-in booking's time came while its therapist or room was
    /// still busy: the desk is told once.
    BookingLate {
        booking_id: Id,
        message: String,
    },
    // Schema 3: history leaves memory (see `archive`), and `clock.set`.
    /// Finished history older than the days kept in memory left it (the
    /// store keeps the visits and bookings in its archive).
    Archived {
        archive: Archive,
    },
    /// An archived visit came back into memory for a command about it (a
    /// refund, a tip re-split), as it was archived.
    VisitRestored {
        visit: Visit,
    },
    /// An admin moved the floor's time forward (`clock.set`) while the
    /// system clock was not synchronised. (Postcard numbers the variants,
    /// so new ones go at the end.)
    ClockSet {
        from_ms: i64,
        to_ms: i64,
    },
    // Schema 4: the counter (#17), appended as ever.
    /// A service's tax rate (with `service.create`/`service.update`).
    ServiceTaxSet {
        service_id: Id,
        rate_bp: u32,
    },
    ProductCreated {
        product: Product,
    },
    /// Name, SKU, price, tax rate or active changed (stock moves by
    /// `ProductStockChanged` and sales only).
    ProductUpdated {
        product: Product,
    },
    ProductStockChanged {
        product_id: Id,
        delta: i64,
        /// The stock after the change.
        stock: i64,
        reason: String,
    },
    /// A checkout's receipt: just before `VisitCheckedOut` in the same batch
    /// for a visit (the checkout stays the batch's last event), alone for a
    /// sale. Takes products off the shelf, issues the
    /// gift cards sold, takes redeemed amounts off gift cards, and (a sale
    /// only: a visit's `VisitCheckedOut` already did) fills the drawer.
    Sold {
        receipt: Receipt,
        issued: Vec<GiftCard>,
    },
    /// A refund's receipt: just before `VisitRefunded` for a visit, alone for a
    /// sale. Marks the sale's lines refunded, restocks, gives gift card
    /// balances back, and (a sale only) takes the cash out of the drawer.
    Refunded {
        receipt: Receipt,
    },
    /// An admin approved a cashier's void or tip re-split with their PIN
    /// at the counter (a refund's receipt names its approver itself).
    CorrectionApproved {
        admin_id: Id,
        action: String,
        visit_id: Id,
    },
    // Schema 4: returning customers (#16). Appended, like every schema's.
    CustomerCreated {
        customer: Customer,
    },
    CustomerUpdated {
        customer_id: Id,
        name: String,
        phone: Option<String>,
        email: Option<String>,
        notes: Option<String>,
    },
    /// A visit or a booking points to a customer from now on.
    CustomerLinked {
        customer_id: Id,
        visit_id: Option<Id>,
        booking_id: Option<Id>,
    },
    /// `from_id`'s history moved to `into_id`; `from_id` is gone.
    CustomersMerged {
        from_id: Id,
        into_id: Id,
    },
    /// The right to erasure: the person's data is blanked everywhere the
    /// state holds it, and the store destroys `key_ids` (which seal every
    /// copy in the log and the archive). The ids tell head office what to
    /// blank.
    CustomerForgotten {
        customer_id: Id,
        reason: String,
        visit_ids: Vec<Id>,
        booking_ids: Vec<Id>,
        key_ids: Vec<Id>,
    },
    /// `visit.update`: the visit's editable fields after the edit, with
    /// what follows from the services, and the names of those that changed.
    VisitUpdated {
        visit_id: Id,
        customer_name: String,
        phone: Option<String>,
        notes: Option<String>,
        service_ids: Vec<Id>,
        requested_therapist: Option<Id>,
        services_cents: i64,
        service_minutes: u32,
        cleanup_min: u32,
        planned_end: Option<i64>,
        changed: Vec<String>,
    },
    // Schema 5: receipts leave memory too (see `archive`).
    /// Receipts older than a day left memory; the store keeps them in its
    /// archive (the receipt page and refunds read them back).
    ReceiptsArchived {
        receipt_ids: Vec<Id>,
    },
    /// Archived receipts came back into memory for a refund of their visit
    /// or sale, as they were archived (a sale with its refunds).
    ReceiptsRestored {
        receipts: Vec<Receipt>,
    },
}

/// Where and when a booking is (what `booking.move` changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingSlot {
    pub date: u32,
    pub number: String,
    pub number_of_day: u32,
    pub time: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub room_until_ms: i64,
    pub therapist_id: Id,
    pub room_id: Id,
}

impl Event {
    /// The event's name in logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RoomCreated { .. } => "room_created",
            Event::RoomUpdated { .. } => "room_updated",
            Event::RoomRemoved { .. } => "room_removed",
            Event::RoomStatusSet { .. } => "room_status_set",
            Event::StaffCreated { .. } => "staff_created",
            Event::StaffUpdated { .. } => "staff_updated",
            Event::StaffDeactivated { .. } => "staff_deactivated",
            Event::DevicePaired { .. } => "device_paired",
            Event::DeviceRevoked { .. } => "device_revoked",
            Event::ServiceCreated { .. } => "service_created",
            Event::ServiceUpdated { .. } => "service_updated",
            Event::ServiceRemoved { .. } => "service_removed",
            Event::SessionOpened { .. } => "session_opened",
            Event::SessionClosed { .. } => "session_closed",
            Event::PresenceChanged { .. } => "presence_changed",
            Event::VisitCreated { .. } => "visit_created",
            Event::VisitCalled { .. } => "visit_called",
            Event::VisitCallUndone { .. } => "visit_call_undone",
            Event::VisitStarted { .. } => "visit_started",
            Event::VisitStartUndone { .. } => "visit_start_undone",
            Event::VisitExtended { .. } => "visit_extended",
            Event::VisitOvertime { .. } => "visit_overtime",
            Event::VisitFinished { .. } => "visit_finished",
            Event::VisitLeft { .. } => "visit_left",
            Event::VisitVoided { .. } => "visit_voided",
            Event::VisitCheckedOut { .. } => "visit_checked_out",
            Event::VisitRefunded { .. } => "visit_refunded",
            Event::VisitRetipped { .. } => "visit_retipped",
            Event::DrawerOpened { .. } => "drawer_opened",
            Event::DrawerMoved { .. } => "drawer_moved",
            Event::DrawerClosed { .. } => "drawer_closed",
            Event::ShiftSet { .. } => "shift_set",
            Event::ShiftCleared { .. } => "shift_cleared",
            Event::BlockCreated { .. } => "block_created",
            Event::BlockRemoved { .. } => "block_removed",
            Event::BookingCreated { .. } => "booking_created",
            Event::BookingMoved { .. } => "booking_moved",
            Event::BookingCancelled { .. } => "booking_cancelled",
            Event::BookingCheckedIn { .. } => "booking_checked_in",
            Event::BookingNoShow { .. } => "booking_no_show",
            Event::BookingLate { .. } => "booking_late",
            Event::Archived { .. } => "archived",
            Event::VisitRestored { .. } => "visit_restored",
            Event::ReceiptsArchived { .. } => "receipts_archived",
            Event::ReceiptsRestored { .. } => "receipts_restored",
            Event::ClockSet { .. } => "clock_set",
            Event::ServiceTaxSet { .. } => "service_tax_set",
            Event::ProductCreated { .. } => "product_created",
            Event::ProductUpdated { .. } => "product_updated",
            Event::ProductStockChanged { .. } => "product_stock_changed",
            Event::Sold { .. } => "sold",
            Event::Refunded { .. } => "refunded",
            Event::CorrectionApproved { .. } => "correction_approved",
            Event::CustomerCreated { .. } => "customer_created",
            Event::CustomerUpdated { .. } => "customer_updated",
            Event::CustomerLinked { .. } => "customer_linked",
            Event::CustomersMerged { .. } => "customers_merged",
            Event::CustomerForgotten { .. } => "customer_forgotten",
            Event::VisitUpdated { .. } => "visit_updated",
        }
    }
}
