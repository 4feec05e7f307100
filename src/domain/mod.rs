//! The pure core of the spa floor: no I/O, no clock reads, no async.
//!
//! Everything that changes the floor goes `decide(state, actor, command, now)
//! -> events | error`, then `state.apply(event)` for each event. The shell
//! (`writer`) persists the events before applying them for good; the same
//! `apply` rebuilds the state from records at start-up. Nothing in here knows
//! that sockets, sled or GPIO exist.

pub mod archive;
pub mod book;
pub mod checkout;
pub mod command;
pub mod customers;
pub mod event;
pub mod money;
pub mod permissions;
pub mod privacy;
pub mod report;
pub mod rotation;
pub mod state;
pub mod views;
pub mod visits;

mod decide;

pub use command::Command;
pub use decide::{decide, Decided, Reply};
pub use event::{Event, EventRecord};
pub use state::State;

use serde::{Deserialize, Serialize};

/// Identifier of any entity; allocated from one counter in the state.
pub type Id = u64;

/// The wall clock as the shell read it once for this command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the Unix epoch (UTC).
    pub ms: i64,
    /// The spa's local calendar day, as `yyyymmdd` (e.g. 20261126).
    pub day: u32,
}

/// Settings from the env file that the rules depend on.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Discounts above this percentage of the services need an admin.
    pub discount_approval_percent: u32,
    /// Light channels the env file defines (room.light_channel must be one).
    pub light_channels: Vec<u16>,
    /// How long after `visit.start` an undo is still allowed.
    pub undo_start_grace_ms: i64,
    /// How long a staff session token lives.
    pub session_ttl_ms: i64,
    /// The spa's time zone: local dates and times of the book.
    pub tz: jiff::tz::TimeZone,
    /// Bookings start on this grid (minutes past the hour).
    pub booking_grid_min: u32,
    /// How far ahead a booking may be made.
    pub booking_horizon_days: u32,
    /// Slack a walk-in must leave before the next booking.
    pub booking_buffer_min: u32,
    /// A booking not checked in this long after its start is a no-show.
    pub no_show_grace_min: u32,
    /// A customer may cancel through their link until this long before.
    pub cancel_cutoff_hours: u32,
    /// Whether a booked session counts as a rotation turn.
    pub booking_counts_turn: bool,
    /// `SPA_CURRENCY`: receipts record it; amounts are minor units of it.
    pub currency: money::currency::Currency,
    /// `SPA_PRICES_INCLUDE_TAX`: whether prices are gross (tax inside) or
    /// net (tax added on top at the checkout).
    pub prices_include_tax: bool,
    /// The box's gift card secret (`SPA_DATA_DIR/giftcard-secret`): a sold
    /// card's code is derived from it. `None` (the default) sells no card.
    pub giftcard_key: Option<money::giftcode::CodeKey>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            discount_approval_percent: 20,
            light_channels: Vec::new(),
            undo_start_grace_ms: 2 * 60 * 1000,
            session_ttl_ms: 12 * 60 * 60 * 1000,
            tz: jiff::tz::TimeZone::UTC,
            booking_grid_min: 15,
            booking_horizon_days: 90,
            booking_buffer_min: 5,
            no_show_grace_min: 15,
            cancel_cutoff_hours: 24,
            booking_counts_turn: false,
            currency: money::currency::Currency::default(),
            prices_include_tax: true,
            giftcard_key: None,
        }
    }
}

/// Who may connect and what they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Cashier,
    Therapist,
    Monitor,
    Customer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Cashier,
        Role::Therapist,
        Role::Monitor,
        Role::Customer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Cashier => "cashier",
            Role::Therapist => "therapist",
            Role::Monitor => "monitor",
            Role::Customer => "customer",
        }
    }

    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Cashier | Role::Therapist)
    }
}

/// Who sent a command (or `System` for the hub's own timers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The admin token from the env file or the generated file.
    AdminToken,
    /// A logged-in staff member.
    Staff { id: Id, role: Role },
    /// A paired display.
    Device { id: Id },
    /// A customer, scoped to one visit.
    Customer { visit_id: Id },
    /// The hub itself (cleanup and overtime timers).
    System,
    /// A customer, scoped to one booking (its link, before check-in).
    BookingCustomer { booking_id: Id },
}

impl Actor {
    /// The role this actor's permissions are looked up with; `None` for `System`.
    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::AdminToken => Some(Role::Admin),
            Actor::Staff { role, .. } => Some(*role),
            Actor::Device { .. } => Some(Role::Monitor),
            Actor::Customer { .. } | Actor::BookingCustomer { .. } => Some(Role::Customer),
            Actor::System => None,
        }
    }

    pub fn staff_id(&self) -> Option<Id> {
        match self {
            Actor::Staff { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// The error codes of PROTOCOL.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    Invalid,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A refusal: a code for programs and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DomainError {
            code,
            message: message.into(),
        }
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Invalid, message)
}
pub(crate) fn conflict(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Conflict, message)
}
pub(crate) fn not_found(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::NotFound, message)
}
pub(crate) fn forbidden(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::Forbidden, message)
}

#[cfg(test)]
mod tests;
