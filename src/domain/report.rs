//! The day report, computed from the event log alone: replay the log up to
//! the end of the day (stopping at the first event of a later day), and add
//! up what happened on that day. The same log gives the same numbers after a
//! restart and after any later day's activity.
//!
//! The report reads what was charged and done, never today's catalogue:
//! a service line is priced as the visit captured it when it was created,
//! tips are the shares the checkout recorded, and a correction (a tip
//! re-split, a refund) counts on the day it was made, not on the day of the
//! sale. Lines are keyed by id and carry the name (and a therapist's role)
//! as of the end of that day; whoever earned, served or took a turn that day
//! is listed, whatever they are now, and a room removed later in the day
//! stays in the day it was used.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::event::{Event, EventRecord};
use super::money::{Method, PerMethod, TipShare};
use super::rotation::Turns;
use super::state::{Record, State, VisitState};
use super::{Id, Role};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Count {
    pub count: u64,
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceLine {
    pub service_id: Id,
    pub name: String,
    pub count: u64,
    /// At the prices the visits were charged (captured at check-in).
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TherapistLine {
    pub therapist_id: Id,
    pub name: String,
    /// The staff member's role at the end of that day.
    pub role: Role,
    /// Tips of that day's checkouts plus that day's re-split corrections.
    pub tips_cents: i64,
    /// The part of `tips_cents` that re-splits made that day moved (+ in, − out).
    pub tip_corrections_cents: i64,
    pub turns: Turns,
    pub sessions: u64,
    /// Minutes in session that day (started to finished).
    pub served_min: f64,
    /// Minutes of the shift that day, if one was set.
    pub shift_min: Option<f64>,
    /// Served time over shift time.
    pub utilisation_percent: Option<f64>,
}

/// The book's day: bookings made that day (for any date), and what
/// happened that day to bookings (checked in, cancelled, no-shows).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BookingCounts {
    pub made: u64,
    pub checked_in: u64,
    pub cancelled: u64,
    pub cancelled_by_customer: u64,
    pub no_shows: u64,
}

/// One tip re-split made that day: who gained and who lost what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TipCorrection {
    /// The re-split's event (one visit may be re-split twice in a day).
    pub seq: u64,
    pub visit_id: Id,
    pub number: String,
    pub reason: String,
    pub changes: Vec<TipChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TipChange {
    pub therapist_id: Id,
    pub name: String,
    pub delta_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomLine {
    pub room_id: Id,
    pub name: String,
    /// The room was removed by the end of that day.
    pub removed: bool,
    pub sessions: u64,
    pub occupied_min: f64,
    pub utilisation_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrawerLine {
    pub drawer_id: Id,
    pub owner_id: Option<Id>,
    /// The owner's name, or "admin token".
    pub owner_name: String,
    pub expected: PerMethod,
    pub counted: PerMethod,
    pub variance: PerMethod,
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    /// `yyyymmdd`.
    pub day: u32,
    pub visits_created: u64,
    /// Visits created that day, by their state at the end of the day.
    pub visits_by_state: BTreeMap<String, u64>,
    pub services_sold: Vec<ServiceLine>,
    /// Money taken per method (cash net of change), before refunds.
    pub revenue_by_method: PerMethod,
    pub revenue_cents: i64,
    /// `revenue_cents` split: visits that came through a booking, and walk-ins.
    pub booked_revenue_cents: i64,
    pub walk_in_revenue_cents: i64,
    pub bookings: BookingCounts,
    /// Services of that day's checkouts, before discounts and tips.
    pub services_cents: i64,
    pub discounts: Count,
    pub tips: Count,
    pub refunds: Count,
    pub refunds_by_method: PerMethod,
    pub therapists: Vec<TherapistLine>,
    pub tip_corrections: Vec<TipCorrection>,
    pub average_wait_min: Option<f64>,
    pub average_service_min: Option<f64>,
    pub rooms: Vec<RoomLine>,
    pub drawers: Vec<DrawerLine>,
    /// The first and last event of the day (ms), the span utilisation uses.
    pub first_event_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub events: u64,
    /// Tax per rate, products, gift cards, sales without a visit (#17).
    #[serde(flatten)]
    pub counter: super::money::report::CounterReport,
}

fn average(xs: &[i64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().map(|x| *x as f64).sum::<f64>() / xs.len() as f64 / 60_000.0)
}

/// A call whose turn may still be given back (undo, left, void).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenCall {
    therapist: Id,
    turn: Turns,
    day: u32,
}

/// What the replay adds up for the day, besides the state itself.
#[derive(Default)]
struct Tally {
    waits: Vec<i64>,
    service_times: Vec<i64>,
    revenue: PerMethod,
    discounts: Count,
    tips: Count,
    refunds: Count,
    refunds_by_method: PerMethod,
    services_cents: i64,
    sold: BTreeMap<Id, (u64, i64)>,
    tips_by: BTreeMap<Id, i64>,
    corrections_by: BTreeMap<Id, i64>,
    tip_corrections: Vec<TipCorrection>,
    turns_by: BTreeMap<Id, Turns>,
    sessions_by: BTreeMap<Id, u64>,
    served_ms_by: BTreeMap<Id, i64>,
    booked_revenue: i64,
    bookings: BookingCounts,
    occupied: BTreeMap<Id, (u64, i64)>,
    /// Names seen in use that day (for rooms removed before its end).
    room_names: BTreeMap<Id, String>,
    drawers: Vec<DrawerLine>,
    counter: super::money::report::CounterTally,
}

/// Replay-wide bookkeeping that is not in the state: the per-line prices a
/// visit captured at creation (until it is paid or ends) and calls whose
/// turn may still come back. Both drop a visit once it is done with, so
/// they hold only what is open on the floor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Open {
    lines: BTreeMap<Id, Vec<(Id, i64)>>,
    calls: BTreeMap<Id, OpenCall>,
}

fn staff_name(state: &State, id: Id) -> String {
    state
        .staff
        .get(&id)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| format!("staff {id}"))
}

/// `after − before` per therapist, without the zero moves.
fn tip_moves(before: &[TipShare], after: &[TipShare]) -> BTreeMap<Id, i64> {
    let mut moves: BTreeMap<Id, i64> = BTreeMap::new();
    for t in before {
        *moves.entry(t.therapist_id).or_default() -= t.amount_cents;
    }
    for t in after {
        *moves.entry(t.therapist_id).or_default() += t.amount_cents;
    }
    moves.retain(|_, d| *d != 0);
    moves
}

impl Tally {
    /// Adds one event of the day, looking at the state as it was before it.
    fn add(&mut self, state: &State, open: &Open, record: &EventRecord, day: u32) {
        self.counter.add(record);
        match &record.event {
            // A sale without a visit takes money like a checkout (a visit's
            // own receipt is counted by its `VisitCheckedOut`), and its
            // refund gives it back like `VisitRefunded`.
            Event::Sold { receipt, .. } if receipt.visit_id.is_none() => {
                for p in &receipt.payments {
                    self.revenue.add(p.method, p.amount_cents);
                }
                self.revenue.add(Method::Cash, -receipt.change_cents);
            }
            Event::Refunded { receipt } if receipt.visit_id.is_none() => {
                let cents = receipt.paid_cents();
                self.refunds.count += 1;
                self.refunds.cents += cents;
                for p in &receipt.payments {
                    self.refunds_by_method.add(p.method, p.amount_cents);
                }
            }
            Event::VisitCalled {
                visit_id,
                therapist_id,
                turn,
                day: turn_day,
                ..
            } => {
                if let Some(v) = state.visits.get(visit_id) {
                    self.waits.push(record.at - v.created_at);
                }
                if *turn_day == day {
                    let t = self.turns_by.entry(*therapist_id).or_default();
                    *t = t.saturating_add(*turn);
                }
            }
            Event::VisitCallUndone { visit_id }
            | Event::VisitLeft { visit_id, .. }
            | Event::VisitVoided { visit_id, .. } => {
                // An unserved call gives its turn back (as `apply` does).
                let called = state
                    .visits
                    .get(visit_id)
                    .is_some_and(|v| v.state == VisitState::Called);
                if let Some(call) = open.calls.get(visit_id).filter(|c| called && c.day == day) {
                    let t = self.turns_by.entry(call.therapist).or_default();
                    *t = t.saturating_sub(call.turn);
                }
            }
            Event::VisitFinished { visit_id, .. } => {
                let Some(v) = state.visits.get(visit_id) else {
                    return;
                };
                if let Some(start) = v.started_at {
                    let ms = (record.at - start).max(0);
                    self.service_times.push(ms);
                    if let Some(room) = v.room {
                        let e = self.occupied.entry(room).or_default();
                        e.0 += 1;
                        e.1 += ms;
                        if let Some(r) = state.rooms.get(&room) {
                            self.room_names.insert(room, r.name.clone());
                        }
                    }
                }
                if let Some(t) = v.therapist {
                    *self.sessions_by.entry(t).or_default() += 1;
                    if let Some(start) = v.started_at {
                        *self.served_ms_by.entry(t).or_default() += (record.at - start).max(0);
                    }
                }
            }
            Event::BookingCreated { .. } => self.bookings.made += 1,
            Event::BookingCheckedIn { .. } => self.bookings.checked_in += 1,
            Event::BookingCancelled { by_customer, .. } => {
                self.bookings.cancelled += 1;
                if *by_customer {
                    self.bookings.cancelled_by_customer += 1;
                }
            }
            Event::BookingNoShow { .. } => self.bookings.no_shows += 1,
            Event::VisitCheckedOut { visit_id, checkout } => {
                for p in &checkout.payments {
                    self.revenue.add(p.method, p.amount_cents);
                }
                self.revenue.add(Method::Cash, -checkout.change_cents);
                if state.booking_of_visit(*visit_id).is_some() {
                    self.booked_revenue += checkout.paid_cents() - checkout.change_cents;
                }
                self.services_cents += checkout.services_cents;
                if checkout.discount_cents > 0 {
                    self.discounts.count += 1;
                    self.discounts.cents += checkout.discount_cents;
                }
                if checkout.tip_cents > 0 {
                    self.tips.count += 1;
                    self.tips.cents += checkout.tip_cents;
                }
                for t in &checkout.tips {
                    *self.tips_by.entry(t.therapist_id).or_default() += t.amount_cents;
                }
                for (sid, price) in open.lines.get(visit_id).into_iter().flatten() {
                    let e = self.sold.entry(*sid).or_default();
                    e.0 += 1;
                    e.1 += price;
                }
            }
            Event::VisitRetipped {
                visit_id,
                tips,
                reason,
            } => {
                let Some(v) = state.visits.get(visit_id) else {
                    return;
                };
                let before = v
                    .checkout
                    .as_ref()
                    .map(|c| c.tips.as_slice())
                    .unwrap_or(&[]);
                let moves = tip_moves(before, tips);
                let mut changes = Vec::with_capacity(moves.len());
                for (id, delta) in moves {
                    *self.tips_by.entry(id).or_default() += delta;
                    *self.corrections_by.entry(id).or_default() += delta;
                    changes.push(TipChange {
                        therapist_id: id,
                        name: staff_name(state, id),
                        delta_cents: delta,
                    });
                }
                self.tip_corrections.push(TipCorrection {
                    seq: record.seq,
                    visit_id: *visit_id,
                    number: v.number.clone(),
                    reason: reason.clone(),
                    changes,
                });
            }
            Event::VisitRefunded { refund, .. } => {
                self.refunds.count += 1;
                self.refunds.cents += refund.amount_cents;
                self.refunds_by_method
                    .add(refund.method, refund.amount_cents);
            }
            Event::DrawerClosed {
                drawer_id,
                z_report,
                forced,
            } => {
                let owner_id = state.drawers.get(drawer_id).and_then(|d| d.owner);
                self.drawers.push(DrawerLine {
                    drawer_id: *drawer_id,
                    owner_id,
                    owner_name: owner_id
                        .map(|id| staff_name(state, id))
                        .unwrap_or_else(|| "admin token".into()),
                    expected: z_report.expected,
                    counted: z_report.counted,
                    variance: z_report.variance,
                    forced: *forced,
                })
            }
            _ => {}
        }
    }
}

impl Open {
    /// Keeps what later events of any day need (before `record` is applied).
    fn track(&mut self, state: &State, record: &EventRecord) {
        match &record.event {
            Event::VisitCreated { visit } => {
                // The catalogue as it stood when the visit was created: the
                // same prices `decide` summed into `visit.services_cents`.
                let lines = visit
                    .service_ids
                    .iter()
                    .map(|sid| {
                        let price = state.services.get(sid).map_or(0, |s| s.price_cents);
                        (*sid, price)
                    })
                    .collect();
                self.lines.insert(visit.id, lines);
            }
            Event::VisitCalled {
                visit_id,
                therapist_id,
                turn,
                day,
                ..
            } => {
                self.calls.insert(
                    *visit_id,
                    OpenCall {
                        therapist: *therapist_id,
                        turn: *turn,
                        day: *day,
                    },
                );
            }
            Event::VisitCallUndone { visit_id } | Event::VisitFinished { visit_id, .. } => {
                self.calls.remove(visit_id);
            }
            Event::VisitLeft { visit_id, .. } | Event::VisitVoided { visit_id, .. } => {
                self.calls.remove(visit_id);
                self.lines.remove(visit_id);
            }
            _ => {}
        }
    }

    /// Forgets what a paid visit no longer needs (after the day's tally).
    fn settle(&mut self, record: &EventRecord) {
        if let Event::VisitCheckedOut { visit_id, .. } = &record.event {
            self.lines.remove(visit_id);
        }
    }
}

/// The replay as it stood right before the first event of `day`: the
/// state (as records), the open bookkeeping and the last seq applied. A
/// report of `day` or later may start here instead of at seq 1 (the shell
/// keeps a few on disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub day: u32,
    pub seq: u64,
    records: Vec<Record>,
    open: Open,
}

impl Checkpoint {
    fn of(day: u32, state: &State, open: &Open) -> Checkpoint {
        Checkpoint {
            day,
            seq: state.seq(),
            records: state.records().into_iter().map(|(_, r)| r).collect(),
            open: open.clone(),
        }
    }

    /// The same checkpoint without any customer's name, phone, email or
    /// notes (reports never read them), so the store can keep it plain.
    pub fn without_personal(&self) -> Checkpoint {
        let mut out = self.clone();
        for r in &mut out.records {
            let _ = crate::domain::customers::take_personal_record(r);
        }
        out
    }

    fn into_parts(self) -> (State, Open) {
        let mut state = State::default();
        for r in self.records {
            state.put_record(&r.key(), Some(r));
        }
        (state, self.open)
    }
}

/// The report for `day` (`yyyymmdd`); `day_of` maps an event's `at` to its
/// local day.
pub fn day_report(
    events: impl IntoIterator<Item = EventRecord>,
    day: u32,
    day_of: impl Fn(i64) -> u32,
) -> DayReport {
    day_report_from(None, events, day, day_of, |_| false, |_| {})
}

/// Which checkpoints a replay towards `day` builds, having started from one
/// at `have` (0: none): month starts, and the start of `day` and later.
pub fn checkpoint_wanted(have: u32, day: u32) -> impl Fn(u32) -> bool {
    move |d| d > have && (d % 100 == 1 || d >= day)
}

/// Which of the kept checkpoints' days to drop: month starts stay about 13
/// months after the newest, other days only the newest two.
pub fn stale_checkpoints(days: &[u32]) -> Vec<u32> {
    let newest = days.iter().copied().max().unwrap_or(0);
    let mut others: Vec<u32> = days.iter().copied().filter(|d| d % 100 != 1).collect();
    others.sort_unstable();
    let drop_others = others.len().saturating_sub(2);
    days.iter()
        .copied()
        // yyyymmdd arithmetic: 1_0400 is a year and four months.
        .filter(|d| d % 100 == 1 && newest.saturating_sub(*d) > 1_0400)
        .chain(others.into_iter().take(drop_others))
        .collect()
}

/// `day_report`, starting from `start` (then `events` must begin right
/// after its seq) and offering a checkpoint at the start of each day the
/// replay enters: `wanted(day)` says whether to build it, `keep` takes it.
pub fn day_report_from(
    start: Option<Checkpoint>,
    events: impl IntoIterator<Item = EventRecord>,
    day: u32,
    day_of: impl Fn(i64) -> u32,
    wanted: impl Fn(u32) -> bool,
    mut keep: impl FnMut(Checkpoint),
) -> DayReport {
    let (mut state, mut open) = match start {
        Some(c) => c.into_parts(),
        None => (State::default(), Open::default()),
    };
    let mut tally = Tally::default();
    let (mut first, mut last) = (None, None);
    let mut count = 0u64;
    let mut current_day = None;

    for record in events {
        let d = day_of(record.at);
        if current_day.is_none_or(|c| d > c) {
            // The first event of a later day: the replay stands at its start.
            if current_day.is_some() && wanted(d) {
                keep(Checkpoint::of(d, &state, &open));
            }
            current_day = Some(d);
        }
        if d > day {
            break;
        }
        if d == day {
            count += 1;
            first = first.or(Some(record.at));
            last = Some(record.at);
            tally.add(&state, &open, &record, day);
        }
        open.settle(&record);
        open.track(&state, &record);
        state.apply(&record);
    }
    finish(state, tally, day, (first, last, count))
}

fn served_min(tally: &Tally, id: Id) -> f64 {
    tally.served_ms_by.get(&id).copied().unwrap_or(0) as f64 / 60_000.0
}

fn shift_min(state: &State, id: Id, day: u32) -> Option<f64> {
    state
        .shift(id, day)
        .map(|s| (s.end_ms - s.start_ms) as f64 / 60_000.0)
}

fn finish(
    state: State,
    tally: Tally,
    day: u32,
    (first, last, events): (Option<i64>, Option<i64>, u64),
) -> DayReport {
    let mut visits_by_state: BTreeMap<String, u64> = [
        VisitState::Waiting,
        VisitState::Called,
        VisitState::InService,
        VisitState::AwaitingPayment,
        VisitState::Closed,
        VisitState::Left,
        VisitState::Voided,
    ]
    .iter()
    .map(|s| (s.as_str().to_string(), 0))
    .collect();
    let mut visits_created = 0;
    for v in state.visits.values().filter(|v| v.day == day) {
        visits_created += 1;
        *visits_by_state
            .entry(v.state.as_str().to_string())
            .or_default() += 1;
    }

    // Everyone who earned, served or took a turn, whatever their role now.
    let ids: BTreeSet<Id> = tally
        .tips_by
        .keys()
        .chain(tally.corrections_by.keys())
        .chain(tally.turns_by.keys())
        .chain(tally.sessions_by.keys())
        .copied()
        // …and everyone with a shift that day (utilisation over the shift).
        .chain(
            state
                .shifts
                .keys()
                .filter(|(_, d)| *d == day)
                .map(|(t, _)| *t),
        )
        .collect();
    let therapists = ids
        .into_iter()
        .filter_map(|id| {
            let line = TherapistLine {
                therapist_id: id,
                name: staff_name(&state, id),
                role: state.staff.get(&id).map_or(Role::Therapist, |s| s.role),
                tips_cents: tally.tips_by.get(&id).copied().unwrap_or(0),
                tip_corrections_cents: tally.corrections_by.get(&id).copied().unwrap_or(0),
                turns: tally.turns_by.get(&id).copied().unwrap_or_default(),
                sessions: tally.sessions_by.get(&id).copied().unwrap_or(0),
                served_min: served_min(&tally, id),
                shift_min: shift_min(&state, id, day),
                utilisation_percent: shift_min(&state, id, day)
                    .filter(|m| *m > 0.0)
                    .map(|m| 100.0 * served_min(&tally, id) / m),
            };
            let touched = line.tips_cents != 0
                || tally.corrections_by.contains_key(&id)
                || line.turns != Turns::ZERO
                || line.sessions != 0
                || line.shift_min.is_some();
            touched.then_some(line)
        })
        .collect();

    let span_ms = match (first, last) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 0.0,
    };
    let room_ids: BTreeSet<Id> = state
        .rooms
        .keys()
        .chain(tally.occupied.keys())
        .copied()
        .collect();
    let rooms = room_ids
        .into_iter()
        .map(|id| {
            let (sessions, ms) = tally.occupied.get(&id).copied().unwrap_or((0, 0));
            let current = state.rooms.get(&id);
            RoomLine {
                room_id: id,
                name: current
                    .map(|r| r.name.clone())
                    .or_else(|| tally.room_names.get(&id).cloned())
                    .unwrap_or_else(|| format!("room {id}")),
                removed: current.is_none(),
                sessions,
                occupied_min: ms as f64 / 60_000.0,
                utilisation_percent: if span_ms > 0.0 {
                    (100.0 * ms as f64 / span_ms).min(100.0)
                } else {
                    0.0
                },
            }
        })
        .collect();
    let services_sold = tally
        .sold
        .into_iter()
        .map(|(id, (count, cents))| ServiceLine {
            service_id: id,
            name: state
                .services
                .get(&id)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| format!("service {id}")),
            count,
            revenue_cents: cents,
        })
        .collect();
    DayReport {
        day,
        visits_created,
        visits_by_state,
        services_sold,
        revenue_cents: tally.revenue.total(),
        booked_revenue_cents: tally.booked_revenue,
        walk_in_revenue_cents: tally.revenue.total() - tally.booked_revenue,
        bookings: tally.bookings,
        revenue_by_method: tally.revenue,
        services_cents: tally.services_cents,
        discounts: tally.discounts,
        tips: tally.tips,
        refunds: tally.refunds,
        refunds_by_method: tally.refunds_by_method,
        therapists,
        tip_corrections: tally.tip_corrections,
        average_wait_min: average(&tally.waits),
        average_service_min: average(&tally.service_times),
        rooms,
        drawers: tally.drawers,
        first_event_at: first,
        last_event_at: last,
        events,
        counter: tally.counter.finish(&state),
    }
}

/// The report's header row: every line is `section,key,name,value`, where
/// `key` is an id (or a fixed word such as a payment method) and `name` the
/// entity's name as of that day (empty where there is none).
pub const CSV_HEADER: [&str; 4] = ["section", "key", "name", "value"];

/// The report as CSV rows `section,key,name,value` (with a header row).
pub fn to_csv(r: &DayReport) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
    for [section, key, name, value] in csv_rows(r) {
        w.write_record([&section, &key, &name, &value])
            .map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The CSV's lines, in order (without the header).
pub fn csv_rows(r: &DayReport) -> Vec<[String; 4]> {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |section: &str, key: String, name: &str, value: String| {
        rows.push([section.to_string(), key, name.to_string(), value]);
    };
    let date = format!(
        "{}-{:02}-{:02}",
        r.day / 10_000,
        r.day / 100 % 100,
        r.day % 100
    );
    row("day", "date".into(), "", date);
    row("visits", "created".into(), "", r.visits_created.to_string());
    for (state, n) in &r.visits_by_state {
        row("visits_by_state", state.clone(), "", n.to_string());
    }
    for s in &r.services_sold {
        let id = s.service_id.to_string();
        row("services_sold", id.clone(), &s.name, s.count.to_string());
        row(
            "services_revenue_cents",
            id,
            &s.name,
            s.revenue_cents.to_string(),
        );
    }
    for m in Method::ALL {
        let cents = r.revenue_by_method.get(m).to_string();
        row("revenue_cents", m.as_str().into(), "", cents);
    }
    row(
        "revenue_cents",
        "total".into(),
        "",
        r.revenue_cents.to_string(),
    );
    row(
        "revenue_cents",
        "booked".into(),
        "",
        r.booked_revenue_cents.to_string(),
    );
    row(
        "revenue_cents",
        "walk_in".into(),
        "",
        r.walk_in_revenue_cents.to_string(),
    );
    let b = &r.bookings;
    for (key, n) in [
        ("made", b.made),
        ("checked_in", b.checked_in),
        ("cancelled", b.cancelled),
        ("cancelled_by_customer", b.cancelled_by_customer),
        ("no_shows", b.no_shows),
    ] {
        row("bookings", key.into(), "", n.to_string());
    }
    row(
        "services_cents",
        "total".into(),
        "",
        r.services_cents.to_string(),
    );
    for (section, c) in [
        ("discounts", &r.discounts),
        ("tips", &r.tips),
        ("refunds", &r.refunds),
    ] {
        row(section, "count".into(), "", c.count.to_string());
        row(section, "cents".into(), "", c.cents.to_string());
    }
    for m in Method::ALL {
        let cents = r.refunds_by_method.get(m).to_string();
        row("refunds_cents", m.as_str().into(), "", cents);
    }
    for t in &r.therapists {
        let id = t.therapist_id.to_string();
        row("staff_role", id.clone(), &t.name, t.role.as_str().into());
        row("tips_cents", id.clone(), &t.name, t.tips_cents.to_string());
        row(
            "tip_corrections_cents",
            id.clone(),
            &t.name,
            t.tip_corrections_cents.to_string(),
        );
        row("turns", id.clone(), &t.name, t.turns.to_string());
        row("sessions", id.clone(), &t.name, t.sessions.to_string());
        let one = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_default();
        row(
            "served_min",
            id.clone(),
            &t.name,
            format!("{:.1}", t.served_min),
        );
        row("shift_min", id.clone(), &t.name, one(t.shift_min));
        row(
            "utilisation_percent",
            id,
            &t.name,
            one(t.utilisation_percent),
        );
    }
    for c in &r.tip_corrections {
        for ch in &c.changes {
            row(
                "tip_correction_cents",
                format!("{}/{}", c.seq, ch.therapist_id),
                &format!("{} {}", c.number, ch.name),
                ch.delta_cents.to_string(),
            );
        }
    }
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_default();
    row("average_min", "wait".into(), "", opt(r.average_wait_min));
    row(
        "average_min",
        "service".into(),
        "",
        opt(r.average_service_min),
    );
    for room in &r.rooms {
        let id = room.room_id.to_string();
        row(
            "room_sessions",
            id.clone(),
            &room.name,
            room.sessions.to_string(),
        );
        row(
            "room_occupied_min",
            id.clone(),
            &room.name,
            format!("{:.1}", room.occupied_min),
        );
        row(
            "room_utilisation_percent",
            id,
            &room.name,
            format!("{:.1}", room.utilisation_percent),
        );
    }
    for d in &r.drawers {
        for (section, amounts) in [
            ("drawer_expected_cents", &d.expected),
            ("drawer_counted_cents", &d.counted),
            ("drawer_variance_cents", &d.variance),
        ] {
            for m in Method::ALL {
                row(
                    section,
                    format!("{}/{}", d.drawer_id, m.as_str()),
                    &d.owner_name,
                    amounts.get(m).to_string(),
                );
            }
        }
    }
    super::money::report::csv_rows(&r.counter, &mut |s, k, n, v| row(s, k, n, v));
    rows
}
