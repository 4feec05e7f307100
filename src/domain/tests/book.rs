//! The book in the pure core: shifts, blocks, every booking command in
//! every state, walk-ins kept out of booked time, booked visits called
//! first, the timers, the views, and a day with daylight saving.

use serde_json::{json, Value};

use super::harness::*;
use crate::domain::book::BookingState;
use crate::domain::command::ServiceCreate;
use crate::domain::state::VisitState;
use crate::domain::views::{self, Viewer};
use crate::domain::{Actor, Command, ErrorCode, Event, Id, Role};

pub fn cmd(name: &str, args: Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `T0` is 2026-11-26 08:00 UTC (the harness's zone is UTC).
const TODAY: &str = "2026-11-26";

pub struct Book {
    pub f: Floor,
    pub t1: Id,
    pub t2: Id,
    pub r1: Id,
    pub r2: Id,
    /// 60 min, 10 min cleanup.
    pub svc: Id,
    tokens: u64,
}

impl Book {
    /// Two therapists clocked in and working 08:00–20:00 today and
    /// tomorrow, two rooms, a 60-minute service with 10 minutes' cleanup.
    pub fn new() -> Book {
        let mut f = Floor::new();
        let t1 = f.add_therapist("T1", &[]);
        let t2 = f.add_therapist("T2", &[]);
        let r1 = f.add_room("R1", 1);
        let r2 = f.add_room("R2", 1);
        let svc = f.add_service("Massage", 60, 10);
        let mut b = Book {
            f,
            t1,
            t2,
            r1,
            r2,
            svc,
            tokens: 0,
        };
        for date in [TODAY, "2026-11-27"] {
            b.shift(t1, date, "08:00", "20:00");
            b.shift(t2, date, "08:00", "20:00");
        }
        b
    }

    pub fn shift(&mut self, t: Id, date: &str, start: &str, end: &str) {
        self.f.run(
            &ADMIN,
            cmd(
                "schedule.set",
                json!({"therapist_id": t, "date": date, "start": start, "end": end}),
            ),
        );
    }

    /// `booking.create` with a fresh token, as the shell sends it.
    pub fn create(&mut self, args: Value) -> Command {
        let mut c = cmd("booking.create", args);
        if let Command::BookingCreate(b) = &mut c {
            self.tokens += 1;
            b.token_hash = format!("booking-token-{}", self.tokens);
        }
        c
    }

    /// Books `svc` at `start` (local `HH:MM` today, or a full local time).
    pub fn book(&mut self, start: &str, therapist: Option<Id>, room: Option<Id>) -> Id {
        let start = if start.len() == 5 {
            format!("{TODAY}T{start}")
        } else {
            start.to_string()
        };
        let mut args = json!({"start": start, "service_ids": [self.svc], "customer_name": "Bea Booked", "phone": "+1 555 0101", "notes": "allergic to nuts"});
        if let Some(t) = therapist {
            args["therapist_id"] = json!(t);
        }
        if let Some(r) = room {
            args["room_id"] = json!(r);
        }
        let c = self.create(args);
        self.f.run(&ADMIN, c);
        self.f
            .state
            .bookings
            .keys()
            .copied()
            .max()
            .expect("booking")
    }

    pub fn refuse_book(&mut self, args: Value, code: ErrorCode, words: &[&str]) {
        let c = self.create(args);
        self.f.refuse(&ADMIN, c, code, words);
    }

    pub fn booking(&self, id: Id) -> &crate::domain::book::Booking {
        &self.f.state.bookings[&id]
    }

    /// Moves the clock to `HH:MM` today.
    pub fn at(&mut self, hhmm: &str) {
        let (h, m) = hhmm.split_once(':').expect("HH:MM");
        let h: i64 = h.parse().expect("hour");
        let m: i64 = m.parse().expect("minute");
        let ms = T0 - 8 * 60 * MIN + (h * 60 + m) * MIN;
        assert!(ms >= self.f.now.ms, "the clock only goes forward");
        self.f.now.ms = ms;
    }
}

fn args_for(b: &Book, start: &str) -> Value {
    json!({"start": format!("{TODAY}T{start}"), "service_ids": [b.svc], "customer_name": "Bea", "phone": "+1 555 0101"})
}

// ---- shifts and blocks ----

#[test]
fn shifts_are_set_replaced_and_cleared_but_never_leave_a_booking_outside() {
    let mut b = Book::new();
    let id = b.book("10:00", Some(b.t1), None);
    let t1 = b.t1;
    b.f.refuse(
        &ADMIN,
        cmd(
            "schedule.set",
            json!({"therapist_id": t1, "date": TODAY, "start": "11:00", "end": "18:00"}),
        ),
        ErrorCode::Conflict,
        &["B-001", "10:00", "outside the shift"],
    );
    b.f.refuse(
        &ADMIN,
        cmd(
            "schedule.set",
            json!({"therapist_id": t1, "date": TODAY, "off": true}),
        ),
        ErrorCode::Conflict,
        &["B-001"],
    );
    for (args, words) in [
        (
            json!({"therapist_id": t1, "date": "26/11/2026", "start": "09:00", "end": "17:00"}),
            "`date`",
        ),
        (
            json!({"therapist_id": t1, "date": TODAY, "start": "17:00", "end": "09:00"}),
            "`end`",
        ),
        (
            json!({"therapist_id": t1, "date": TODAY, "start": "9 am", "end": "17:00"}),
            "`start`",
        ),
        (json!({"therapist_id": t1, "date": TODAY}), "`start`"),
        (
            json!({"therapist_id": 999, "date": TODAY, "start": "09:00", "end": "17:00"}),
            "`therapist_id`",
        ),
    ] {
        b.f.refuse(
            &ADMIN,
            cmd("schedule.set", args),
            ErrorCode::Invalid,
            &[words],
        );
    }
    b.shift(t1, TODAY, "09:00", "19:00");
    assert_eq!(b.f.state.shift(t1, 20261126).expect("shift").start, "09:00");
    b.f.run(
        &ADMIN,
        cmd("booking.cancel", json!({"booking_id": id, "reason": "ill"})),
    );
    b.f.run(
        &ADMIN,
        cmd(
            "schedule.set",
            json!({"therapist_id": t1, "date": TODAY, "off": true}),
        ),
    );
    assert!(b.f.state.shift(t1, 20261126).is_none());
}

#[test]
fn blocks_take_time_out_and_never_cover_a_booking() {
    let mut b = Book::new();
    let (t1, t2, r1) = (b.t1, b.t2, b.r1);
    let me = staff_actor(t1, Role::Therapist);
    b.f.run(&me, cmd("block.create", json!({"therapist_id": t1, "start": "2026-11-26T12:00", "end": "2026-11-26T13:00", "reason": "lunch"})));
    let block = *b.f.state.blocks.keys().max().expect("block");
    b.f.refuse(&me, cmd("block.create", json!({"therapist_id": t2, "start": "2026-11-26T12:00", "end": "2026-11-26T13:00", "reason": "x"})), ErrorCode::Forbidden, &["own"]);
    b.f.refuse(&me, cmd("block.create", json!({"room_id": r1, "start": "2026-11-26T12:00", "end": "2026-11-26T13:00", "reason": "x"})), ErrorCode::Forbidden, &["room"]);
    b.f.refuse(&ADMIN, cmd("block.create", json!({"therapist_id": t1, "room_id": r1, "start": "2026-11-26T12:00", "end": "2026-11-26T13:00", "reason": "x"})), ErrorCode::Invalid, &["either"]);
    b.f.refuse(&ADMIN, cmd("block.create", json!({"therapist_id": t1, "start": "2026-11-26T13:00", "end": "2026-11-26T12:00", "reason": "x"})), ErrorCode::Invalid, &["`end`"]);
    // A booking into the block is refused, naming it.
    b.refuse_book(
        json!({"start": "2026-11-26T11:30", "service_ids": [b.svc], "therapist_id": t1, "customer_name": "Bea", "phone": "1"}),
        ErrorCode::Conflict,
        &["T1", "lunch"],
    );
    // A room's maintenance keeps bookings and walk-ins out of it.
    b.f.run(&ADMIN, cmd("block.create", json!({"room_id": r1, "start": "2026-11-26T08:00", "end": "2026-11-26T20:00", "reason": "new floor"})));
    let id = b.book("15:00", None, None);
    assert_eq!(b.booking(id).room_id, b.r2);
    // A block over an existing booking is refused.
    b.f.refuse(&ADMIN, cmd("block.create", json!({"room_id": b.r2, "start": "2026-11-26T15:30", "end": "2026-11-26T16:00", "reason": "x"})), ErrorCode::Conflict, &["B-001"]);
    b.f.refuse(
        &staff_actor(t2, Role::Therapist),
        cmd("block.remove", json!({"block_id": block})),
        ErrorCode::Forbidden,
        &[],
    );
    b.f.run(&me, cmd("block.remove", json!({"block_id": block})));
}

// ---- booking.create ----

#[test]
fn bad_booking_input_is_invalid_and_names_the_field() {
    let mut b = Book::new();
    let removed = b.f.add_service("Old", 30, 0);
    b.f.run(
        &ADMIN,
        cmd("service.remove", json!({"service_id": removed})),
    );
    let skilled = b.f.add_service_with(ServiceCreate {
        skill: Some("thai".into()),
        ..new_service("Thai", 60, 0)
    });
    let svc = b.svc;
    let base = |start: &str| json!({"start": start, "service_ids": [svc], "customer_name": "Bea", "phone": "+1 555"});
    let with = |mut v: Value, k: &str, x: Value| {
        v[k] = x;
        v
    };
    let cases: Vec<(Value, &str)> = vec![
        (base("2026-11-26T07:00"), "past"),
        (base("2027-06-01T10:00"), "days ahead"),
        (base("2026-11-26T10:05"), "grid"),
        (base("tomorrow at ten"), "`start`"),
        (
            with(base("2026-11-26T10:00"), "service_ids", json!([])),
            "`service_ids`",
        ),
        (
            with(base("2026-11-26T10:00"), "service_ids", json!([999])),
            "`service_ids`",
        ),
        (
            with(base("2026-11-26T10:00"), "service_ids", json!([removed])),
            "`service_ids`",
        ),
        (
            with(
                with(base("2026-11-26T10:00"), "service_ids", json!([skilled])),
                "therapist_id",
                json!(b.t1),
            ),
            "skills",
        ),
        (
            with(base("2026-11-26T10:00"), "therapist_id", json!(999)),
            "`therapist_id`",
        ),
        (
            with(base("2026-11-26T10:00"), "room_id", json!(999)),
            "`room_id`",
        ),
        (
            with(base("2026-11-26T10:00"), "phone", json!("")),
            "`phone`",
        ),
        (
            with(base("2026-11-26T10:00"), "customer_name", json!(" ")),
            "`customer_name`",
        ),
    ];
    for (args, word) in cases {
        b.refuse_book(args, ErrorCode::Invalid, &[word]);
    }
    assert!(b.f.state.bookings.is_empty());
    assert!(Command::decode("booking.create", json!({"start": "2026-11-26T10:00", "service_ids": [svc], "customer_name": "x", "phone": "1", "colour": "red"})).is_err());
}

#[test]
fn bookings_never_overlap_on_a_therapist_or_a_room() {
    let mut b = Book::new();
    let (t1, r1, svc) = (b.t1, b.r1, b.svc);
    let first = b.book("10:00", Some(t1), Some(r1));
    assert_eq!(b.booking(first).number, "B-001");
    assert_eq!(
        (
            b.booking(first).time.as_str(),
            b.booking(first).end_ms - b.booking(first).start_ms
        ),
        ("10:00", 60 * MIN)
    );
    // The therapist is held 10:00–11:00.
    b.refuse_book(json!({"start": "2026-11-26T10:45", "service_ids": [svc], "therapist_id": t1, "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["T1", "B-001", "10:00"]);
    // The room is held until 11:10 (cleanup).
    b.refuse_book(json!({"start": "2026-11-26T11:00", "service_ids": [svc], "room_id": r1, "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["room R1", "B-001"]);
    let next = b.book("11:00", Some(t1), None);
    assert_eq!(b.booking(next).room_id, b.r2, "any room: the free one");
    // Any therapist: the less booked one, so capacity holds (in a third room).
    b.f.add_room("R3", 1);
    let any = b.book("10:00", None, None);
    assert_eq!(b.booking(any).therapist_id, b.t2);
    assert_eq!(b.booking(any).number, "B-003");
    // Both therapists taken at 10:00 now.
    b.refuse_book(args_for(&b, "10:00"), ErrorCode::Conflict, &["not free"]);
    // Outside the shift.
    b.refuse_book(json!({"start": "2026-11-26T19:30", "service_ids": [svc], "therapist_id": t1, "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["08:00–20:00", "outside the shift"]);
    b.refuse_book(json!({"start": "2026-11-28T10:00", "service_ids": [svc], "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["no shift", "2026-11-28"]);
    // Tomorrow's numbers start again.
    let tomorrow = b.book("2026-11-27T10:00", Some(t1), None);
    assert_eq!(b.booking(tomorrow).number, "B-001");
}

#[test]
fn a_retried_booking_gets_the_first_answer() {
    let mut b = Book::new();
    let mut args = args_for(&b, "10:00");
    args["request_id"] = json!("desk-7");
    let c = b.create(args.clone());
    let first = b.f.run(&ADMIN, c);
    let c = b.create(args);
    let again = b.f.run(&ADMIN, c);
    assert!(again.events.is_empty());
    assert_eq!(again.reply["retried"], json!(true));
    assert_eq!(first.reply["booking"]["id"], again.reply["booking"]["id"]);
    assert_eq!(b.f.state.bookings.len(), 1);
}

#[test]
fn today_a_booking_waits_for_the_live_floor() {
    let mut b = Book::new();
    let (t1, t2, r1) = (b.t1, b.t2, b.r1);
    let v = b.f.add_visit("Walk", &[b.svc]);
    b.f.call_to(v, t1, r1);
    b.f.start(v);
    // T1 is in a session until 09:00, R1 until 09:10.
    b.refuse_book(json!({"start": "2026-11-26T08:30", "service_ids": [b.svc], "therapist_id": t1, "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["T1", "session"]);
    b.refuse_book(json!({"start": "2026-11-26T08:30", "service_ids": [b.svc], "therapist_id": t2, "room_id": r1, "customer_name": "Bo", "phone": "1"}), ErrorCode::Conflict, &["room R1", "in use"]);
    let ok = b.book("09:15", Some(t1), Some(r1));
    assert_eq!(b.booking(ok).state, BookingState::Booked);
}

// ---- the other booking commands ----

#[test]
fn move_cancel_check_in_and_no_show_follow_the_state_machine() {
    let mut b = Book::new();
    let (t1, t2) = (b.t1, b.t2);
    let id = b.book("10:00", Some(t1), None);
    // Move: same checks, the number stays on the same day, changes on another.
    b.f.run(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T11:00", "therapist_id": t2}),
        ),
    );
    assert_eq!(
        (b.booking(id).therapist_id, b.booking(id).time.as_str()),
        (t2, "11:00")
    );
    let other = b.book("12:00", Some(t1), None);
    b.f.refuse(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T12:00", "therapist_id": t1}),
        ),
        ErrorCode::Conflict,
        &["T1", "B-002"],
    );
    b.f.run(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": other, "start": "2026-11-27T12:00"}),
        ),
    );
    assert_eq!(
        (b.booking(other).number.as_str(), b.booking(other).date),
        ("B-001", 20261127)
    );
    // Cancel: staff give a reason; a cancelled booking is final.
    b.f.refuse(
        &ADMIN,
        cmd("booking.cancel", json!({"booking_id": other})),
        ErrorCode::Invalid,
        &["`reason`"],
    );
    b.f.run(
        &ADMIN,
        cmd(
            "booking.cancel",
            json!({"booking_id": other, "reason": "called"}),
        ),
    );
    for (name, args) in [
        (
            "booking.cancel",
            json!({"booking_id": other, "reason": "again"}),
        ),
        ("booking.check_in", json!({"booking_id": other})),
        ("booking.no_show", json!({"booking_id": other})),
        (
            "booking.move",
            json!({"booking_id": other, "start": "2026-11-27T13:00"}),
        ),
    ] {
        b.f.refuse(&ADMIN, cmd(name, args), ErrorCode::Conflict, &["cancelled"]);
    }
    // No-show only after the start.
    b.f.refuse(
        &ADMIN,
        cmd("booking.no_show", json!({"booking_id": id})),
        ErrorCode::Conflict,
        &["11:00"],
    );
    // Check in: a visit for the booking's therapist, with its services and link.
    b.at("10:50");
    let done =
        b.f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": id})));
    let visit = b.booking(id).visit_id.expect("visit");
    let v = b.f.visit(visit);
    assert_eq!(
        (v.requested_therapist, v.state),
        (Some(t2), VisitState::Waiting)
    );
    assert_eq!(
        v.customer_token_hash,
        b.booking(id).customer_token_hash,
        "one link"
    );
    assert_eq!(done.reply["visit"]["id"], json!(visit));
    assert_eq!(b.f.state.booking_of_visit(visit).map(|x| x.id), Some(id));
    b.f.refuse(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T12:00"}),
        ),
        ErrorCode::Conflict,
        &["checked in"],
    );
    b.f.refuse(
        &ADMIN,
        cmd("booking.check_in", json!({"booking_id": id})),
        ErrorCode::Conflict,
        &["checked in"],
    );
    // Not on another day.
    let later = b.book("2026-11-27T15:00", None, None);
    b.f.refuse(
        &ADMIN,
        cmd("booking.check_in", json!({"booking_id": later})),
        ErrorCode::Conflict,
        &["on the day"],
    );
}

#[test]
fn a_customer_cancels_their_own_booking_until_the_cut_off() {
    let mut b = Book::new();
    let soon = b.book("18:00", None, None);
    let later = b.book("2026-11-27T18:00", None, None);
    let me = Actor::BookingCustomer { booking_id: later };
    b.f.refuse(
        &me,
        cmd("booking.cancel", json!({"booking_id": soon})),
        ErrorCode::Forbidden,
        &["not your booking"],
    );
    let other = Actor::BookingCustomer { booking_id: soon };
    b.f.refuse(
        &other,
        cmd("booking.cancel", json!({"booking_id": soon})),
        ErrorCode::Conflict,
        &["24 hours"],
    );
    b.f.refuse(
        &Actor::Customer { visit_id: 1 },
        cmd("booking.cancel", json!({"booking_id": later})),
        ErrorCode::Forbidden,
        &[],
    );
    b.f.run(&me, cmd("booking.cancel", json!({"booking_id": later})));
    let bk = b.booking(later);
    assert!(bk.cancelled_by_customer && bk.state == BookingState::Cancelled);
}

#[test]
fn the_no_show_timer_frees_the_time_and_a_late_no_show_may_still_check_in() {
    let mut b = Book::new();
    let id = b.book("09:00", Some(b.t1), Some(b.r1));
    let start = b.booking(id).start_ms;
    // A timer set for another start (the booking moved) does nothing.
    b.f.refuse(
        &Actor::System,
        Command::NoShowDue {
            booking_id: id,
            start_ms: start - MIN,
        },
        ErrorCode::Conflict,
        &[],
    );
    b.at("09:15");
    b.f.run(
        &Actor::System,
        Command::NoShowDue {
            booking_id: id,
            start_ms: start,
        },
    );
    assert_eq!(b.booking(id).state, BookingState::NoShow);
    assert!(!b.booking(id).holds(&b.f.state));
    // Still free: the late customer is checked in after all.
    b.f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": id})));
    assert_eq!(b.booking(id).state, BookingState::CheckedIn);
    // A no-show whose time was given away cannot.
    let gone = b.book("09:30", Some(b.t2), Some(b.r2));
    b.at("09:46");
    b.f.run(&ADMIN, cmd("booking.no_show", json!({"booking_id": gone})));
    let w = b.f.add_visit("Walk", &[b.svc]);
    b.f.run(&ADMIN, call_with(Some(w), Some(b.t2), Some(b.r2)));
    b.f.refuse(
        &ADMIN,
        cmd("booking.check_in", json!({"booking_id": gone})),
        ErrorCode::Conflict,
        &["given away"],
    );
}

// ---- walk-ins and the book ----

#[test]
fn a_walk_in_never_takes_a_therapist_or_room_the_book_needs() {
    let mut b = Book::new();
    let (t1, t2, r1, r2) = (b.t1, b.t2, b.r1, b.r2);
    // T1 is head of the rotation (equal turns, free longer) and has a
    // booking at 09:30 in R1; it is 08:45: a 60-min walk-in would run into it.
    b.book("09:30", Some(t1), Some(r1));
    b.at("08:45");
    let w = b.f.add_visit("Walk", &[b.svc]);
    let head = crate::domain::rotation::eligible(&b.f.state, b.f.visit(w), b.f.now.day)[0].id;
    assert_eq!(head, t1);
    let done = b.f.run(&ADMIN, call_with(None, None, None));
    let v = b.f.visit(w);
    assert_eq!(
        (v.therapist, v.room),
        (Some(t2), Some(r2)),
        "T1 and R1 skipped"
    );
    assert_eq!(done.reply["skipped"][0]["therapist_id"], json!(t1));
    assert!(done.reply["skipped"][0]["reason"]
        .as_str()
        .expect("why")
        .contains("B-001"));
    assert_eq!(
        b.f.turns(t1),
        0.0,
        "the skipped therapist keeps their place"
    );
    // Naming them is refused with the reason.
    let w2 = b.f.add_visit("Walk 2", &[b.svc]);
    b.f.refuse(
        &ADMIN,
        call_with(Some(w2), Some(t1), None),
        ErrorCode::Conflict,
        &["T1 is booked", "B-001"],
    );
    // With nobody else free, the call says why.
    b.f.refuse(
        &ADMIN,
        call_with(Some(w2), None, None),
        ErrorCode::Conflict,
        &[],
    );
    // A short walk-in that is done in time (15 min + 5 min buffer) fits.
    let quick = b.f.add_service("Quick", 15, 0);
    let w3 = b.f.add_visit("Quick", &[quick]);
    b.at("09:05");
    b.f.run(&ADMIN, call_with(Some(w3), Some(t1), Some(r1)));
}

#[test]
fn a_checked_in_booking_is_called_at_its_time_before_earlier_walk_ins() {
    let mut b = Book::new();
    let t1 = b.t1;
    let id = b.book("10:00", Some(t1), Some(b.r1));
    b.at("09:00");
    let walk = b.f.add_visit("Early walk-in", &[b.svc]);
    // T2 takes the walk-in; T1 is kept for the booking.
    b.f.run(&ADMIN, call_with(Some(walk), None, None));
    assert_eq!(b.f.visit(walk).therapist, Some(b.t2));
    let walk2 = b.f.add_visit("Second walk-in", &[b.svc]);
    b.at("09:40");
    b.f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": id})));
    let booked = b.booking(id).visit_id.expect("visit");
    // Before its time the booked visit waits and "next" takes nobody for it.
    b.f.refuse(
        &ADMIN,
        call_with(None, Some(t1), None),
        ErrorCode::Conflict,
        &[],
    );
    b.at("10:00");
    b.f.run(&ADMIN, call_with(None, None, None));
    let v = b.f.visit(booked);
    assert_eq!(
        (v.state, v.therapist, v.room),
        (VisitState::Called, Some(t1), Some(b.r1))
    );
    assert_eq!(
        b.f.turns(t1),
        0.0,
        "a booked session is not a rotation turn"
    );
    assert_eq!(b.f.visit(walk2).state, VisitState::Waiting);
}

#[test]
fn a_booked_visit_waits_for_its_late_therapist_and_the_desk_is_told() {
    let mut b = Book::new();
    let (t1, r1) = (b.t1, b.r1);
    let id = b.book("10:00", Some(t1), Some(r1));
    b.at("08:30");
    // A short session that runs late into the booking's time.
    let quick = b.f.add_service("Quick", 30, 0);
    let w = b.f.add_visit("Walk", &[quick]);
    b.f.run(&ADMIN, call_with(Some(w), Some(t1), Some(b.r2)));
    b.f.start(w);
    b.f.run(&ADMIN, extend(w, 120));
    b.at("09:50");
    b.f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": id})));
    b.at("10:00");
    let done =
        b.f.run(&Actor::System, Command::BookingDue { booking_id: id });
    assert!(
        matches!(&done.events[0], Event::BookingLate { message, .. } if message.contains("T1 is still busy"))
    );
    assert!(b.booking(id).late_alerted);
    b.f.refuse(
        &Actor::System,
        Command::BookingDue { booking_id: id },
        ErrorCode::Conflict,
        &[],
    );
    // Once T1 is free, "next" gives them their booked customer.
    b.f.finish(w);
    b.f.run(&ADMIN, call_with(None, None, None));
    let visit = b.booking(id).visit_id.expect("visit");
    assert_eq!(b.f.visit(visit).therapist, Some(t1));
}

// ---- availability ----

#[test]
fn availability_lists_the_starts_booking_would_accept() {
    let mut b = Book::new();
    let (t1, svc) = (b.t1, b.svc);
    b.shift(b.t2, TODAY, "08:00", "09:00");
    b.book("10:00", Some(t1), None);
    let done = b.f.run(
        &ADMIN,
        cmd(
            "booking.availability",
            json!({"date": TODAY, "service_ids": [svc]}),
        ),
    );
    let slots = done.reply["slots"].as_array().expect("slots").clone();
    let times: Vec<&str> = slots
        .iter()
        .map(|s| s["time"].as_str().expect("time"))
        .collect();
    assert_eq!(times.first(), Some(&"08:00"));
    // T1 is booked 10:00–11:00 and T2 ends at 09:00: nothing from 09:15 to 10:45.
    for t in ["09:15", "09:30", "09:45", "10:00", "10:45"] {
        assert!(!times.contains(&t), "{t} offered: {times:?}");
    }
    assert!(times.contains(&"09:00") && times.contains(&"11:00") && times.contains(&"19:00"));
    assert!(!times.contains(&"19:15"), "would end after the shift");
    // Every slot is accepted by booking.create with what it names.
    for s in slots.iter().step_by(7) {
        let args = json!({"start": s["start"], "service_ids": [svc], "therapist_id": s["therapist_id"], "room_id": s["room_id"], "customer_name": "Slot", "phone": "1"});
        let c = b.create(args);
        b.f.run(&ADMIN, c);
    }
}

// ---- time ----

#[test]
fn a_start_in_the_daylight_saving_gap_is_invalid() {
    let mut b = Book::new();
    b.f.rules.tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("tz");
    b.f.rules.booking_horizon_days = 400;
    let t1 = b.t1;
    b.shift(t1, "2027-03-28", "00:00", "23:00");
    b.refuse_book(json!({"start": "2027-03-28T02:30", "service_ids": [b.svc], "customer_name": "Bo", "phone": "1"}), ErrorCode::Invalid, &["does not exist"]);
    let id = b.book("2027-03-28T03:00", Some(t1), None);
    // The shift is 22 hours long that day (midnight to 23:00 with an hour skipped).
    let s = b.f.state.shift(t1, 20270328).expect("shift");
    assert_eq!(s.end_ms - s.start_ms, 22 * 60 * MIN);
    assert_eq!(b.booking(id).time, "03:00");
    assert_eq!(
        b.booking(id).start_ms - s.start_ms,
        2 * 60 * MIN,
        "02:00 does not exist"
    );
}

// ---- who sees what ----

#[test]
fn views_of_a_booking_follow_who_sees_what() {
    let mut b = Book::new();
    let id = b.book("10:00", Some(b.t1), None);
    let bk = b.booking(id).clone();
    let now = b.f.now;
    let st = &b.f.state;
    let text = |v: Option<Value>| v.map(|v| v.to_string()).unwrap_or_default();
    let office = text(crate::domain::book::views::booking_for(
        Viewer::Office,
        &bk,
        st,
        now,
    ));
    assert!(office.contains("Bea Booked") && office.contains("allergic"));
    let own = text(crate::domain::book::views::booking_for(
        Viewer::Therapist(b.t1),
        &bk,
        st,
        now,
    ));
    assert!(own.contains("allergic") && own.contains("555"));
    let other = text(crate::domain::book::views::booking_for(
        Viewer::Therapist(b.t2),
        &bk,
        st,
        now,
    ));
    assert!(!other.contains("allergic") && !other.contains("555"));
    let monitor = text(crate::domain::book::views::booking_for(
        Viewer::Monitor,
        &bk,
        st,
        now,
    ));
    assert!(monitor.contains("B-001") && !monitor.contains("Bea"));
    let mine = text(crate::domain::book::views::booking_for(
        Viewer::BookingCustomer(id),
        &bk,
        st,
        now,
    ));
    assert!(mine.contains("Bea Booked") && !mine.contains("allergic") && !mine.contains("token"));
    assert!(
        crate::domain::book::views::booking_for(Viewer::BookingCustomer(id + 1), &bk, st, now)
            .is_none()
    );
    assert!(crate::domain::book::views::booking_for(Viewer::Customer(1), &bk, st, now).is_none());
    // Snapshots: the monitor's book has no names; a booking customer's only theirs.
    let snap = views::snapshot(Viewer::Monitor, st, now).to_string();
    assert!(snap.contains("B-001") && !snap.contains("Bea"));
    let snap = views::snapshot(Viewer::BookingCustomer(id), st, now);
    assert_eq!(snap["booking"]["number"], "B-001");
    assert!(!snap.to_string().contains("allergic"));
    // booking.list for a therapist: only their own.
    let me = staff_actor(b.t2, Role::Therapist);
    let list = b.f.run(&me, cmd("booking.list", json!({"date": TODAY})));
    assert_eq!(list.reply["bookings"].as_array().map(Vec::len), Some(0));
    b.f.refuse(
        &me,
        cmd("booking.list", json!({"date": TODAY, "therapist_id": b.t1})),
        ErrorCode::Forbidden,
        &[],
    );
    let list = b.f.run(&ADMIN, cmd("booking.list", json!({"date": TODAY})));
    assert_eq!(list.reply["bookings"][0]["customer_name"], "Bea Booked");
}

#[test]
fn etas_and_free_in_count_the_book() {
    let mut b = Book::new();
    let (t1, t2, r1) = (b.t1, b.t2, b.r1);
    // T2 goes on a break: T1 is the only one on the floor, booked at 08:30.
    b.f.run(&ADMIN, take_break(t2));
    b.book("08:30", Some(t1), Some(r1));
    let w = b.f.add_visit("Walk", &[b.svc]);
    let q = views::queue(&b.f.state, b.f.now);
    let eta = q.iter().find(|e| e.visit_id == w).and_then(|e| e.eta_min);
    assert_eq!(eta, Some(90), "after the booking (08:30–09:30), not now");
    // R1 is free now but booked from 08:30 (+10 min cleanup): free in 100 min.
    let room = b.f.room(r1);
    assert_eq!(
        views::room_free_in_min(room, &b.f.state, b.f.now.ms),
        Some(100)
    );
    assert_eq!(
        views::floor_free_in_min(room, &b.f.state, b.f.now.ms),
        Some(0)
    );
    // Moving the booking within the next half hour is not blocked by itself.
    let id = *b.f.state.bookings.keys().max().expect("booking");
    b.f.run(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T08:45"}),
        ),
    );
}

#[test]
fn a_move_keeps_the_room_when_it_is_free_and_finds_another_when_not() {
    let mut b = Book::new();
    let (t1, t2, r1, r2) = (b.t1, b.t2, b.r1, b.r2);
    let id = b.book("10:00", Some(t1), Some(r1));
    b.book("12:15", Some(t2), Some(r1));
    b.f.run(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T11:00"}),
        ),
    );
    assert_eq!(b.booking(id).room_id, r1, "R1 is free at 11:00");
    b.f.run(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T12:00"}),
        ),
    );
    assert_eq!(
        (b.booking(id).room_id, b.booking(id).therapist_id),
        (r2, t1),
        "R1 is taken at 12:00"
    );
    // A room named on purpose is not swapped.
    b.f.refuse(
        &ADMIN,
        cmd(
            "booking.move",
            json!({"booking_id": id, "start": "2026-11-26T12:30", "room_id": r1}),
        ),
        ErrorCode::Conflict,
        &["room R1"],
    );
}

#[test]
fn a_booking_just_after_midnight_may_be_checked_in_the_evening_before() {
    let mut b = Book::new();
    let t1 = b.t1;
    b.shift(t1, "2026-11-27", "00:00", "20:00");
    let id = b.book("2026-11-27T00:30", Some(t1), None);
    b.at("21:00");
    b.f.refuse(
        &ADMIN,
        cmd("booking.check_in", json!({"booking_id": id})),
        ErrorCode::Conflict,
        &["on the day"],
    );
    b.at("23:00");
    b.f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": id})));
    assert_eq!(b.booking(id).state, BookingState::CheckedIn);
}
