//! What clients may ask, decoded from a Socket.IO event name and its JSON
//! arguments into typed commands; plus the hub's own internal commands.
//!
//! Decoding checks shape and types (the message names the field); range and
//! state checks are `decide`'s. Secrets never reach the core in clear: the
//! shell replaces a PIN by its argon2 hash and generates tokens, passing only
//! their hashes (`prepare` fields, skipped by the decoder).

use super::book::time::StartArg;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::money::{Method, MoveKind, PerMethod};
use super::state::RoomStatus;
use super::{invalid, DomainError, Id, Role};

/// `Option<Option<T>>`: absent = leave as is, `null` = clear, value = set.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomCreate {
    pub name: String,
    #[serde(default = "one")]
    pub capacity: u8,
    #[serde(default)]
    pub light_channel: Option<u16>,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomUpdate {
    pub room_id: Id,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub capacity: Option<u8>,
    #[serde(default, deserialize_with = "double_option")]
    pub light_channel: Option<Option<u16>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomRef {
    pub room_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoomSetStatus {
    pub room_id: Id,
    pub status: RoomStatus,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceCreate {
    pub name: String,
    pub duration_min: u32,
    #[serde(default)]
    pub cleanup_min: u32,
    pub price_cents: i64,
    #[serde(default)]
    pub skill: Option<String>,
    #[serde(default = "one_f64")]
    pub turn_weight: f64,
    /// Basis points (7.25% is 725); default 0.
    #[serde(default)]
    pub tax_rate_bp: i64,
}

fn one_f64() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceUpdate {
    pub service_id: Id,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub duration_min: Option<u32>,
    #[serde(default)]
    pub cleanup_min: Option<u32>,
    #[serde(default)]
    pub price_cents: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    pub skill: Option<Option<String>>,
    #[serde(default)]
    pub turn_weight: Option<f64>,
    #[serde(default)]
    pub tax_rate_bp: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceRef {
    pub service_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaffCreate {
    pub name: String,
    pub role: Role,
    /// Clear PIN as sent; the shell checks it and replaces it by `pin_hash`.
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(skip)]
    pub pin_hash: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaffUpdate {
    pub staff_id: Id,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    #[serde(skip)]
    pub pin_hash: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaffRef {
    pub staff_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DevicePair {
    pub role: Role,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceRef {
    pub device_id: Id,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TherapistRef {
    #[serde(default)]
    pub therapist_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitCreate {
    /// May be left out with `customer_id` (the customer's name is used).
    #[serde(default)]
    pub customer_name: String,
    /// The returning customer this visit is for.
    #[serde(default)]
    pub customer_id: Option<Id>,
    pub service_ids: Vec<Id>,
    #[serde(default)]
    pub requested_therapist_id: Option<Id>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(skip)]
    pub token_hash: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitCall {
    #[serde(default)]
    pub visit_id: Option<Id>,
    #[serde(default)]
    pub therapist_id: Option<Id>,
    #[serde(default)]
    pub room_id: Option<Id>,
    #[serde(default)]
    pub override_reason: Option<String>,
    /// Whether a requested therapist's visit counts as a turn (default no).
    #[serde(default)]
    pub count_turn: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitRef {
    pub visit_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitExtend {
    pub visit_id: Id,
    pub minutes: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitReason {
    pub visit_id: Id,
    pub reason: String,
    /// A cashier's void: an admin's PIN entered at the counter.
    #[serde(default)]
    pub approval: Option<ApprovalArg>,
    #[serde(skip)]
    pub approved_by: Option<Id>,
}

/// An admin's say-so at the counter: the admin picks their name and types
/// their PIN on the cashier's screen. The shell checks the PIN (argon2, off
/// the writer, with the login lockout) and passes on only `approved_by`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalArg {
    pub admin_id: Id,
    pub pin: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaymentArg {
    pub method: Method,
    pub amount_cents: i64,
    #[serde(default)]
    pub reference: Option<String>,
    /// A gift card payment's code (the shell hashes it into `code_hash`
    /// and drops it).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(skip)]
    pub code_hash: Option<String>,
}

/// A product line of a checkout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemArg {
    pub product_id: Id,
    pub qty: u32,
}

/// A gift card sold: its amount. The core derives its code from the box's
/// secret (`Rules::giftcard_key`) and keeps only the hash and the last four
/// characters; the ack shows the code to the seller.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GiftcardArg {
    pub amount_cents: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TipShareArg {
    pub therapist_id: Id,
    pub amount_cents: i64,
}

/// A discount: an amount in cents or a percentage of the services, and why.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscountArg {
    #[serde(default)]
    pub amount_cents: Option<i64>,
    #[serde(default)]
    pub percent: Option<u32>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitCheckout {
    pub visit_id: Id,
    /// Chosen by the client once per checkout attempt; a retry with the same
    /// id gets the first answer instead of a second charge.
    pub request_id: String,
    #[serde(default)]
    pub payments: Vec<PaymentArg>,
    #[serde(default)]
    pub tip_cents: i64,
    #[serde(default)]
    pub tip_split: Option<Vec<TipShareArg>>,
    #[serde(default)]
    pub discount: Option<DiscountArg>,
    /// Products sold with the visit.
    #[serde(default)]
    pub items: Vec<ItemArg>,
    /// Gift cards sold with the visit.
    #[serde(default)]
    pub giftcards: Vec<GiftcardArg>,
}

/// `sale.checkout` (and `giftcard.issue`): a checkout without a visit.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaleCheckout {
    pub request_id: String,
    #[serde(default)]
    pub items: Vec<ItemArg>,
    #[serde(default)]
    pub giftcards: Vec<GiftcardArg>,
    #[serde(default)]
    pub payments: Vec<PaymentArg>,
    #[serde(default)]
    pub discount: Option<DiscountArg>,
}

/// `giftcard.issue`: one gift card sold on its own (a sale of one card).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GiftcardIssue {
    pub request_id: String,
    pub amount_cents: i64,
    #[serde(default)]
    pub payments: Vec<PaymentArg>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GiftcardBalance {
    pub code: String,
    #[serde(skip)]
    pub code_hash: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    pub name: String,
    pub sku: String,
    pub price_cents: i64,
    #[serde(default)]
    pub tax_rate_bp: i64,
    #[serde(default)]
    pub stock: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    pub product_id: Id,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub price_cents: Option<i64>,
    #[serde(default)]
    pub tax_rate_bp: Option<i64>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProductStock {
    pub product_id: Id,
    pub delta: i64,
    pub reason: String,
}

/// One line of a receipt to refund: its index, and how many of it
/// (default: all that is left).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineRefundArg {
    pub line: usize,
    #[serde(default)]
    pub qty: Option<u32>,
}

/// `visit.refund` (`visit_id`) and `sale.refund` (`sale_id`): exactly one
/// of `amount_cents`, `lines` or `full`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RefundArgs {
    #[serde(default)]
    pub visit_id: Option<Id>,
    #[serde(default)]
    pub sale_id: Option<Id>,
    #[serde(default)]
    pub amount_cents: Option<i64>,
    #[serde(default)]
    pub lines: Option<Vec<LineRefundArg>>,
    #[serde(default)]
    pub full: bool,
    /// Default: the one tender the sale was paid with.
    #[serde(default)]
    pub method: Option<Method>,
    pub reason: String,
    /// The admin's say-so to refund in a tender the visit was not paid with
    /// (or more than was paid in it).
    #[serde(default)]
    pub other_tender: bool,
    /// Put refunded products back on the shelf.
    #[serde(default)]
    pub restock: bool,
    #[serde(default)]
    pub approval: Option<ApprovalArg>,
    #[serde(skip)]
    pub approved_by: Option<Id>,
}

/// `visit.refund`'s arguments (kept under this name for the callers).
pub type VisitRefund = RefundArgs;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitRetip {
    pub visit_id: Id,
    pub tip_split: Vec<TipShareArg>,
    pub reason: String,
    #[serde(default)]
    pub approval: Option<ApprovalArg>,
    #[serde(skip)]
    pub approved_by: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrawerOpen {
    #[serde(default)]
    pub float_cents: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrawerMoveArg {
    pub kind: MoveKind,
    pub amount_cents: i64,
    #[serde(default)]
    pub note: String,
    /// An admin may name another staff member's drawer.
    #[serde(default)]
    pub drawer_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrawerClose {
    pub counted: PerMethod,
    /// Close although visits await payment (admin only).
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub drawer_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSet {
    pub therapist_id: Id,
    pub date: String,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub off: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlockCreate {
    #[serde(default)]
    pub therapist_id: Option<Id>,
    #[serde(default)]
    pub room_id: Option<Id>,
    pub start: StartArg,
    pub end: StartArg,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlockRef {
    pub block_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingAvailability {
    pub date: String,
    pub service_ids: Vec<Id>,
    #[serde(default)]
    pub therapist_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingCreate {
    pub start: StartArg,
    pub service_ids: Vec<Id>,
    /// None: any therapist (the hub picks one).
    #[serde(default)]
    pub therapist_id: Option<Id>,
    /// None: any room that fits.
    #[serde(default)]
    pub room_id: Option<Id>,
    /// May be left out with `customer_id` (the customer's name is used).
    #[serde(default)]
    pub customer_name: String,
    #[serde(default)]
    pub customer_id: Option<Id>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Chosen by the client once per booking: a retry gets the first answer.
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(skip)]
    pub token_hash: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingMove {
    pub booking_id: Id,
    #[serde(default)]
    pub start: Option<StartArg>,
    #[serde(default)]
    pub therapist_id: Option<Id>,
    #[serde(default)]
    pub room_id: Option<Id>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingCancel {
    pub booking_id: Id,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `clock.set`: an admin's device time (ms since the epoch) for a hub
/// whose system clock is not synchronised.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClockSet {
    pub now_ms: i64,
    /// Filled by the shell: whether the system clock is synchronised.
    #[serde(skip)]
    pub synchronized: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingRef {
    pub booking_id: Id,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BookingList {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub therapist_id: Option<Id>,
    /// The archived bookings of a past date: filled in by the writer from
    /// the store, never from the wire.
    #[serde(skip)]
    pub archived: Vec<crate::domain::book::Booking>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerCreate {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Make a second record although a customer has this phone.
    #[serde(default)]
    pub duplicate: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdate {
    pub customer_id: Id,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerSearch {
    pub q: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerHistory {
    pub customer_id: Id,
    /// Filled in by the writer from the store's archive, never from the wire.
    #[serde(skip)]
    pub archived_visits: Vec<crate::domain::state::Visit>,
    #[serde(skip)]
    pub archived_bookings: Vec<crate::domain::book::Booking>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerMerge {
    pub customer_id: Id,
    pub into_id: Id,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomerForget {
    pub customer_id: Id,
    pub reason: String,
}

/// `visit.update`: absent = unchanged; `null` clears phone, notes or the
/// requested therapist.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisitUpdate {
    pub visit_id: Id,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub notes: Option<Option<String>>,
    #[serde(default)]
    pub service_ids: Option<Vec<Id>>,
    #[serde(default, deserialize_with = "double_option")]
    pub requested_therapist_id: Option<Option<Id>>,
    /// Links the visit to a customer record (the desk took an offered match).
    #[serde(default)]
    pub customer_id: Option<Id>,
}

/// Everything the writer can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RoomCreate(RoomCreate),
    RoomUpdate(RoomUpdate),
    RoomRemove(RoomRef),
    RoomSetStatus(RoomSetStatus),
    ServiceCreate(ServiceCreate),
    ServiceUpdate(ServiceUpdate),
    ServiceRemove(ServiceRef),
    StaffCreate(StaffCreate),
    StaffUpdate(StaffUpdate),
    StaffDeactivate(StaffRef),
    DevicePair(DevicePair),
    DeviceRevoke(DeviceRef),
    ClockIn(TherapistRef),
    ClockOut(TherapistRef),
    Break(TherapistRef),
    Resume(TherapistRef),
    VisitCreate(VisitCreate),
    VisitCall(VisitCall),
    VisitStart(VisitRef),
    VisitFinish(VisitRef),
    VisitExtend(VisitExtend),
    VisitUndo(VisitRef),
    VisitLeave(VisitReason),
    VisitVoid(VisitReason),
    VisitCheckout(VisitCheckout),
    VisitRefund(VisitRefund),
    VisitRetip(VisitRetip),
    DrawerOpen(DrawerOpen),
    DrawerMove(DrawerMoveArg),
    DrawerClose(DrawerClose),
    ScheduleSet(ScheduleSet),
    BlockCreate(BlockCreate),
    BlockRemove(BlockRef),
    BookingAvailability(BookingAvailability),
    BookingCreate(BookingCreate),
    BookingMove(BookingMove),
    BookingCancel(BookingCancel),
    BookingCheckIn(BookingRef),
    BookingNoShow(BookingRef),
    BookingList(BookingList),
    ClockSet(ClockSet),
    // The counter (#17).
    ProductCreate(ProductCreate),
    ProductUpdate(ProductUpdate),
    ProductStock(ProductStock),
    GiftcardIssue(GiftcardIssue),
    GiftcardBalance(GiftcardBalance),
    SaleCheckout(SaleCheckout),
    SaleRefund(RefundArgs),
    CustomerCreate(CustomerCreate),
    CustomerUpdate(CustomerUpdate),
    CustomerSearch(CustomerSearch),
    CustomerHistory(CustomerHistory),
    CustomerMerge(CustomerMerge),
    CustomerForget(CustomerForget),
    VisitUpdate(VisitUpdate),
    // Internal: never decoded from the wire.
    /// A staff member logged in (the shell checked the PIN).
    SessionOpen {
        staff_id: Id,
        token_hash: String,
    },
    /// Logout.
    SessionClose {
        token_hash: String,
    },
    /// A cleanup timer ran out.
    CleanupElapsed {
        room_id: Id,
    },
    /// A session passed its planned end (the planned end the timer was set for).
    OvertimeReached {
        visit_id: Id,
        planned_end: i64,
    },
    /// A booking's grace period ran out without a check-in (for the start
    /// the timer was set for).
    NoShowDue {
        booking_id: Id,
        start_ms: i64,
    },
    /// A checked-in booking reached its start while its visit still waits.
    BookingDue {
        booking_id: Id,
    },
    /// The hourly pass that moves finished history out of memory.
    ArchiveDue,
}

/// Every wire command name, in the order of PROTOCOL.md. `sync` and
/// `report.day` change nothing and are answered outside the writer (so
/// `Command::decode` does not know them).
pub const WIRE_COMMANDS: &[&str] = &[
    "room.create",
    "room.update",
    "room.remove",
    "room.set_status",
    "service.create",
    "service.update",
    "service.remove",
    "staff.create",
    "staff.update",
    "staff.deactivate",
    "device.pair",
    "device.revoke",
    "therapist.clock_in",
    "therapist.clock_out",
    "therapist.break",
    "therapist.resume",
    "visit.create",
    "visit.call",
    "visit.start",
    "visit.finish",
    "visit.extend",
    "visit.undo",
    "visit.leave",
    "visit.void",
    "visit.checkout",
    "visit.refund",
    "visit.retip",
    "drawer.open",
    "drawer.move",
    "drawer.close",
    "report.day",
    "schedule.set",
    "block.create",
    "block.remove",
    "booking.availability",
    "booking.create",
    "booking.move",
    "booking.cancel",
    "booking.check_in",
    "booking.no_show",
    "booking.list",
    "clock.set",
    "product.create",
    "product.update",
    "product.stock",
    "giftcard.issue",
    "giftcard.balance",
    "sale.checkout",
    "sale.refund",
    "customer.create",
    "customer.update",
    "customer.search",
    "customer.history",
    "customer.merge",
    "customer.forget",
    "visit.update",
    "sync",
];

fn args<T: DeserializeOwned>(name: &str, value: serde_json::Value) -> Result<T, DomainError> {
    // A command with no arguments may be sent as `["visit.call"]`.
    let value = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value
    };
    if !value.is_object() {
        return Err(invalid(format!(
            "the arguments of {name} must be a JSON object"
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            invalid(format!("{name}: {inner}"))
        } else {
            invalid(format!("{name}: field `{path}`: {inner}"))
        }
    })
}

impl Command {
    /// Decodes a wire command. Unknown names are `invalid` with the name.
    pub fn decode(name: &str, value: serde_json::Value) -> Result<Command, DomainError> {
        Ok(match name {
            "room.create" => Command::RoomCreate(args(name, value)?),
            "room.update" => Command::RoomUpdate(args(name, value)?),
            "room.remove" => Command::RoomRemove(args(name, value)?),
            "room.set_status" => Command::RoomSetStatus(args(name, value)?),
            "service.create" => Command::ServiceCreate(args(name, value)?),
            "service.update" => Command::ServiceUpdate(args(name, value)?),
            "service.remove" => Command::ServiceRemove(args(name, value)?),
            "staff.create" => Command::StaffCreate(args(name, value)?),
            "staff.update" => Command::StaffUpdate(args(name, value)?),
            "staff.deactivate" => Command::StaffDeactivate(args(name, value)?),
            "device.pair" => Command::DevicePair(args(name, value)?),
            "device.revoke" => Command::DeviceRevoke(args(name, value)?),
            "therapist.clock_in" => Command::ClockIn(args(name, value)?),
            "therapist.clock_out" => Command::ClockOut(args(name, value)?),
            "therapist.break" => Command::Break(args(name, value)?),
            "therapist.resume" => Command::Resume(args(name, value)?),
            "visit.create" => Command::VisitCreate(args(name, value)?),
            "visit.call" => Command::VisitCall(args(name, value)?),
            "visit.start" => Command::VisitStart(args(name, value)?),
            "visit.finish" => Command::VisitFinish(args(name, value)?),
            "visit.extend" => Command::VisitExtend(args(name, value)?),
            "visit.undo" => Command::VisitUndo(args(name, value)?),
            "visit.leave" => Command::VisitLeave(args(name, value)?),
            "visit.void" => Command::VisitVoid(args(name, value)?),
            "visit.checkout" => Command::VisitCheckout(args(name, value)?),
            "visit.refund" => Command::VisitRefund(args(name, value)?),
            "visit.retip" => Command::VisitRetip(args(name, value)?),
            "drawer.open" => Command::DrawerOpen(args(name, value)?),
            "drawer.move" => Command::DrawerMove(args(name, value)?),
            "drawer.close" => Command::DrawerClose(args(name, value)?),
            "schedule.set" => Command::ScheduleSet(args(name, value)?),
            "block.create" => Command::BlockCreate(args(name, value)?),
            "block.remove" => Command::BlockRemove(args(name, value)?),
            "booking.availability" => Command::BookingAvailability(args(name, value)?),
            "booking.create" => Command::BookingCreate(args(name, value)?),
            "booking.move" => Command::BookingMove(args(name, value)?),
            "booking.cancel" => Command::BookingCancel(args(name, value)?),
            "booking.check_in" => Command::BookingCheckIn(args(name, value)?),
            "booking.no_show" => Command::BookingNoShow(args(name, value)?),
            "booking.list" => Command::BookingList(args(name, value)?),
            "clock.set" => Command::ClockSet(args(name, value)?),
            "product.create" => Command::ProductCreate(args(name, value)?),
            "product.update" => Command::ProductUpdate(args(name, value)?),
            "product.stock" => Command::ProductStock(args(name, value)?),
            "giftcard.issue" => Command::GiftcardIssue(args(name, value)?),
            "giftcard.balance" => Command::GiftcardBalance(args(name, value)?),
            "sale.checkout" => Command::SaleCheckout(args(name, value)?),
            "sale.refund" => Command::SaleRefund(args(name, value)?),
            "customer.create" => Command::CustomerCreate(args(name, value)?),
            "customer.update" => Command::CustomerUpdate(args(name, value)?),
            "customer.search" => Command::CustomerSearch(args(name, value)?),
            "customer.history" => Command::CustomerHistory(args(name, value)?),
            "customer.merge" => Command::CustomerMerge(args(name, value)?),
            "customer.forget" => Command::CustomerForget(args(name, value)?),
            "visit.update" => Command::VisitUpdate(args(name, value)?),
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(invalid(format!("unknown command `{shown}`")));
            }
        })
    }

    /// A question that never changes anything (answered by the writer so it
    /// sees a consistent state, but without an event or a `seq`).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::BookingAvailability(_)
                | Command::BookingList(_)
                | Command::CustomerSearch(_)
                | Command::CustomerHistory(_)
                | Command::GiftcardBalance(_)
        )
    }

    /// The wire name (internal commands have names of their own).
    pub fn name(&self) -> &'static str {
        match self {
            Command::RoomCreate(_) => "room.create",
            Command::RoomUpdate(_) => "room.update",
            Command::RoomRemove(_) => "room.remove",
            Command::RoomSetStatus(_) => "room.set_status",
            Command::ServiceCreate(_) => "service.create",
            Command::ServiceUpdate(_) => "service.update",
            Command::ServiceRemove(_) => "service.remove",
            Command::StaffCreate(_) => "staff.create",
            Command::StaffUpdate(_) => "staff.update",
            Command::StaffDeactivate(_) => "staff.deactivate",
            Command::DevicePair(_) => "device.pair",
            Command::DeviceRevoke(_) => "device.revoke",
            Command::ClockIn(_) => "therapist.clock_in",
            Command::ClockOut(_) => "therapist.clock_out",
            Command::Break(_) => "therapist.break",
            Command::Resume(_) => "therapist.resume",
            Command::VisitCreate(_) => "visit.create",
            Command::VisitCall(_) => "visit.call",
            Command::VisitStart(_) => "visit.start",
            Command::VisitFinish(_) => "visit.finish",
            Command::VisitExtend(_) => "visit.extend",
            Command::VisitUndo(_) => "visit.undo",
            Command::VisitLeave(_) => "visit.leave",
            Command::VisitVoid(_) => "visit.void",
            Command::VisitCheckout(_) => "visit.checkout",
            Command::VisitRefund(_) => "visit.refund",
            Command::VisitRetip(_) => "visit.retip",
            Command::DrawerOpen(_) => "drawer.open",
            Command::DrawerMove(_) => "drawer.move",
            Command::DrawerClose(_) => "drawer.close",
            Command::ScheduleSet(_) => "schedule.set",
            Command::BlockCreate(_) => "block.create",
            Command::BlockRemove(_) => "block.remove",
            Command::BookingAvailability(_) => "booking.availability",
            Command::BookingCreate(_) => "booking.create",
            Command::BookingMove(_) => "booking.move",
            Command::BookingCancel(_) => "booking.cancel",
            Command::BookingCheckIn(_) => "booking.check_in",
            Command::BookingNoShow(_) => "booking.no_show",
            Command::BookingList(_) => "booking.list",
            Command::ClockSet(_) => "clock.set",
            Command::ProductCreate(_) => "product.create",
            Command::ProductUpdate(_) => "product.update",
            Command::ProductStock(_) => "product.stock",
            Command::GiftcardIssue(_) => "giftcard.issue",
            Command::GiftcardBalance(_) => "giftcard.balance",
            Command::SaleCheckout(_) => "sale.checkout",
            Command::SaleRefund(_) => "sale.refund",
            Command::CustomerCreate(_) => "customer.create",
            Command::CustomerUpdate(_) => "customer.update",
            Command::CustomerSearch(_) => "customer.search",
            Command::CustomerHistory(_) => "customer.history",
            Command::CustomerMerge(_) => "customer.merge",
            Command::CustomerForget(_) => "customer.forget",
            Command::VisitUpdate(_) => "visit.update",
            Command::SessionOpen { .. } => "session.open",
            Command::SessionClose { .. } => "session.close",
            Command::CleanupElapsed { .. } => "timer.cleanup",
            Command::OvertimeReached { .. } => "timer.overtime",
            Command::NoShowDue { .. } => "timer.no_show",
            Command::BookingDue { .. } => "timer.booking_due",
            Command::ArchiveDue => "timer.archive",
        }
    }
}
