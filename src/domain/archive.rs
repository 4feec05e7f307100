//! What the floor no longer needs leaves memory: history is kept on disk.
//!
//! A spa runs for years on one box. The state in memory (and every snapshot
//! built from it) holds the live floor, the book from `KEEP_DAYS` ago on,
//! and the last `KEEP_DAYS` of finished visits (for refunds, re-splits and
//! "my day" without a disk read). Older finished visits, past bookings,
//! shifts, blocks, closed drawers and expired staff sessions leave it
//! through one event, `Archived`, which the writer issues from a timer;
//! receipts (#17) leave after a day (`KEEP_RECEIPTS_MS`; a sale's own
//! receipt after the visits' days), through `ReceiptsArchived` in the same
//! batch: nothing on the floor reads a past day's receipt, and a refund
//! brings its receipts back.
//! The event log keeps everything (reports replay it); the store moves the
//! archived visits, bookings and receipts to its archive, from where a
//! refund or a re-split of an old visit brings the visit back
//! (`VisitRestored`) and its receipts (`ReceiptsRestored`, as does a refund
//! of an old sale), the receipt page reads an old receipt and
//! `booking.list` reads a past date.
//!
//! Every step is pure: `due` and `receipts_due` pick what to archive,
//! `apply` removes it.

use serde::{Deserialize, Serialize};

use super::book::BookingState;
use super::command::{RefundArgs, VisitRetip};
use super::money::receipt::Receipt;
use super::state::{Record, RecordKey, State, Visit, VisitState};
use super::{Command, DomainError, Event, Id, Now};

/// Days of finished history kept in memory besides today.
pub const KEEP_DAYS: i64 = 14;

/// How long a receipt stays in memory. Shorter than the visits' days: a
/// receipt is about 1 KB, no page shows a past day's receipts from
/// memory (the receipt page reads the archive), and a refund of an older
/// visit or sale brings its receipts back first (`restore_for`).
pub const KEEP_RECEIPTS_MS: i64 = DAY_MS;

/// At most this many records leave in one event, so that one batch (and
/// the one flush under it) stays small; the writer comes back for the rest.
pub const MAX_PER_EVENT: usize = 2000;

const DAY_MS: i64 = 86_400_000;

/// What one `Archived` event takes out of memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Archive {
    /// Local dates before this one were archived (`yyyymmdd`).
    pub before_day: u32,
    pub visits: Vec<Id>,
    pub bookings: Vec<Id>,
    pub shifts: Vec<(Id, u32)>,
    pub blocks: Vec<Id>,
    pub drawers: Vec<Id>,
    /// Expired staff sessions (token hashes): dropped, not archived.
    pub sessions: Vec<String>,
}

impl Archive {
    pub fn len(&self) -> usize {
        self.visits.len()
            + self.bookings.len()
            + self.shifts.len()
            + self.blocks.len()
            + self.drawers.len()
            + self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records the event removes, in the store's key order.
    pub fn keys(&self) -> Vec<RecordKey> {
        let mut keys: Vec<RecordKey> = self
            .visits
            .iter()
            .map(|id| RecordKey::Visit(*id))
            .chain(self.bookings.iter().map(|id| RecordKey::Booking(*id)))
            .chain(self.shifts.iter().map(|(t, d)| RecordKey::Shift(*t, *d)))
            .chain(self.blocks.iter().map(|id| RecordKey::Block(*id)))
            .chain(self.drawers.iter().map(|id| RecordKey::Drawer(*id)))
            .chain(self.sessions.iter().map(|h| RecordKey::Session(h.clone())))
            .collect();
        keys.sort();
        keys
    }

    /// True when the event had to stop at `MAX_PER_EVENT` (more is due).
    pub fn is_full(&self) -> bool {
        self.len() >= MAX_PER_EVENT
    }
}

/// The first local date kept in memory on `today` (`yyyymmdd`).
pub fn cutoff_day(today: u32) -> u32 {
    super::book::time::date_of_day(today)
        .and_then(|d| d.checked_sub(jiff::Span::new().days(KEEP_DAYS)).ok())
        .map(super::book::time::day_of_date)
        .unwrap_or(today)
}

/// What is due to leave memory at `now`, or `None` when nothing is.
pub fn due(state: &State, now: Now) -> Option<Archive> {
    let before_day = cutoff_day(now.day);
    let before_ms = now.ms.saturating_sub(KEEP_DAYS.saturating_mul(DAY_MS));
    let mut a = Archive {
        before_day,
        ..Archive::default()
    };
    let room = |a: &Archive| a.len() < MAX_PER_EVENT;

    for v in state.visits.values() {
        if !room(&a) {
            break;
        }
        let done = matches!(
            v.state,
            VisitState::Closed | VisitState::Left | VisitState::Voided
        );
        // A visit a booking still points at as live stays with it.
        if done && v.day < before_day {
            a.visits.push(v.id);
        }
    }
    // Bookings by date, oldest first; the index is ordered.
    for (date, id) in &state.book_index.by_date {
        if *date >= before_day || !room(&a) {
            break;
        }
        let Some(b) = state.bookings.get(id) else {
            continue;
        };
        let live_visit = b
            .visit_id
            .and_then(|v| state.visits.get(&v))
            .is_some_and(|v| {
                !matches!(
                    v.state,
                    VisitState::Closed | VisitState::Left | VisitState::Voided
                ) || v.day >= before_day
            });
        let open = matches!(b.state, BookingState::Booked) || live_visit;
        if !open {
            a.bookings.push(b.id);
        }
    }
    for (therapist, date) in state.shifts.keys() {
        if !room(&a) {
            break;
        }
        if *date < before_day {
            a.shifts.push((*therapist, *date));
        }
    }
    for b in state.blocks.values() {
        if !room(&a) {
            break;
        }
        if b.end_ms < before_ms {
            a.blocks.push(b.id);
        }
    }
    for d in state.drawers.values() {
        if !room(&a) {
            break;
        }
        if d.closed_at.is_some_and(|at| at < before_ms) {
            a.drawers.push(d.id);
        }
    }
    for s in state.sessions.values() {
        if !room(&a) {
            break;
        }
        if s.expires_at < now.ms {
            a.sessions.push(s.token_hash.clone());
        }
    }
    (!a.is_empty()).then_some(a)
}

/// Receipts due to leave memory at `now`: older than `KEEP_RECEIPTS_MS`,
/// except a sale's own receipt (no visit), which is the sale's record and
/// answers a retry of its `request_id`: it stays the days a visit stays.
/// At most `MAX_PER_EVENT`, oldest first.
pub fn receipts_due(state: &State, now: Now) -> Vec<Id> {
    let before_ms = now.ms.saturating_sub(KEEP_RECEIPTS_MS);
    let sales_before_ms = now.ms.saturating_sub(KEEP_DAYS.saturating_mul(DAY_MS));
    state
        .till
        .receipts
        .values()
        .filter(|r| {
            let a_sale = r.visit_id.is_none() && r.request_id.is_some();
            r.at < if a_sale { sales_before_ms } else { before_ms }
        })
        .map(|r| r.id)
        .take(MAX_PER_EVENT)
        .collect()
}

/// The records `event` moves to the store's archive, read from `state`
/// before it is applied, and whether it stopped at `MAX_PER_EVENT` (more
/// is due); `None` for every other event.
pub fn moved_out(state: &State, event: &Event) -> Option<(Vec<Record>, bool)> {
    match event {
        Event::Archived { archive } => Some((records_to_keep(state, archive), archive.is_full())),
        Event::ReceiptsArchived { receipt_ids } => Some((
            receipt_ids
                .iter()
                .filter_map(|id| state.record(&RecordKey::Receipt(*id)))
                .collect(),
            receipt_ids.len() >= MAX_PER_EVENT,
        )),
        _ => None,
    }
}

/// What the store's archive can answer (the writer reads the store; tests
/// keep a map). An error is a failed read: the command is refused with it
/// rather than decided as if the history did not exist.
pub trait Lookup {
    fn visit(&self, id: Id) -> Result<Option<Visit>, DomainError>;
    fn receipt(&self, id: Id) -> Result<Option<Receipt>, DomainError>;
    /// A visit's receipts (its sale and its refunds).
    fn receipts_of_visit(&self, visit_id: Id) -> Result<Vec<Receipt>, DomainError>;
    /// A sale receipt's refunds.
    fn refunds_of(&self, sale_id: Id) -> Result<Vec<Receipt>, DomainError>;
}

/// The events that bring back, before `command` is decided, the archived
/// history it is about: the visit of a refund or a tip re-split, and for a
/// refund the receipts it needs (the visit's sale receipt, or the sale,
/// with the refunds already made). Empty when memory has it all or the
/// archive has nothing (the command is then decided as it stands).
pub fn restore_for(
    state: &State,
    command: &Command,
    archive: &impl Lookup,
) -> Result<Vec<Event>, DomainError> {
    let mut events = Vec::new();
    let mut receipts = Vec::new();
    match command {
        Command::VisitRefund(RefundArgs {
            visit_id: Some(v), ..
        })
        | Command::VisitRetip(VisitRetip { visit_id: v, .. }) => {
            if !state.visits.contains_key(v) {
                let Some(visit) = archive.visit(*v)? else {
                    return Ok(events);
                };
                events.push(Event::VisitRestored { visit });
            }
            // A visit paid before receipts existed has none anywhere.
            if matches!(command, Command::VisitRefund(_))
                && !state.till.receipt_of_visit.contains_key(v)
            {
                receipts = archive.receipts_of_visit(*v)?;
            }
        }
        Command::SaleRefund(RefundArgs {
            sale_id: Some(s), ..
        }) if !state.till.receipts.contains_key(s) => {
            if let Some(sale) = archive.receipt(*s)? {
                receipts.push(sale);
                receipts.extend(archive.refunds_of(*s)?);
            }
        }
        _ => {}
    }
    receipts.retain(|r| !state.till.receipts.contains_key(&r.id));
    if !receipts.is_empty() {
        events.push(Event::ReceiptsRestored { receipts });
    }
    Ok(events)
}

impl State {
    /// Takes an archive's records out of memory.
    pub(in crate::domain) fn apply_archive(&mut self, a: &Archive) {
        for id in &a.visits {
            self.visits.remove(id);
        }
        for id in &a.bookings {
            self.put_record(&RecordKey::Booking(*id), None);
        }
        for key in &a.shifts {
            self.shifts.remove(key);
        }
        for id in &a.blocks {
            self.blocks.remove(id);
        }
        for id in &a.drawers {
            self.drawers.remove(id);
        }
        for hash in &a.sessions {
            self.sessions.remove(hash);
        }
    }
}

/// Whether a record the archive removes is kept in the store's archive
/// (sessions are dropped).
pub fn kept(key: &RecordKey) -> bool {
    !matches!(key, RecordKey::Session(_) | RecordKey::Counters)
}

/// The records `a` moves to the store's archive, read from `state` before
/// the event is applied.
fn records_to_keep(state: &State, a: &Archive) -> Vec<Record> {
    a.keys()
        .iter()
        .filter(|k| kept(k))
        .filter_map(|k| state.record(k))
        .collect()
}
