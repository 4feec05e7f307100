//! History leaving memory: what the archive pass takes and keeps, a
//! restored visit refunded weeks later, and over seeded weeks of days that
//! memory stays bounded while every day report stays what it was.

use std::collections::BTreeMap;

use serde_json::json;

use super::book::{cmd, Book};
use super::harness::*;
use crate::domain::archive::{cutoff_day, KEEP_DAYS};
use crate::domain::book::time::{date_of_day, day_of_date};
use crate::domain::book::BookingState;
use crate::domain::report::{day_report, day_report_from};
use crate::domain::state::{Record, RecordKey, Visit, VisitState};
use crate::domain::{Command, ErrorCode, Event, EventRecord, Id, Now};

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

/// Runs the archive pass until nothing is due; returns the archived events.
fn archive_all(f: &mut Floor) -> Vec<crate::domain::archive::Archive> {
    let mut out = Vec::new();
    while let Ok(done) = f.try_run(&crate::domain::Actor::System, &Command::ArchiveDue) {
        for e in done.events {
            if let Event::Archived { archive } = e {
                out.push(archive);
            }
        }
    }
    out
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
        let mut archive: BTreeMap<Id, Visit> = BTreeMap::new();
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
                    if !f.state.visits.contains_key(&old) {
                        let visit = archive.get(&old).cloned().expect("archived");
                        f.push(
                            &crate::domain::Actor::System,
                            Event::VisitRestored { visit },
                        );
                    }
                    let _ = f.try_run(
                        &ADMIN,
                        &cmd(
                            "visit.refund",
                            json!({"visit_id": old, "amount_cents": 100, "reason": "goodwill"}),
                        ),
                    );
                }
            }
            for t in f.state.staff.keys().copied().collect::<Vec<_>>() {
                let _ = f.try_run(&ADMIN, &clock_out(t));
            }
            // The hourly pass, with what it archives kept aside.
            let before = f.state.clone();
            for a in archive_all(&mut f) {
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
                    if let Some(Record::Visit(v)) = before.record(&RecordKey::Visit(*id)) {
                        archive.insert(*id, v);
                    }
                }
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
                    Event::Archived { .. } | Event::VisitRestored { .. }
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
