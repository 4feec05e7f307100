//! The visit state machine: create, call, start, extend, finish, undo,
//! leave, void, and the cleanup and overtime timers.

use super::harness::*;
use crate::domain::rotation::Turns;
use crate::domain::state::Presence;
use crate::domain::state::RoomStatus;
use crate::domain::state::VisitState::{self, *};
use crate::domain::{Actor, Command, ErrorCode::*, Event, Role};

/// A floor with rooms, services and two therapists clocked in.
struct Spa {
    f: Floor,
    thai: u64,
    facial: u64,
    lotus: u64,
    jade: u64,
    anna: u64,
    ben: u64,
}

fn spa() -> Spa {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 15);
    let facial = f.add_service("Facial", 30, 0);
    let lotus = f.add_room("Lotus", 1);
    f.advance(1);
    let jade = f.add_room("Jade", 1);
    let anna = f.add_therapist("Anna", &[]);
    f.advance(1);
    let ben = f.add_therapist("Ben", &[]);
    f.advance(1);
    Spa {
        f,
        thai,
        facial,
        lotus,
        jade,
        anna,
        ben,
    }
}

/// One visit in each state of the machine; returns (floor, [(state, id)]).
fn one_in_each_state() -> (Spa, Vec<(VisitState, u64)>) {
    let mut s = spa();
    let f = &mut s.f;
    let cleo = f.add_therapist("Cleo", &[]);
    let suite = f.add_room("Suite", 1);
    let waiting = f.add_visit("Wait", &[s.thai]);
    let called = f.add_visit("Call", &[s.thai]);
    let in_service = f.add_visit("Serve", &[s.thai]);
    let awaiting = f.add_visit("Pay", &[s.facial]);
    let left = f.add_visit("Gone", &[s.thai]);
    let voided = f.add_visit("Void", &[s.thai]);
    f.call_to(awaiting, cleo, suite);
    f.start(awaiting);
    f.finish(awaiting);
    f.call_to(called, s.anna, s.lotus);
    f.call_to(in_service, s.ben, s.jade);
    f.start(in_service);
    f.run(&ADMIN, leave(left, "tired of waiting"));
    f.run(&ADMIN, void(voided, "double entry"));
    let all = vec![
        (Waiting, waiting),
        (Called, called),
        (InService, in_service),
        (AwaitingPayment, awaiting),
        (Left, left),
        (Voided, voided),
    ];
    for (st, id) in &all {
        assert_eq!(f.visit_state(*id), *st);
    }
    (s, all)
}

#[test]
fn create_visits_with_daily_ticket_numbers() {
    let mut s = spa();
    let mut create = s.f.new_visit(" Carla ", &[s.thai, s.facial]);
    create.phone = Some(" +1 555 0101 ".into());
    create.notes = Some("sore shoulder".into());
    let d = s.f.run(&ADMIN, Command::VisitCreate(create));
    let v1 = s.f.state.counters.next_id - 1;
    let v = s.f.visit(v1).clone();
    assert_eq!(v.number, "A-001");
    assert_eq!(v.day, DAY1);
    assert_eq!(v.customer_name, "Carla");
    assert_eq!(v.phone.as_deref(), Some("+1 555 0101"));
    assert_eq!(v.notes.as_deref(), Some("sore shoulder"));
    assert_eq!(v.state, Waiting);
    assert_eq!(v.services_cents, 10_000);
    assert_eq!(v.service_minutes, 90);
    assert_eq!(v.cleanup_min, 15, "the longest cleanup of its services");
    assert_eq!(v.created_at, s.f.now.ms);
    assert!(!v.customer_token_hash.is_empty());
    assert_eq!(d.reply["visit"]["number"], "A-001");
    assert!(!d.reply.to_string().contains(&v.customer_token_hash));

    let numbers: Vec<String> = (0..11)
        .map(|i| {
            let id = s.f.add_visit(&format!("Guest {i}"), &[s.facial]);
            s.f.visit(id).number.clone()
        })
        .collect();
    assert_eq!(numbers[0], "A-002");
    assert_eq!(numbers[10], "A-012");

    // After the spa's local midnight the numbers start again.
    s.f.next_day();
    let id = s.f.add_visit("Early bird", &[s.facial]);
    assert_eq!(s.f.visit(id).number, "A-001");
    assert_eq!(s.f.visit(id).day, DAY1 + 1);
    let id = s.f.add_visit("Second", &[s.facial]);
    assert_eq!(s.f.visit(id).number, "A-002");
    // A refused create does not use a number.
    let bad = s.f.new_visit("", &[s.facial]);
    s.f.refuse(&ADMIN, Command::VisitCreate(bad), Invalid, &[]);
    let id = s.f.add_visit("Third", &[s.facial]);
    assert_eq!(s.f.visit(id).number, "A-003");
}

#[test]
fn ticket_numbers_go_past_999() {
    let mut s = spa();
    for _ in 0..999 {
        s.f.check_touched = false;
        let create = s.f.new_visit("G", &[s.facial]);
        s.f.run(&ADMIN, Command::VisitCreate(create));
    }
    s.f.check_touched = true;
    let id = s.f.add_visit("Last", &[s.facial]);
    assert_eq!(s.f.visit(id).number, "A-1000");
}

#[test]
fn create_refusals_name_the_field() {
    let mut s = spa();
    let cashier = s.f.add_staff("Cass", Role::Cashier, &[]);
    let massage_skill = {
        let mut c = new_service("Hot stone", 90, 10);
        c.skill = Some("hot-stone".into());
        s.f.add_service_with(c)
    };
    let f = &mut s.f;
    let mut cases: Vec<(
        crate::domain::command::VisitCreate,
        crate::domain::ErrorCode,
        Vec<&str>,
    )> = Vec::new();
    let mut c = f.new_visit("", &[s.thai]);
    cases.push((c.clone(), Invalid, vec!["`customer_name`"]));
    c.customer_name = "x".repeat(65);
    cases.push((c.clone(), Invalid, vec!["`customer_name`"]));
    let mut c = f.new_visit("Vera", &[]);
    cases.push((c.clone(), Invalid, vec!["`service_ids`"]));
    c.service_ids = vec![s.thai; 9];
    cases.push((c.clone(), Invalid, vec!["`service_ids`", "8"]));
    c.service_ids = vec![s.thai, 999];
    cases.push((c.clone(), NotFound, vec!["999"]));
    let mut c = f.new_visit("Vera", &[s.thai]);
    c.phone = Some("5".repeat(33));
    cases.push((c.clone(), Invalid, vec!["`phone`"]));
    let mut c = f.new_visit("Vera", &[s.thai]);
    c.notes = Some("n".repeat(501));
    cases.push((c.clone(), Invalid, vec!["`notes`"]));
    let mut c = f.new_visit("Vera", &[massage_skill]);
    c.requested_therapist_id = Some(s.anna);
    cases.push((c.clone(), Invalid, vec!["Anna", "hot-stone"]));
    let mut c = f.new_visit("Vera", &[s.thai]);
    c.requested_therapist_id = Some(cashier);
    cases.push((
        c.clone(),
        Invalid,
        vec!["`requested_therapist_id`", "not an active therapist"],
    ));
    c.requested_therapist_id = Some(999);
    cases.push((c.clone(), NotFound, vec!["999"]));
    let mut c = f.new_visit("Vera", &[s.thai]);
    c.token_hash.clear();
    cases.push((c, Invalid, vec!["token"]));
    for (c, code, words) in cases {
        f.refuse(&ADMIN, Command::VisitCreate(c), code, &words);
    }
    // Eight services, empty phone and notes are fine.
    let mut c = f.new_visit("Vera", &[s.facial; 8]);
    c.phone = Some("  ".into());
    c.notes = Some(String::new());
    let id = f.add_visit_with(c);
    assert_eq!(
        (f.visit(id).phone.clone(), f.visit(id).notes.clone()),
        (None, None)
    );
    assert_eq!(f.visit(id).service_minutes, 240);
}

#[test]
fn call_start_extend_finish() {
    let mut s = spa();
    let v = s.f.add_visit("Carla", &[s.thai]);
    s.f.advance(4);
    let d = s.f.run(&ADMIN, call_visit(v));
    let called_at = s.f.now.ms;
    assert_eq!(d.reply["visit"]["state"], "called");
    let visit = s.f.visit(v).clone();
    assert_eq!(visit.state, Called);
    assert_eq!(visit.therapist, Some(s.anna), "Anna clocked in first");
    assert_eq!(visit.room, Some(s.lotus), "the room free the longest");
    assert_eq!(visit.called_at, Some(called_at));
    assert_eq!(visit.turn_taken, Turns::ONE);
    let anna = s.f.staff(s.anna);
    assert_eq!(anna.presence, Presence::Called);
    assert_eq!(anna.current_visit, Some(v));
    assert_eq!(anna.turns_on(DAY1), Turns::ONE);
    let room = s.f.room(s.lotus);
    assert_eq!(room.status, RoomStatus::Held);
    assert_eq!(room.occupants, vec![v]);
    assert_eq!(room.status_since, called_at);

    s.f.advance(2);
    s.f.run(&ADMIN, start(v));
    let started = s.f.now.ms;
    let visit = s.f.visit(v).clone();
    assert_eq!(visit.state, InService);
    assert_eq!(visit.started_at, Some(started));
    assert_eq!(visit.planned_end, Some(started + 60 * MIN));
    assert_eq!(s.f.presence(s.anna), Presence::InSession);
    assert_eq!(s.f.room_status(s.lotus), RoomStatus::Occupied);

    s.f.advance(30);
    s.f.run(&ADMIN, extend(v, 15));
    let visit = s.f.visit(v).clone();
    assert_eq!(visit.planned_end, Some(started + 75 * MIN));
    assert_eq!(visit.extended_min, 15);
    s.f.run(&ADMIN, extend(v, 5));
    assert_eq!(s.f.visit(v).planned_end, Some(started + 80 * MIN));
    assert_eq!(s.f.visit(v).extended_min, 20);

    s.f.advance(50);
    s.f.run(&ADMIN, finish(v));
    let now = s.f.now.ms;
    let visit = s.f.visit(v).clone();
    assert_eq!(visit.state, AwaitingPayment);
    assert_eq!(visit.finished_at, Some(now));
    let anna = s.f.staff(s.anna);
    assert_eq!(anna.presence, Presence::Available);
    assert_eq!(anna.current_visit, None);
    assert_eq!(anna.available_since, Some(now));
    let room = s.f.room(s.lotus);
    assert_eq!(room.status, RoomStatus::Cleaning);
    assert_eq!(room.cleaning_until, Some(now + 15 * MIN));
    assert_eq!(room.cleaning_ms, 15 * MIN);
    assert!(room.occupants.is_empty());

    // The cleanup timer makes it available.
    s.f.advance(15);
    s.f.run(&Actor::System, Command::CleanupElapsed { room_id: s.lotus });
    assert_eq!(s.f.room_status(s.lotus), RoomStatus::Available);
}

#[test]
fn finishing_a_service_without_cleanup_frees_the_room_at_once() {
    let mut s = spa();
    let v = s.f.add_visit("Carla", &[s.facial]);
    let (_, room) = s.f.serve(v);
    let room = s.f.room(room);
    assert_eq!(room.status, RoomStatus::Available);
    assert_eq!((room.cleaning_until, room.cleaning_ms), (None, 0));
    s.f.refuse(
        &Actor::System,
        Command::CleanupElapsed { room_id: room.id },
        Conflict,
        &[],
    );
}

#[test]
fn extend_refusals() {
    let (mut s, all) = one_in_each_state();
    let in_service = all[2].1;
    for minutes in [0, 121] {
        s.f.refuse(&ADMIN, extend(in_service, minutes), Invalid, &["`minutes`"]);
    }
    s.f.run(&ADMIN, extend(in_service, 120));
    s.f.run(&ADMIN, extend(in_service, 1));
    for (st, id) in &all {
        if *st != InService {
            s.f.refuse(&ADMIN, extend(*id, 10), Conflict, &["cannot be extended"]);
        }
    }
    s.f.refuse(&ADMIN, extend(999, 10), NotFound, &["999"]);
}

/// Every visit command from every visit state: accepted or `conflict`.
#[test]
fn every_visit_command_in_every_state() {
    type Make = fn(u64) -> Command;
    let commands: [(&str, Make); 7] = [
        ("call", call_visit),
        ("start", start),
        ("extend", |v| extend(v, 10)),
        ("finish", finish),
        ("undo", undo),
        ("leave", |v| leave(v, "had to go")),
        ("void", |v| void(v, "mistake")),
    ];
    let want = |st: VisitState, cmd: &str| -> Option<VisitState> {
        match (st, cmd) {
            (Waiting, "call") => Some(Called),
            (Called, "start") => Some(InService),
            (InService, "extend") => Some(InService),
            (InService, "finish") => Some(AwaitingPayment),
            (Called, "undo") => Some(Waiting),
            (InService, "undo") => Some(Called),
            (Waiting | Called, "leave") => Some(Left),
            (Waiting | Called | InService | AwaitingPayment, "void") => Some(Voided),
            _ => None,
        }
    };
    for (name, make) in commands {
        for index in 0..6 {
            let (mut s, all) = one_in_each_state();
            // A free therapist and room so that a call could succeed.
            s.f.add_therapist("Dina", &[]);
            s.f.add_room("Spare", 1);
            let (st, id) = all[index];
            match want(st, name) {
                Some(to) => {
                    s.f.run(&ADMIN, make(id));
                    assert_eq!(s.f.visit_state(id), to, "{name} from {st:?}");
                }
                None => {
                    s.f.refuse(&ADMIN, make(id), Conflict, &["A-00"]);
                }
            }
        }
    }
    // Unknown visits.
    let (mut s, _) = one_in_each_state();
    for (_, make) in commands {
        s.f.refuse(&ADMIN, make(999), NotFound, &["999"]);
    }
}

#[test]
fn undo_a_call_frees_room_and_therapist_and_gives_the_turn_back() {
    let mut s = spa();
    let v = s.f.add_visit("Carla", &[s.thai]);
    let anna_before = s.f.staff(s.anna).clone();
    let (t, room) = s.f.call(v);
    assert_eq!(t, s.anna);
    s.f.advance(1);
    s.f.run(&ADMIN, undo(v));
    let visit = s.f.visit(v);
    assert_eq!(visit.state, Waiting);
    assert_eq!(
        (visit.therapist, visit.room, visit.called_at),
        (None, None, None)
    );
    assert_eq!(visit.turn_taken, Turns::ZERO);
    let anna = s.f.staff(s.anna);
    assert_eq!(anna.presence, Presence::Available);
    assert_eq!(anna.current_visit, None);
    assert_eq!(anna.turns_on(DAY1), Turns::ZERO);
    assert_eq!(anna.available_since, anna_before.available_since);
    assert_eq!(anna.clocked_in_at, anna_before.clocked_in_at);
    assert_eq!(s.f.room_status(room), RoomStatus::Available);
    assert!(s.f.room(room).occupants.is_empty());
    // Anna is head of the rotation again and takes the visit once more.
    assert_eq!(s.f.call(v).0, s.anna);
}

#[test]
fn undo_a_start_within_the_grace_period_only() {
    let mut s = spa();
    let grace = s.f.rules.undo_start_grace_ms;
    let v = s.f.add_visit("Carla", &[s.thai]);
    let (anna, room) = s.f.call(v);
    s.f.start(v);
    s.f.run(&ADMIN, extend(v, 10));
    s.f.advance_ms(grace); // exactly at the limit: still allowed
    s.f.run(&ADMIN, undo(v));
    let visit = s.f.visit(v);
    assert_eq!(visit.state, Called);
    assert_eq!((visit.started_at, visit.planned_end), (None, None));
    assert_eq!(visit.extended_min, 0);
    assert_eq!(visit.therapist, Some(anna));
    assert_eq!(s.f.presence(anna), Presence::Called);
    assert_eq!(s.f.room_status(room), RoomStatus::Held);
    assert_eq!(
        s.f.turns(anna),
        1.0,
        "undoing a start keeps the call's turn"
    );

    s.f.start(v);
    s.f.advance_ms(grace + 1);
    s.f.refuse(&ADMIN, undo(v), Conflict, &["A-001", "within 2 min"]);
    // A clock that jumped back counts as no time passed.
    s.f.advance_ms(-(grace + 1) - 10 * MIN);
    s.f.run(&ADMIN, undo(v));
    assert_eq!(s.f.visit_state(v), Called);
}

#[test]
fn leave_from_the_queue_and_after_a_call() {
    let mut s = spa();
    let waiting = s.f.add_visit("Wanda", &[s.thai]);
    let called = s.f.add_visit("Cora", &[s.thai]);
    let (anna, room) = s.f.call(called);
    s.f.refuse(&ADMIN, leave(waiting, " "), Invalid, &["`reason`"]);
    s.f.refuse(
        &ADMIN,
        leave(waiting, &"r".repeat(201)),
        Invalid,
        &["`reason`"],
    );
    s.f.advance(3);
    s.f.run(&ADMIN, leave(waiting, "tired of waiting"));
    let v = s.f.visit(waiting);
    assert_eq!(v.state, Left);
    assert_eq!(v.reason.as_deref(), Some("tired of waiting"));
    assert_eq!(v.ended_at, Some(s.f.now.ms));

    s.f.run(&ADMIN, leave(called, "phone call"));
    assert_eq!(s.f.visit_state(called), Left);
    assert_eq!(s.f.presence(anna), Presence::Available);
    assert_eq!(s.f.staff(anna).current_visit, None);
    assert_eq!(s.f.turns(anna), 0.0, "an unserved call uses no turn");
    assert_eq!(s.f.room_status(room), RoomStatus::Available);
    assert!(s.f.room(room).occupants.is_empty());
    // A cashier may; a therapist may not.
    let v3 = s.f.add_visit("Xena", &[s.thai]);
    let cashier = s.f.add_staff("Cass", Role::Cashier, &[]);
    let ben = staff_actor(s.ben, Role::Therapist);
    s.f.refuse(&ben, leave(v3, "x"), Forbidden, &[]);
    let cass = s.f.as_staff(cashier);
    s.f.run(&cass, leave(v3, "x"));
}

#[test]
fn void_in_every_open_state() {
    let (mut s, all) = one_in_each_state();
    let (called, in_service) = (all[1].1, all[2].1);
    s.f.refuse(&ADMIN, void(called, ""), Invalid, &["`reason`"]);
    s.f.run(&ADMIN, void(called, "entered twice"));
    assert_eq!(s.f.presence(s.anna), Presence::Available);
    assert_eq!(s.f.room_status(s.lotus), RoomStatus::Available);
    assert_eq!(s.f.turns(s.anna), 0.0);
    s.f.run(&ADMIN, void(in_service, "wrong customer"));
    let v = s.f.visit(in_service);
    assert_eq!(v.state, Voided);
    assert_eq!(v.reason.as_deref(), Some("wrong customer"));
    assert_eq!(s.f.presence(s.ben), Presence::Available);
    assert_eq!(
        s.f.turns(s.ben),
        1.0,
        "a session that happened keeps its turn"
    );
    let jade = s.f.room(s.jade);
    assert_eq!(
        jade.status,
        RoomStatus::Cleaning,
        "a used room needs cleaning"
    );
    assert_eq!(jade.cleaning_until, None, "untimed");
    // An admin voids.
    let cashier = s.f.add_staff("Cass", Role::Cashier, &[]);
    let cass = s.f.as_staff(cashier);
    // A cashier voids only with an admin's PIN at the counter.
    s.f.refuse(
        &cass,
        void(all[0].1, "x"),
        Forbidden,
        &["needs an admin", "PIN"],
    );
    let ada = s.f.add_staff("Ada", Role::Admin, &[]);
    let ada = s.f.as_staff(ada);
    s.f.run(&ada, void(all[0].1, "x"));
}

#[test]
fn overtime_is_flagged_once_and_extending_clears_it() {
    let mut s = spa();
    let v = s.f.add_visit("Carla", &[s.thai]);
    let (_, room) = s.f.call(v);
    let overtime = |end| Command::OvertimeReached {
        visit_id: v,
        planned_end: end,
    };
    s.f.refuse(&Actor::System, overtime(0), Conflict, &[]);
    s.f.start(v);
    let end = s.f.visit(v).planned_end.unwrap();
    s.f.advance(61);
    s.f.refuse(&Actor::System, overtime(end - 1), Conflict, &[]);
    let seq = s.f.state.seq();
    s.f.run(&Actor::System, overtime(end));
    assert!(matches!(
        s.f.events_since(seq)[..],
        [Event::VisitOvertime { visit_id }] if *visit_id == v
    ));
    assert!(s.f.visit(v).overtime);
    assert!(s.f.room(room).overtime);
    // Only once.
    s.f.refuse(
        &Actor::System,
        overtime(end),
        Conflict,
        &["already flagged"],
    );
    // Extending clears it; the old timer is stale.
    s.f.run(&ADMIN, extend(v, 10));
    assert!(!s.f.visit(v).overtime);
    assert!(!s.f.room(room).overtime);
    s.f.refuse(&Actor::System, overtime(end), Conflict, &[]);
    // The new planned end can run over again, once.
    let end2 = s.f.visit(v).planned_end.unwrap();
    assert_eq!(end2, end + 10 * MIN);
    s.f.advance(11);
    s.f.run(&Actor::System, overtime(end2));
    assert!(s.f.room(room).overtime);
    s.f.refuse(&Actor::System, overtime(end2), Conflict, &[]);
    // Finishing clears it as well.
    s.f.finish(v);
    assert!(!s.f.visit(v).overtime);
    assert!(!s.f.room(room).overtime);
    s.f.refuse(&Actor::System, overtime(end2), Conflict, &[]);
    s.f.refuse(
        &Actor::System,
        Command::OvertimeReached {
            visit_id: 999,
            planned_end: 0,
        },
        NotFound,
        &[],
    );
}

#[test]
fn undoing_a_start_clears_overtime() {
    let mut s = spa();
    s.f.rules.undo_start_grace_ms = 120 * MIN;
    let v = s.f.add_visit("Carla", &[s.thai]);
    let (_, room) = s.f.call(v);
    s.f.start(v);
    let end = s.f.visit(v).planned_end.unwrap();
    s.f.advance(61);
    s.f.run(
        &Actor::System,
        Command::OvertimeReached {
            visit_id: v,
            planned_end: end,
        },
    );
    s.f.run(&ADMIN, undo(v));
    assert!(!s.f.visit(v).overtime);
    assert!(!s.f.room(room).overtime);
    assert_eq!(s.f.room_status(room), RoomStatus::Held);
}

#[test]
fn a_double_room_holds_two_sessions() {
    let mut s = spa();
    let suite = s.f.add_room("Couples suite", 2);
    // Fill the single rooms with out-of-service so the suite is used.
    s.f.run(
        &ADMIN,
        set_status(s.lotus, RoomStatus::OutOfService, Some("x")),
    );
    s.f.run(
        &ADMIN,
        set_status(s.jade, RoomStatus::OutOfService, Some("x")),
    );
    let cleo = s.f.add_therapist("Cleo", &[]);
    let v1 = s.f.add_visit("One", &[s.thai]);
    let v2 = s.f.add_visit("Two", &[s.facial]);
    let v3 = s.f.add_visit("Three", &[s.thai]);
    assert_eq!(s.f.call(v1).1, suite);
    // A held double room is no longer "available": name it to share it.
    s.f.refuse(&ADMIN, call_visit(v2), Conflict, &["no room is free"]);
    s.f.run(&ADMIN, call_with(Some(v2), None, Some(suite)));
    assert_eq!(s.f.room(suite).occupants, vec![v1, v2]);
    assert_eq!(s.f.room_status(suite), RoomStatus::Held);
    s.f.start(v2);
    assert_eq!(s.f.room_status(suite), RoomStatus::Occupied);
    // Full.
    s.f.refuse(
        &ADMIN,
        call_with(Some(v3), Some(cleo), Some(suite)),
        Conflict,
        &["Couples suite", "no space"],
    );
    // One finishes (no cleanup): the other still holds the room.
    s.f.finish(v2);
    assert_eq!(s.f.room(suite).occupants, vec![v1]);
    assert_eq!(s.f.room_status(suite), RoomStatus::Held);
    s.f.start(v1);
    assert_eq!(s.f.room_status(suite), RoomStatus::Occupied);
    s.f.run(&ADMIN, call_with(Some(v3), Some(cleo), Some(suite)));
    assert_eq!(s.f.room_status(suite), RoomStatus::Occupied);
    s.f.finish(v1);
    assert_eq!(s.f.room_status(suite), RoomStatus::Held);
    s.f.start(v3);
    s.f.finish(v3);
    assert_eq!(s.f.room_status(suite), RoomStatus::Cleaning);
    assert_eq!(s.f.room(suite).cleaning_until, Some(s.f.now.ms + 15 * MIN));
}

#[test]
fn a_therapist_acts_only_on_their_own_visits() {
    let mut s = spa();
    let v = s.f.add_visit("Carla", &[s.thai]);
    let (anna, _) = s.f.call(v);
    assert_eq!(anna, s.anna);
    let anna_actor = staff_actor(s.anna, Role::Therapist);
    let ben = staff_actor(s.ben, Role::Therapist);
    let cashier = s.f.add_staff("Cass", Role::Cashier, &[]);
    let cass = s.f.as_staff(cashier);
    // Ben may not touch Anna's visit in any way.
    s.f.refuse(&ben, start(v), Forbidden, &["A-001", "not your visit"]);
    s.f.refuse(&ben, undo(v), Forbidden, &["not your visit"]);
    s.f.run(&anna_actor, start(v));
    s.f.refuse(&ben, extend(v, 5), Forbidden, &["not your visit"]);
    s.f.refuse(&ben, finish(v), Forbidden, &["not your visit"]);
    s.f.refuse(&ben, undo(v), Forbidden, &["not your visit"]);
    s.f.run(&anna_actor, extend(v, 5));
    s.f.run(&anna_actor, undo(v));
    s.f.run(&anna_actor, start(v));
    s.f.run(&anna_actor, finish(v));
    // Office staff may act on anyone's visit.
    let w = s.f.add_visit("Dora", &[s.facial]);
    s.f.run(&cass, call_visit(w));
    s.f.run(&cass, start(w));
    s.f.run(&cass, extend(w, 5));
    s.f.run(&cass, finish(w));
    // A waiting visit is nobody's: a therapist may not start it either.
    let x = s.f.add_visit("Ella", &[s.facial]);
    s.f.refuse(&anna_actor, undo(x), Forbidden, &[]);
}

#[test]
fn customers_and_monitors_change_nothing() {
    let (mut s, all) = one_in_each_state();
    let me = all[0].1;
    for actor in [Actor::Customer { visit_id: me }, Actor::Device { id: 1 }] {
        for (_, id) in &all {
            for cmd in [
                call_visit(*id),
                start(*id),
                finish(*id),
                undo(*id),
                extend(*id, 5),
                leave(*id, "x"),
                void(*id, "x"),
            ] {
                s.f.refuse(&actor, cmd, Forbidden, &[]);
            }
        }
    }
}

/// A Pi without a real-time clock may see its clock (and so the local day)
/// go back. Ticket numbers must still be unique per day.
/// The spa's day never goes back: the ticket is counted on the latest day.
#[test]
fn ticket_numbers_stay_unique_when_the_day_goes_back() {
    let mut s = spa();
    let first = s.f.add_visit("Day one", &[s.facial]);
    s.f.next_day();
    let second = s.f.add_visit("Day two", &[s.facial]);
    // The clock jumps back before midnight.
    s.f.now.day -= 1;
    s.f.now.ms -= 120 * MIN;
    let again = s.f.add_visit("Day one again", &[s.facial]);
    assert_eq!(s.f.visit(second).day, s.f.visit(again).day);
    assert_ne!(s.f.visit(first).day, s.f.visit(again).day);
    assert_eq!(s.f.visit(second).number, "A-001");
    assert_eq!(s.f.visit(again).number, "A-002");
}

/// The store rebuilds the state from records at start-up; a floor restarted
/// in the middle of sessions and cleanups carries on where it was.
#[test]
fn a_restart_in_the_middle_of_sessions_and_cleanups() {
    let mut s = spa();
    let cleo = s.f.add_therapist("Cleo", &[]);
    let suite = s.f.add_room("Suite", 1);
    let in_session = s.f.add_visit("Ines", &[s.thai]);
    let called = s.f.add_visit("Cal", &[s.thai]);
    let cleaned = s.f.add_visit("Clea", &[s.thai]);
    s.f.call_to(cleaned, cleo, suite);
    s.f.start(cleaned);
    s.f.finish(cleaned);
    s.f.call(in_session);
    s.f.start(in_session);
    let end = s.f.visit(in_session).planned_end.unwrap();
    s.f.call(called);
    s.f.advance(5);

    // Restart: a fresh state from the records alone.
    let mut rebuilt = crate::domain::State::default();
    for (key, record) in s.f.state.records() {
        rebuilt.put_record(&key, Some(record));
    }
    assert_eq!(rebuilt, s.f.state);
    s.f.state = rebuilt;

    // The cleanup keeps its remaining time; the session its planned end.
    let room = s.f.room(suite);
    assert_eq!(room.status, RoomStatus::Cleaning);
    assert_eq!(room.cleaning_until, Some(s.f.now.ms + 10 * MIN));
    assert_eq!(
        crate::domain::views::room_free_in_min(room, &s.f.state, s.f.now.ms),
        Some(10)
    );
    let busy = s.f.visit(in_session).therapist.unwrap();
    s.f.refuse(&ADMIN, clock_out(busy), Conflict, &["in a session"]);
    s.f.advance(10);
    s.f.run(&Actor::System, Command::CleanupElapsed { room_id: suite });
    s.f.advance(50);
    s.f.run(
        &Actor::System,
        Command::OvertimeReached {
            visit_id: in_session,
            planned_end: end,
        },
    );
    s.f.start(called);
    s.f.finish(in_session);
    s.f.finish(called);
    assert_eq!(s.f.visit_state(in_session), AwaitingPayment);
    assert_eq!(s.f.visit_state(called), AwaitingPayment);
    // Numbers go on from the counters.
    let next = s.f.add_visit("After", &[s.facial]);
    assert_eq!(s.f.visit(next).number, "A-004");
}
