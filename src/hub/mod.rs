//! The realtime hub: Engine.IO v4 / Socket.IO v5 over WebSocket and HTTP
//! long-polling (with the upgrade).
//!
//! - [`engineio`], [`socketio`]: packet codecs (pure, no I/O).
//! - [`connection`]: one client: handshake, auth, heartbeat, commands, outbox.
//! - [`polling`]: long-polling sessions and the upgrade to WebSocket.
//! - [`recovery`]: connection state recovery from the event log.
//! - [`fanout`]: committed batches → per-role frames on a shared ring.
//! - [`metrics`]: counters and histograms for `/metrics` and `/healthz`.
//!
//! [`Hub`] is what every connection and HTTP handler shares.

pub mod connection;
pub mod engineio;
pub mod fanout;
pub mod metrics;
pub mod polling;
pub mod recovery;
pub mod socketio;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::auth::{self, Lockout};
use crate::clock::SpaClock;
use crate::config::Config;
use crate::domain::{Actor, Command, DomainError, ErrorCode};
use crate::lights::Lights;
use crate::store::LogReader;
use crate::writer::WriterHandle;
use connection::Identity;
use fanout::Ring;
use metrics::Metrics;

/// How long a customer's link keeps working after the visit ended (receipt).
pub const RECEIPT_GRACE_MS: i64 = 2 * 60 * 60 * 1000;

/// Everything the connections and HTTP handlers share.
pub struct Hub {
    pub config: Arc<Config>,
    pub writer: WriterHandle,
    pub ring: Ring,
    pub metrics: Arc<Metrics>,
    /// Flips to true when the hub is stopping; connections close.
    pub shutdown: watch::Sender<bool>,
    pub budget: Arc<Semaphore>,
    pub admin_token_hash: String,
    pub lockout: Arc<Lockout>,
    /// Places for PIN checks (argon2, 8 MiB each, reused):
    /// `SPA_LOGIN_CONCURRENCY`.
    pub pin_checks: Arc<auth::PinChecks>,
    /// Per-address, per-credential and customer limits on sockets.
    pub gate: Arc<crate::gate::Gate>,
    /// Origins of the hub's own names (besides `SPA_ALLOWED_ORIGINS`).
    pub own_origins: Vec<String>,
    pub lights: Option<Lights>,
    pub started: Instant,
    pub clock: SpaClock,
    pub log: LogReader,
    /// Where publishing to NATS stands (a site in a chain).
    pub replication: Option<Arc<crate::replicate::site::ReplicationHealth>>,
    /// Live long-polling sessions, by `sid`.
    pub polls: Arc<polling::Sessions>,
    /// The ESC/POS receipt printer (`SPA_RECEIPT_PRINTER`), if any.
    pub printer: Option<crate::printer::Printer>,
}

impl Hub {
    /// Who a token belongs to, or `None`.
    pub async fn identify(&self, token: &str) -> Option<Identity> {
        if token.len() > 256 {
            return None;
        }
        let hash = auth::hash_token(token);
        if auth::hashes_equal(&hash, &self.admin_token_hash) {
            return Some(connection::admin_identity());
        }
        self.writer
            .read(move |state, now| {
                connection::identify_in_state(state, &hash, now.ms, RECEIPT_GRACE_MS, now.day)
            })
            .await
            .ok()
            .flatten()
    }

    /// Prepares a command's secrets (PIN hashes, new tokens) off the async
    /// runtime, runs it through the writer, and completes the reply data.
    pub async fn execute(&self, actor: Actor, mut command: Command) -> Result<Value, DomainError> {
        let mut token: Option<String> = None;
        self.prepare_counter(&mut command).await?;
        match &mut command {
            Command::StaffCreate(a) => {
                if let Some(pin) = a.pin.take() {
                    a.pin_hash = self.hash_pin(pin).await?;
                }
            }
            Command::StaffUpdate(a) => {
                if let Some(pin) = a.pin.take() {
                    a.pin_hash = Some(self.hash_pin(pin).await?);
                }
            }
            Command::DevicePair(a) => {
                let t = auth::new_token();
                a.token_hash = auth::hash_token(&t);
                token = Some(t);
            }
            Command::VisitCreate(a) => {
                let t = auth::new_token();
                a.token_hash = auth::hash_token(&t);
                token = Some(t);
            }
            Command::BookingCreate(a) => {
                let t = auth::new_token();
                a.token_hash = auth::hash_token(&t);
                token = Some(t);
            }
            Command::ClockSet(a) => a.synchronized = self.clock.synchronized(),
            _ => {}
        }
        let link = match &command {
            Command::VisitCreate(_) => Some("/t/"),
            Command::BookingCreate(_) => Some("/b/"),
            _ => None,
        };
        // A sold gift card's code is in the ack already: the core derives it
        // from the box's secret (`Rules::giftcard_key`), the first time and
        // on a retry alike.
        let mut data = self.writer.execute(actor, command).await?;
        if let (Some(t), Value::Object(map)) = (token, &mut data) {
            match link {
                Some(prefix) => {
                    // A retried booking (same request_id) answers with the
                    // first booking, whose link was shown the first time:
                    // the token made for the retry is not its token.
                    if map.get("retried") != Some(&Value::Bool(true)) {
                        map.insert("customer_url".into(), json!(format!("{prefix}{t}")));
                        map.insert("customer_token".into(), json!(t));
                    }
                }
                None => {
                    map.insert("token".into(), json!(t));
                }
            }
        }
        Ok(data)
    }
}

impl Hub {
    /// The day report for `date` (`YYYY-MM-DD`, default: today), computed
    /// from the event log off the async runtime.
    pub async fn day_report(
        &self,
        date: Option<&str>,
    ) -> Result<crate::domain::report::DayReport, DomainError> {
        let day = match date.map(str::trim).filter(|d| !d.is_empty()) {
            None => self.clock.now().day,
            Some(text) => parse_date(text)?,
        };
        let log = self.log.clone();
        let clock = self.clock.clone();
        tokio::task::spawn_blocking(move || {
            let tz = clock.tz_name();
            let report = log.day_report(day, &tz, |ms| clock.day_of(ms));
            crate::cpu::give_back_memory();
            report.map_err(|err| {
                DomainError::new(ErrorCode::Unavailable, format!("reading the log: {err}"))
            })
        })
        .await
        .map_err(|_| DomainError::new(ErrorCode::Internal, "the report failed"))?
    }
}

/// `YYYY-MM-DD` → `yyyymmdd`.
pub fn parse_date(text: &str) -> Result<u32, DomainError> {
    let bad = || {
        DomainError::new(
            ErrorCode::Invalid,
            format!(
                "`date` must look like 2026-11-26, not {:?}",
                text.chars().take(20).collect::<String>()
            ),
        )
    };
    let date: jiff::civil::Date = text.parse().map_err(|_| bad())?;
    let year = u32::try_from(date.year()).map_err(|_| bad())?;
    Ok(year * 10_000
        + u32::from(date.month().unsigned_abs()) * 100
        + u32::from(date.day().unsigned_abs()))
}

impl Hub {
    /// Hashes a PIN off the runtime, in one of the PIN-check places (an
    /// admin's command waits for one; a login is refused when none is free).
    async fn hash_pin(&self, pin: String) -> Result<String, DomainError> {
        auth::check_pin(&pin).map_err(|m| DomainError::new(ErrorCode::Invalid, m))?;
        let mut place = self
            .pin_checks
            .place_when_free()
            .await
            .ok_or_else(|| DomainError::new(ErrorCode::Unavailable, "the hub is stopping"))?;
        tokio::task::spawn_blocking(move || place.hash(&pin))
            .await
            .map_err(|_| DomainError::new(ErrorCode::Internal, "PIN hashing failed"))?
            .map_err(|e| DomainError::new(ErrorCode::Internal, format!("PIN hashing failed: {e}")))
    }
}

impl Hub {
    /// The counter's secrets (#17): the hash of each gift card code given
    /// in payment or a balance enquiry (the core never sees a typed code),
    /// and an admin's PIN approving a cashier's correction (checked here,
    /// off the writer, under the login lockout; the core sees only
    /// `approved_by`). A sold card's code is not made here: the core
    /// derives it from the card's id, so a retry can show it again.
    async fn prepare_counter(&self, command: &mut Command) -> Result<(), DomainError> {
        use crate::domain::money::giftcode;
        let hash_payments = |payments: &mut [crate::domain::command::PaymentArg]| {
            for p in payments {
                if let Some(code) = p.code.take() {
                    p.code_hash = Some(giftcode::hash(&code));
                }
            }
        };
        let approval = match command {
            Command::VisitCheckout(a) => {
                hash_payments(&mut a.payments);
                None
            }
            Command::SaleCheckout(a) => {
                hash_payments(&mut a.payments);
                None
            }
            Command::GiftcardIssue(a) => {
                hash_payments(&mut a.payments);
                None
            }
            Command::GiftcardBalance(a) => {
                // An empty code stays empty: the core says it is required.
                let code = std::mem::take(&mut a.code);
                if !giftcode::normalise(&code).is_empty() {
                    a.code_hash = giftcode::hash(&code);
                }
                None
            }
            Command::VisitRefund(a) | Command::SaleRefund(a) => {
                a.approval.take().map(|x| (x, &mut a.approved_by))
            }
            Command::VisitVoid(a) => a.approval.take().map(|x| (x, &mut a.approved_by)),
            Command::VisitRetip(a) => a.approval.take().map(|x| (x, &mut a.approved_by)),
            _ => None,
        };
        if let Some((approval, approved_by)) = approval {
            *approved_by = Some(self.check_approval(approval).await?);
        }
        Ok(())
    }

    /// An admin's PIN typed at the counter: the admin's id when right.
    async fn check_approval(
        &self,
        a: crate::domain::command::ApprovalArg,
    ) -> Result<crate::domain::Id, DomainError> {
        let refused = || DomainError::new(ErrorCode::Forbidden, "wrong admin or PIN");
        let id = a.admin_id;
        let found = self
            .writer
            .read(move |state, _| {
                state
                    .staff
                    .get(&id)
                    .filter(|s| s.active && s.role == crate::domain::Role::Admin)
                    .map(|s| (s.name.clone(), s.pin_hash.clone()))
            })
            .await
            .ok()
            .flatten();
        let Some((name, hash)) = found else {
            return Err(refused());
        };
        // The same lockout as logins, counted under the admin's name (the
        // counter's address is not known here: the name alone limits it).
        let attempt = self
            .lockout
            .begin(&name, std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
            .map_err(|l| {
                DomainError::new(
                    ErrorCode::RateLimited,
                    format!("too many wrong PINs; try again in {} s", l.retry_after_s),
                )
            })?;
        let Some(mut place) = self.pin_checks.place_when_free().await else {
            attempt.cancel();
            return Err(DomainError::new(
                ErrorCode::Unavailable,
                "the hub is stopping",
            ));
        };
        let pin = a.pin;
        let ok = tokio::task::spawn_blocking(move || place.verify(&pin, &hash))
            .await
            .unwrap_or(false);
        if ok {
            attempt.succeeded();
            Ok(id)
        } else {
            attempt.failed();
            log::warn!("a wrong admin PIN for {name:?} at the counter");
            Err(refused())
        }
    }
}
