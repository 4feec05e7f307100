//! Seeded random days with the book: bookings made, moved, cancelled,
//! checked in and missed, walk-ins called around them, sessions running
//! late, shifts and blocks changing, the clock jumping back and forth.
//! After every step: no therapist or room is double-booked, every booking
//! lies in its shift and outside blocks, no walk-in was called into booked
//! time, and no view leaks a name to a monitor or another customer.

use std::collections::BTreeMap;

use serde_json::json;

use super::book::cmd;
use super::harness::*;
use crate::domain::book::{Booking, BookingState};
use crate::domain::command::ServiceCreate;
use crate::domain::state::{Presence, State, VisitState};
use crate::domain::views::{self, Viewer};
use crate::domain::{Actor, Command, ErrorCode, Event, Id};

const NAME: &str = "Guest-";
const PHONE: &str = "+1-555-";

struct Sim {
    f: Floor,
    rng: SeededRng,
    therapists: Vec<Id>,
    rooms: Vec<Id>,
    services: Vec<Id>,
    accepted: BTreeMap<&'static str, usize>,
    n: u64,
}

/// Holding bookings of `state`, as plain intervals, computed without the
/// index: (therapist, room, start, end, room until, id).
fn holding(state: &State) -> Vec<(Id, Id, i64, i64, i64, Id)> {
    state
        .bookings
        .values()
        .filter(|b| b.holds(state))
        .map(|b| {
            (
                b.therapist_id,
                b.room_id,
                b.start_ms,
                b.end_ms,
                b.room_until_ms,
                b.id,
            )
        })
        .collect()
}

fn check_book(f: &Floor, ctx: &str) {
    let s = &f.state;
    let h = holding(s);
    for (i, a) in h.iter().enumerate() {
        for b in &h[i + 1..] {
            assert!(
                !(a.0 == b.0 && a.2 < b.3 && b.2 < a.3),
                "{ctx}: therapist {} double-booked: {} and {}",
                a.0,
                a.5,
                b.5
            );
            assert!(
                !(a.1 == b.1 && a.2 < b.4 && b.2 < a.4),
                "{ctx}: room {} double-booked: {} and {}",
                a.1,
                a.5,
                b.5
            );
        }
    }
    for b in s
        .bookings
        .values()
        .filter(|b| b.state == BookingState::Booked)
    {
        let shift = s.shift(b.therapist_id, b.date);
        assert!(
            shift.is_some_and(|sh| sh.start_ms <= b.start_ms && b.end_ms <= sh.end_ms),
            "{ctx}: {} outside its shift",
            b.number
        );
        for bl in s.blocks.values() {
            let t = bl.therapist_id == Some(b.therapist_id)
                && bl.start_ms < b.end_ms
                && b.start_ms < bl.end_ms;
            let r = bl.room_id == Some(b.room_id)
                && bl.start_ms < b.room_until_ms
                && b.start_ms < bl.end_ms;
            assert!(!t && !r, "{ctx}: {} under block {}", b.number, bl.id);
        }
    }
    // Numbers are unique per date.
    let mut seen = std::collections::BTreeSet::new();
    for b in s.bookings.values() {
        assert!(
            seen.insert((b.date, b.number.clone())),
            "{ctx}: {} twice on {}",
            b.number,
            b.date
        );
    }
}

/// A walk-in just called onto `therapist` and `room` at `now`: nothing held
/// by the book in its way (its length, buffer and, for the room, cleanup).
fn check_walk_in(f: &Floor, visit: Id, ctx: &str) {
    let s = &f.state;
    let v = &s.visits[&visit];
    if s.booking_of_visit(visit).is_some() {
        return;
    }
    let now = f.now.ms;
    let done =
        now + i64::from(v.service_minutes) * MIN + i64::from(f.rules.booking_buffer_min) * MIN;
    let room_done = done + i64::from(v.cleanup_min) * MIN;
    for (t, r, start, end, room_until, id) in holding(s) {
        assert!(
            !(Some(t) == v.therapist && start < done && end > now),
            "{ctx}: walk-in {} given therapist {t} into booking {id}",
            v.number
        );
        assert!(
            !(Some(r) == v.room && start < room_done && room_until > now),
            "{ctx}: walk-in {} given room {r} into booking {id}",
            v.number
        );
    }
    for bl in s.blocks.values() {
        assert!(
            !(bl.therapist_id == v.therapist
                && v.therapist.is_some()
                && bl.start_ms < done
                && bl.end_ms > now),
            "{ctx}: walk-in into a block"
        );
    }
}

fn check_views(f: &Floor, rng: &mut SeededRng, ctx: &str) {
    let s = &f.state;
    let now = f.now;
    let monitor = views::snapshot(Viewer::Monitor, s, now).to_string();
    assert!(
        !monitor.contains(NAME) && !monitor.contains(PHONE),
        "{ctx}: monitor sees a customer"
    );
    let ids: Vec<Id> = s.bookings.keys().copied().collect();
    if let Some(id) = rng.pick(&ids) {
        let b: &Booking = &s.bookings[&id];
        let text = views::snapshot(Viewer::BookingCustomer(id), s, now).to_string();
        for (i, _) in text.match_indices(NAME) {
            let tail = &text[i..(i + NAME.len() + 6).min(text.len())];
            assert_eq!(
                tail, b.customer_name,
                "{ctx}: booking customer sees another name"
            );
        }
        for other in s
            .bookings
            .values()
            .filter(|o| o.id != id && o.customer_name != b.customer_name)
        {
            for view in [
                Viewer::BookingCustomer(id),
                Viewer::Customer(b.visit_id.unwrap_or(0)),
            ] {
                let seen = crate::domain::book::views::booking_for(view, other, s, now);
                assert!(seen.is_none(), "{ctx}: a customer sees another booking");
            }
        }
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut f = Floor::new();
        let mut therapists = Vec::new();
        for i in 0..6 {
            let t = f.add_therapist(&format!("T{i}"), if i == 0 { &["thai"] } else { &[] });
            therapists.push(t);
        }
        let rooms = (0..4).map(|i| f.add_room(&format!("R{i}"), 1)).collect();
        let mut services = vec![
            f.add_service("Sixty", 60, 10),
            f.add_service("Thirty", 30, 0),
        ];
        services.push(f.add_service_with(ServiceCreate {
            skill: Some("thai".into()),
            ..new_service("Thai", 90, 15)
        }));
        for date in ["2026-11-26", "2026-11-27"] {
            for t in &therapists {
                f.run(
                    &ADMIN,
                    cmd(
                        "schedule.set",
                        json!({"therapist_id": t, "date": date, "start": "08:00", "end": "20:00"}),
                    ),
                );
            }
        }
        Sim {
            f,
            rng: SeededRng::new(seed),
            therapists,
            rooms,
            services,
            accepted: BTreeMap::new(),
            n: 0,
        }
    }

    fn bookings_in(&self, states: &[BookingState]) -> Vec<Id> {
        self.f
            .state
            .bookings
            .values()
            .filter(|b| states.contains(&b.state))
            .map(|b| b.id)
            .collect()
    }
    fn visits_in(&self, state: VisitState) -> Vec<Id> {
        self.f
            .state
            .visits
            .values()
            .filter(|v| v.state == state)
            .map(|v| v.id)
            .collect()
    }

    fn start_text(&mut self) -> String {
        let day = if self.rng.chance(70) { 26 } else { 27 };
        let minutes = 8 * 60 + 15 * self.rng.below(45) as i64;
        format!("2026-11-{day}T{:02}:{:02}", minutes / 60, minutes % 60)
    }

    fn command(&mut self) -> (Actor, Command) {
        self.n += 1;
        let cashier = ADMIN;
        match self.rng.below(100) {
            0..=13 => {
                let svc = self.rng.pick(&self.services).unwrap_or(0);
                let mut args = json!({"start": self.start_text(), "service_ids": [svc],
                    "customer_name": format!("{NAME}{:06}", self.n), "phone": format!("{PHONE}{:07}", self.n)});
                if self.rng.chance(50) {
                    args["therapist_id"] = json!(self.rng.pick(&self.therapists));
                }
                if self.rng.chance(30) {
                    args["room_id"] = json!(self.rng.pick(&self.rooms));
                }
                let mut c = cmd("booking.create", args);
                if let Command::BookingCreate(b) = &mut c {
                    b.token_hash = format!("bt-{}", self.n);
                }
                (cashier, c)
            }
            14..=25 => {
                let id = self
                    .rng
                    .pick(&self.bookings_in(&[BookingState::Booked]))
                    .unwrap_or(0);
                let mut args = json!({"booking_id": id});
                if self.rng.chance(70) {
                    args["start"] = json!(self.start_text());
                }
                if self.rng.chance(40) {
                    args["therapist_id"] = json!(self.rng.pick(&self.therapists));
                }
                (cashier, cmd("booking.move", args))
            }
            26..=29 => {
                let id = self
                    .rng
                    .pick(&self.bookings_in(&[BookingState::Booked]))
                    .unwrap_or(0);
                (
                    cashier,
                    cmd(
                        "booking.cancel",
                        json!({"booking_id": id, "reason": "seeded"}),
                    ),
                )
            }
            30..=37 => {
                let id = self
                    .rng
                    .pick(&self.bookings_in(&[BookingState::Booked, BookingState::NoShow]))
                    .unwrap_or(0);
                (cashier, cmd("booking.check_in", json!({"booking_id": id})))
            }
            38..=39 => {
                // Mostly one whose time has come (a no-show before it is refused).
                let now = self.f.now.ms;
                let due: Vec<Id> = self
                    .f
                    .state
                    .bookings
                    .values()
                    .filter(|b| b.state == BookingState::Booked && b.start_ms <= now)
                    .map(|b| b.id)
                    .collect();
                let id = self
                    .rng
                    .pick(&due)
                    .or_else(|| self.rng.pick(&self.bookings_in(&[BookingState::Booked])))
                    .unwrap_or(0);
                (cashier, cmd("booking.no_show", json!({"booking_id": id})))
            }
            40..=49 => {
                let svc = self.rng.pick(&self.services).unwrap_or(0);
                let mut c = self.f.new_visit(&format!("{NAME}{:06}", self.n), &[svc]);
                c.phone = Some(format!("{PHONE}{:07}", self.n));
                (cashier, Command::VisitCreate(c))
            }
            50..=64 => {
                let who = if self.rng.chance(70) {
                    None
                } else {
                    self.rng.pick(&self.therapists)
                };
                (cashier, call_with(None, who, None))
            }
            65..=72 => {
                let v = self
                    .rng
                    .pick(&self.visits_in(VisitState::Called))
                    .unwrap_or(0);
                (ADMIN, start(v))
            }
            73..=80 => {
                let v = self
                    .rng
                    .pick(&self.visits_in(VisitState::InService))
                    .unwrap_or(0);
                // Sessions run late now and then.
                if self.rng.chance(25) {
                    (ADMIN, extend(v, 30))
                } else {
                    (ADMIN, finish(v))
                }
            }
            81..=83 => {
                let v = self
                    .rng
                    .pick(&self.visits_in(VisitState::Called))
                    .unwrap_or(0);
                (ADMIN, undo(v))
            }
            84..=86 => {
                let t = self.rng.pick(&self.therapists).unwrap_or(0);
                let c = match self.rng.below(3) {
                    0 => clock_out(t),
                    1 => clock_in(t),
                    _ => take_break(t),
                };
                (ADMIN, c)
            }
            87..=89 => {
                let start = self.start_text();
                let (day, hhmm) = start.split_once('T').unwrap_or_default();
                let (h, m) = hhmm.split_once(':').unwrap_or_default();
                let end_min =
                    h.parse::<u32>().unwrap_or(8) * 60 + m.parse::<u32>().unwrap_or(0) + 45;
                let end = format!("{day}T{:02}:{:02}", end_min / 60, end_min % 60);
                let mut args = json!({"start": start, "end": end, "reason": "seeded"});
                if self.rng.chance(50) {
                    args["therapist_id"] = json!(self.rng.pick(&self.therapists));
                } else {
                    args["room_id"] = json!(self.rng.pick(&self.rooms));
                }
                (ADMIN, cmd("block.create", args))
            }
            90 => {
                let ids: Vec<Id> = self.f.state.blocks.keys().copied().collect();
                let id = self.rng.pick(&ids).unwrap_or(0);
                (ADMIN, cmd("block.remove", json!({"block_id": id})))
            }
            91..=92 => {
                let t = self.rng.pick(&self.therapists).unwrap_or(0);
                let date = if self.rng.chance(50) {
                    "2026-11-26"
                } else {
                    "2026-11-27"
                };
                let (a, b) = [("08:00", "20:00"), ("10:00", "18:00"), ("12:00", "16:00")]
                    [self.rng.below(3) as usize];
                (
                    ADMIN,
                    cmd(
                        "schedule.set",
                        json!({"therapist_id": t, "date": date, "start": a, "end": b}),
                    ),
                )
            }
            93..=95 => {
                let svc = self.rng.pick(&self.services).unwrap_or(0);
                (
                    ADMIN,
                    cmd(
                        "booking.availability",
                        json!({"date": "2026-11-26", "service_ids": [svc]}),
                    ),
                )
            }
            _ => (
                ADMIN,
                Command::VisitLeave(crate::domain::command::VisitReason {
                    visit_id: self
                        .rng
                        .pick(&self.visits_in(VisitState::Waiting))
                        .unwrap_or(0),
                    reason: "seeded".into(),
                    approval: None,
                    approved_by: None,
                }),
            ),
        }
    }

    /// The writer's timers, as due at `now`.
    fn timers(&mut self) {
        let grace = i64::from(self.f.rules.no_show_grace_min) * MIN;
        let now = self.f.now.ms;
        let due: Vec<Command> = self
            .f
            .state
            .bookings
            .values()
            .filter_map(|b| match b.state {
                BookingState::Booked if b.start_ms + grace <= now => Some(Command::NoShowDue {
                    booking_id: b.id,
                    start_ms: b.start_ms,
                }),
                BookingState::CheckedIn if b.start_ms <= now && !b.late_alerted => {
                    Some(Command::BookingDue { booking_id: b.id })
                }
                _ => None,
            })
            .collect();
        let cleanups: Vec<Command> = self
            .f
            .state
            .rooms
            .values()
            .filter(|r| r.cleaning_until.is_some_and(|u| u <= now))
            .map(|r| Command::CleanupElapsed { room_id: r.id })
            .collect();
        for c in due.into_iter().chain(cleanups) {
            if self.f.try_run(&Actor::System, &c).is_ok() {
                *self.accepted.entry(c.name()).or_default() += 1;
            }
        }
    }

    fn step(&mut self, i: usize) {
        let (actor, command) = self.command();
        let before = self.f.log.len();
        match self.f.try_run(&actor, &command) {
            Ok(_) => {
                *self.accepted.entry(command.name()).or_default() += 1;
                for r in &self.f.log[before..] {
                    if let Event::VisitCalled { visit_id, .. } = &r.event {
                        check_walk_in(&self.f, *visit_id, &format!("step {i}"));
                    }
                }
            }
            Err(e) => {
                if std::env::var_os("SIM_WHY").is_some() && command.name() == "visit.call" {
                    eprintln!("{i} {}", e.message);
                }
                assert_eq!(self.f.log.len(), before);
                assert!(
                    matches!(
                        e.code,
                        ErrorCode::Invalid
                            | ErrorCode::Conflict
                            | ErrorCode::NotFound
                            | ErrorCode::Forbidden
                    ),
                    "step {i}: {e}"
                );
            }
        }
        self.timers();
        let ctx = format!("step {i} ({})", command.name());
        check_book(&self.f, &ctx);
        check_views(&self.f, &mut self.rng, &ctx);
        // Therapists stay consistent with the book's view of them.
        for t in &self.therapists {
            let st = &self.f.state.staff[t];
            assert!(st.presence != Presence::Called || st.current_visit.is_some());
        }
    }
}

fn run(seed: u64, steps: usize) {
    let mut sim = Sim::new(seed);
    sim.f.advance(0);
    for i in 0..steps {
        // Mostly forward a few minutes; now and then the wall clock jumps
        // (a Pi syncing after boot) back or forward, within the day.
        let roll = sim.rng.below(100);
        let dt = match roll {
            0..=2 => -(sim.rng.below(20) as i64) * MIN,
            3..=4 => 45 * MIN,
            _ => sim.rng.below(80_000) as i64,
        };
        let floor_ms = T0; // 08:00: never before the day's first event
        sim.f.now.ms = (sim.f.now.ms + dt).max(floor_ms).min(T0 + 11 * 60 * MIN);
        sim.step(i);
    }
    // No-shows come from the timer or from staff, whichever the dice give.
    let no_shows = sim.accepted.get("timer.no_show").copied().unwrap_or(0)
        + sim.accepted.get("booking.no_show").copied().unwrap_or(0);
    assert!(no_shows > 0, "seed {seed}: no no-show: {:?}", sim.accepted);
    for name in [
        "booking.create",
        "booking.move",
        "booking.cancel",
        "booking.check_in",
        "visit.call",
    ] {
        assert!(
            sim.accepted.get(name).copied().unwrap_or(0) > 0,
            "seed {seed}: no {name}: {:?}",
            sim.accepted
        );
    }
    eprintln!("seed {seed}: {:?}", sim.accepted);
    let clock = crate::clock::SpaClock::new(sim.f.rules.tz.clone());
    super::privacy::check_head_office_copy(&sim.f.log, &[NAME, PHONE], |ms| clock.day_of(ms));
    let called_booked = sim
        .f
        .state
        .visits
        .values()
        .filter(|v| v.therapist.is_some() && sim.f.state.booking_of_visit(v.id).is_some())
        .count();
    assert!(
        called_booked > 0,
        "seed {seed}: no booked visit was called: {:?}",
        sim.accepted
    );
}

#[test]
fn a_booked_day_seed_1() {
    run(1, 900);
}

#[test]
fn a_booked_day_seed_2() {
    run(77, 900);
}

#[test]
fn a_booked_day_seed_3() {
    run(20261126, 900);
}
