//! History leaving memory: what the archive pass takes and keeps, a
//! restored visit refunded weeks later, and over seeded weeks of days that
//! memory stays bounded while every day report stays what it was.

use std::collections::BTreeMap;

use serde_json::json;

use super::book::{cmd, Book};
use super::harness::*;
use crate::domain::archive::{
    cutoff_day, moved_out, restore_for, Lookup, KEEP_DAYS, KEEP_RECEIPTS_MS,
};
use crate::domain::book::time::{date_of_day, day_of_date};
use crate::domain::book::BookingState;
use crate::domain::money::receipt::{Receipt, ReceiptKind};
use crate::domain::report::{day_report, day_report_from};
use crate::domain::state::{Record, Visit, VisitState};
use crate::domain::{Actor, Command, DomainError, ErrorCode, Event, EventRecord, Id, Now};

const DAY: i64 = 86_400_000;

/// `day` (`yyyymmdd`) plus `n` days.
fn plus_days(day: u32, n: i64) -> u32 {
    date_of_day(day)
        .and_then(|d| d.checked_add(jiff::Span::new().days(n)).ok())
        .map(day_of_date)
        .expect("a date")
}

/// The floor's clock `n` days after the first morning.
fn on_day(f: &mut Floor, n: i64) {
    f.now = Now {
        ms: T0 + n * DAY,
        day: plus_days(DAY1, n),
    };
}

fn pay_card(f: &mut Floor, v: Id) {
    // The admin's drawer (opened once; refused when already open).
    let _ = f.try_run(&ADMIN, &cmd("drawer.open", json!({"float_cents": 0})));
    let total = f.visit(v).services_cents;
    f.run(
        &ADMIN,
        cmd(
            "visit.checkout",
            json!({"visit_id": v, "request_id": format!("pay-{v}"),
                "payments": [{"method": "card", "amount_cents": total}]}),
        ),
    );
}

/// The store's archive as maps: filled with what each archiving event
/// moves out (as the writer fills the store), read through `restore_for`
/// (as the writer reads the store).
#[derive(Default)]
struct Shelf {
    visits: BTreeMap<Id, Visit>,
    receipts: BTreeMap<Id, Receipt>,
}

impl Lookup for Shelf {
    fn visit(&self, id: Id) -> Result<Option<Visit>, DomainError> {
        Ok(self.visits.get(&id).cloned())
    }
    fn receipt(&self, id: Id) -> Result<Option<Receipt>, DomainError> {
        Ok(self.receipts.get(&id).cloned())
    }
    fn receipts_of_visit(&self, visit_id: Id) -> Result<Vec<Receipt>, DomainError> {
        Ok(self
            .receipts
            .values()
            .filter(|r| r.visit_id == Some(visit_id))
            .cloned()
            .collect())
    }
    fn refunds_of(&self, sale_id: Id) -> Result<Vec<Receipt>, DomainError> {
        Ok(self
            .receipts
            .values()
            .filter(|r| r.refund_of == Some(sale_id))
            .cloned()
            .collect())
    }
}

impl Shelf {
    /// `command` decided as the writer decides it: what it needs from the
    /// archive restored first.
    fn run(&self, f: &mut Floor, actor: &Actor, command: &Command) -> Result<Done, DomainError> {
        for event in restore_for(&f.state, command, self)? {
            f.push(&Actor::System, event);
        }
        f.try_run(actor, command)
    }
}

/// `archive_all`, keeping what leaves in `shelf`.
fn archive_all_into(f: &mut Floor, shelf: &mut Shelf) -> Vec<crate::domain::archive::Archive> {
    let mut out = Vec::new();
    loop {
        let before = f.state.clone();
        let Ok(done) = f.try_run(&Actor::System, &Command::ArchiveDue) else {
            return out;
        };
        for e in done.events {
            for r in moved_out(&before, &e).map(|(r, _)| r).unwrap_or_default() {
                match r {
                    Record::Visit(v) => {
                        shelf.visits.insert(v.id, v);
                    }
                    Record::Receipt(r) => {
                        shelf.receipts.insert(r.id, r);
                    }
                    _ => {}
                }
            }
            if let Event::Archived { archive } = e {
                out.push(archive);
            }
        }
    }
}

/// Runs the archive pass until nothing is due; returns the archived events.
fn archive_all(f: &mut Floor) -> Vec<crate::domain::archive::Archive> {
    archive_all_into(f, &mut Shelf::default())
}

#[test]
fn old_history_leaves_memory_and_the_floor_keeps_what_it_needs() {
    let mut b = Book::new();
    let (t1, svc) = (b.t1, b.svc);
    // Day 1: one visit paid, one left, one served but never paid; a
    // booking cancelled and one still booked for tomorrow.
    let paid = b.f.add_visit("Paid Pia", &[svc]);
    b.f.serve(paid);
    pay_card(&mut b.f, paid);
    let left = b.f.add_visit("Left Leo", &[svc]);
    b.f.run(&ADMIN, leave(left, "had to go"));
    let unpaid = b.f.add_visit("Unpaid Uma", &[svc]);
    b.f.serve(unpaid);
    let cancelled = b.book("15:00", Some(t1), None);
    b.f.run(
        &ADMIN,
        cmd(
            "booking.cancel",
            json!({"booking_id": cancelled, "reason": "ill"}),
        ),
    );
    let tomorrow = b.book("2026-11-27T10:00", None, None);

    // Within the days kept, nothing leaves.
    on_day(&mut b.f, KEEP_DAYS);
    assert!(archive_all(&mut b.f).is_empty());

    // A day later, day 1 is history.
    on_day(&mut b.f, KEEP_DAYS + 1);
    let waiting = b.f.add_visit("Today Tia", &[svc]);
    let archived = archive_all(&mut b.f);
    assert_eq!(archived.len(), 1);
    let a = &archived[0];
    assert_eq!(a.before_day, cutoff_day(b.f.now.day));
    assert_eq!(a.visits, vec![paid, left]);
    assert_eq!(a.bookings, vec![cancelled]);
    assert!(a.shifts.iter().all(|(_, d)| *d < a.before_day));
    assert!(!a.shifts.is_empty());
    for id in [paid, left] {
        assert!(!b.f.state.visits.contains_key(&id));
    }
    // The unpaid visit, today's visit, the booked booking and the whole
    // catalogue stay.
    assert_eq!(b.f.visit_state(unpaid), VisitState::AwaitingPayment);
    assert_eq!(b.f.visit_state(waiting), VisitState::Waiting);
    assert_eq!(b.booking(tomorrow).state, BookingState::Booked);
    assert!(!b.f.state.bookings.contains_key(&cancelled));
    assert_eq!(b.f.state.staff.len(), 2);
    assert_eq!(b.f.state.rooms.len(), 2);
    // Nothing more is due.
    b.f.refuse(
        &crate::domain::Actor::System,
        Command::ArchiveDue,
        ErrorCode::Conflict,
        &["nothing"],
    );
}

#[test]
fn an_archived_visit_comes_back_for_a_refund_and_the_reports_do_not_move() {
    let mut f = Floor::new();
    f.add_therapist("Tess", &[]);
    f.add_room("Lotus", 1);
    let thai = f.add_service("Thai", 60, 0);
    let v = f.add_visit("Ann", &[thai]);
    f.serve(v);
    pay_card(&mut f, v);
    let kept: Visit = f.visit(v).clone();
    let first_day = day_report(f.log.clone(), DAY1, day_of);

    on_day(&mut f, KEEP_DAYS + 5);
    let archived = archive_all(&mut f);
    assert_eq!(archived[0].visits, vec![v]);
    // A refund now finds nothing in memory …
    let refund = cmd(
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 1000, "reason": "sore back"}),
    );
    f.refuse(&ADMIN, refund.clone(), ErrorCode::NotFound, &[]);
    // … until the writer restores it from the archive, as it was.
    f.push(
        &crate::domain::Actor::System,
        Event::VisitRestored {
            visit: kept.clone(),
        },
    );
    assert_eq!(f.visit(v), &kept);
    f.run(&ADMIN, refund);
    assert_eq!(archive_all(&mut f)[0].visits, vec![v]);

    // The sale's day is unchanged; the refund is on the day it was made.
    let today = f.now.day;
    assert_eq!(day_report(f.log.clone(), DAY1, day_of), first_day);
    let r = day_report(f.log.clone(), today, day_of);
    assert_eq!((r.refunds.count, r.refunds.cents), (1, 1000));
}

/// The test clock's local day of `ms` (UTC, like `Floor`'s days).
fn day_of(ms: i64) -> u32 {
    crate::domain::book::time::local_of(&jiff::tz::TimeZone::UTC, ms).0
}

/// Over seeded weeks of busy days with refunds of any past visit: the
/// visits in memory stay within the days kept, no visit still on the floor
/// ever leaves, and every day's report equals the one computed from a log
/// without any archiving at all.
#[test]
fn seeded_weeks_keep_memory_bounded_and_reports_unchanged() {
    for seed in 1..=2u64 {
        let mut rng = SeededRng::new(seed);
        let mut f = Floor::new();
        for i in 0..3 {
            f.add_therapist(&format!("T{i}"), &[]);
            f.add_room(&format!("R{i}"), 1);
        }
        let svc = f.add_service("Thai", 30, 0);
        // What the store's archive would hold (the records as archived).
        let mut shelf = Shelf::default();
        let mut paid: Vec<Id> = Vec::new();
        let days = 2 * KEEP_DAYS + 3;
        let per_day = 8;
        for d in 0..days {
            on_day(&mut f, d);
            for t in f.state.staff.keys().copied().collect::<Vec<_>>() {
                let _ = f.try_run(&ADMIN, &clock_in(t));
            }
            for k in 0..per_day {
                f.now.ms = T0 + d * DAY + k * 20 * MIN;
                let v = f.add_visit(&format!("C{d}-{k}"), &[svc]);
                match rng.below(10) {
                    0 => {
                        f.run(&ADMIN, leave(v, "left"));
                    }
                    1 => {
                        f.serve(v); // never paid: stays on the floor
                    }
                    _ => {
                        f.serve(v);
                        pay_card(&mut f, v);
                        paid.push(v);
                    }
                }
                // Now and then a refund of any visit ever paid.
                if rng.chance(15) {
                    let Some(old) = rng.pick(&paid) else { continue };
                    let refund = cmd(
                        "visit.refund",
                        json!({"visit_id": old, "amount_cents": 100, "reason": "goodwill"}),
                    );
                    if let Ok(done) = shelf.run(&mut f, &ADMIN, &refund) {
                        // Its sale receipt was found, in memory or archived:
                        // the refund has a receipt of its own.
                        assert!(
                            matches!(done.events.first(), Some(Event::Refunded { .. })),
                            "seed {seed} day {d}: a refund of {old} without a receipt"
                        );
                    }
                }
            }
            for t in f.state.staff.keys().copied().collect::<Vec<_>>() {
                let _ = f.try_run(&ADMIN, &clock_out(t));
            }
            // The hourly pass, with what it archives kept aside.
            let before = f.state.clone();
            for a in archive_all_into(&mut f, &mut shelf) {
                for id in &a.visits {
                    let v = &before.visits[id];
                    assert!(
                        matches!(
                            v.state,
                            VisitState::Closed | VisitState::Left | VisitState::Voided
                        ),
                        "seed {seed} day {d}: {} archived while {:?}",
                        v.number,
                        v.state
                    );
                    assert!(v.day < cutoff_day(f.now.day));
                }
            }
            // Receipts in memory: the last day's only (no sale here).
            let oldest = f.now.ms - KEEP_RECEIPTS_MS;
            for r in f.state.till.receipts.values() {
                assert!(
                    r.at >= oldest,
                    "seed {seed} day {d}: receipt {} of {} still in memory",
                    r.number_words(),
                    r.at
                );
            }
            let unpaid = f
                .state
                .visits
                .values()
                .filter(|v| v.state == VisitState::AwaitingPayment)
                .count();
            let bound = (KEEP_DAYS as usize + 1) * per_day as usize + unpaid;
            assert!(
                f.state.visits.len() <= bound,
                "seed {seed} day {d}: {} visits in memory, bound {bound}",
                f.state.visits.len()
            );
        }
        // Every day's report, with and without the archiving in the log.
        let plain: Vec<EventRecord> = f
            .log
            .iter()
            .filter(|r| {
                !matches!(
                    r.event,
                    Event::Archived { .. }
                        | Event::VisitRestored { .. }
                        | Event::ReceiptsArchived { .. }
                        | Event::ReceiptsRestored { .. }
                )
            })
            .cloned()
            .collect();
        // Checkpoints at the start of every day, from one replay …
        let mut checkpoints = Vec::new();
        let last = plus_days(DAY1, days);
        day_report_from(
            None,
            f.log.clone(),
            last,
            day_of,
            |_| true,
            |c| checkpoints.push(c),
        );
        assert_eq!(checkpoints.len() as i64, days - 1);
        for d in 0..days {
            let day = plus_days(DAY1, d);
            // … from which each day's report is the same as from seq 1.
            if let Some(c) = checkpoints.iter().rev().find(|c| c.day <= day) {
                let after: Vec<EventRecord> =
                    f.log.iter().filter(|r| r.seq > c.seq).cloned().collect();
                assert_eq!(
                    day_report_from(Some(c.clone()), after, day, day_of, |_| false, |_| {}),
                    day_report(f.log.clone(), day, day_of),
                    "seed {seed}: {day} from the checkpoint of {}",
                    c.day
                );
            }
            let mut with = day_report(f.log.clone(), day, day_of);
            let without = day_report(plain.clone(), day, day_of);
            // Only the count of the log's events that day may differ (the
            // archive's own events are in it).
            with.events = without.events;
            with.first_event_at = without.first_event_at;
            with.last_event_at = without.last_event_at;
            assert_eq!(with, without, "seed {seed}: the report of {day} moved");
        }
    }
}

/// Receipts leave memory after a day, before their visit, and come back
/// for a refund weeks later with the refunds already made: the refund is
/// per line, capped by what is left, with its own receipt, as on the day;
/// the day reports do not move.
#[test]
fn old_receipts_leave_memory_and_come_back_for_a_refund() {
    use super::counter::counter;
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.massage]);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "items": [{"product_id": c.oil, "qty": 3}], "payments": [{"method": "card", "amount_cents": 6_999 + 3_897}]}));
    c.run(&ADMIN, "visit.refund", json!({"visit_id": v, "lines": [{"line": 1, "qty": 1}], "restock": true, "reason": "leaking"}));
    let sale = c.run(&cashier, "sale.checkout", json!({"request_id": "s1", "items": [{"product_id": c.cream, "qty": 2}], "payments": [{"method": "card", "amount_cents": 4_010}]}));
    let sale = sale["sale_id"].as_u64().expect("sale id");
    c.run(
        &ADMIN,
        "sale.refund",
        json!({"sale_id": sale, "lines": [{"line": 0, "qty": 1}], "reason": "broken"}),
    );
    let visit_receipt = c.receipt(v).id;
    assert_eq!(c.f.state.till.receipts.len(), 4);
    let first_day = day_report(c.f.log.clone(), DAY1, day_of);

    // Within the day, they stay; after it, they leave (the visit stays),
    // but for the sale's own receipt, which answers a retry of the sale.
    let mut shelf = Shelf::default();
    archive_all_into(&mut c.f, &mut shelf);
    assert_eq!(c.f.state.till.receipts.len(), 4);
    on_day(&mut c.f, 2);
    archive_all_into(&mut c.f, &mut shelf);
    let till = &c.f.state.till;
    assert_eq!(till.receipts.keys().collect::<Vec<_>>(), vec![&sale]);
    assert!(till.receipt_of_visit.is_empty() && till.refunds_by_sale.is_empty());
    assert_eq!(shelf.receipts.len(), 3);
    assert!(c.f.state.visits.contains_key(&v));
    let again = c.run(&cashier, "sale.checkout", json!({"request_id": "s1", "items": [{"product_id": c.cream, "qty": 2}], "payments": [{"method": "card", "amount_cents": 4_010}]}));
    assert_eq!(
        (again["sale_id"].as_u64(), &again["retried"]),
        (Some(sale), &json!(true))
    );
    // Gift cards and products stay: they are live.
    assert_eq!(c.stock(c.oil), 8);

    // A refund of the visit (still in memory) brings back its sale receipt
    // and its refund: two oils are left on line 1, and the refund has its
    // own receipt.
    let too_many = cmd(
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1, "qty": 3}], "reason": "x"}),
    );
    let restore = restore_for(&c.f.state, &too_many, &shelf).expect("read");
    assert!(
        matches!(restore.as_slice(), [Event::ReceiptsRestored { receipts }] if receipts.len() == 2)
    );
    let err = shelf
        .run(&mut c.f, &ADMIN, &too_many)
        .expect_err("two left");
    assert!(err.message.contains("2 left"), "{err}");
    // What memory has is not restored again.
    assert!(restore_for(&c.f.state, &too_many, &shelf)
        .expect("read")
        .is_empty());
    let done = shelf
        .run(&mut c.f, &ADMIN, &cmd("visit.refund", json!({"visit_id": v, "lines": [{"line": 1, "qty": 2}], "restock": true, "reason": "leaking too"})))
        .expect("refund by line");
    assert!(matches!(
        done.events.as_slice(),
        [Event::Refunded { .. }, Event::VisitRefunded { .. }]
    ));
    assert_eq!(c.receipt(v).id, visit_receipt);
    assert_eq!(c.receipt(v).refunded[1].qty, 3);
    assert_eq!(c.stock(c.oil), 10);

    // After the visits' days, the visit and the sale's receipt leave too.
    on_day(&mut c.f, KEEP_DAYS + 3);
    archive_all_into(&mut c.f, &mut shelf);
    let till = &c.f.state.till;
    assert!(till.receipts.is_empty(), "{:?}", till.receipts.keys());
    assert!(till.receipt_by_request.is_empty());
    assert!(!c.f.state.visits.contains_key(&v));
    assert_eq!(shelf.receipts.len(), 5);

    // Without the archive, a sale is not found …
    let refund_sale = cmd(
        "sale.refund",
        json!({"sale_id": sale, "lines": [{"line": 0, "qty": 2}], "reason": "x"}),
    );
    c.f.refuse(
        &ADMIN,
        refund_sale.clone(),
        ErrorCode::NotFound,
        &["no sale"],
    );
    // … with it, the sale comes back with its refund: one cream is left.
    let err = shelf
        .run(&mut c.f, &ADMIN, &refund_sale)
        .expect_err("only one left");
    assert_eq!(err.code, ErrorCode::Invalid, "{err}");
    assert!(c.f.state.till.receipts.contains_key(&sale));
    assert_eq!(c.f.state.till.refunds_of(sale).count(), 1);
    let done = shelf
        .run(
            &mut c.f,
            &ADMIN,
            &cmd(
                "sale.refund",
                json!({"sale_id": sale, "lines": [{"line": 0, "qty": 1}], "reason": "also broken"}),
            ),
        )
        .expect("the last cream");
    assert_eq!(done.reply["receipt"]["kind"], "refund");
    assert_eq!(done.reply["receipt"]["refund_of"], json!(sale));

    // A refund of the archived visit brings back the visit and its three
    // receipts.
    let massage = cmd(
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 0, "qty": 1}], "reason": "sore back"}),
    );
    let restore = restore_for(&c.f.state, &massage, &shelf).expect("read");
    assert!(
        matches!(restore.as_slice(), [Event::VisitRestored { .. }, Event::ReceiptsRestored { receipts }] if receipts.len() == 3)
    );
    shelf
        .run(&mut c.f, &ADMIN, &massage)
        .expect("refund of the massage");
    assert_eq!(c.receipt(v).refunded[0].qty, 1);
    on_day(&mut c.f, KEEP_DAYS + 5);
    archive_all_into(&mut c.f, &mut shelf);
    assert!(c.f.state.till.receipts.is_empty());
    // Two sales and five refunds, every one on the shelf.
    assert_eq!(shelf.receipts.len(), 7);
    assert_eq!(
        shelf
            .receipts
            .values()
            .filter(|r| r.kind == ReceiptKind::Refund)
            .count(),
        5
    );
    // The day of the sales reports what it reported.
    assert_eq!(day_report(c.f.log.clone(), DAY1, day_of), first_day);
}
