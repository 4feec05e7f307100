//! Turn rotation: who takes the next walk-in (DOMAIN.md, "Turn rotation").

use super::harness::*;
use crate::domain::command::{ServiceCreate, VisitCall};
use crate::domain::rotation;
use crate::domain::rotation::Turns;
use crate::domain::state::RoomStatus;
use crate::domain::{Command, ErrorCode::*, Event, Role};

fn order(f: &Floor) -> Vec<u64> {
    rotation::rotation(&f.state, f.now.day)
}

/// Plenty of rooms, a plain service, and `names` clocked in one minute apart.
fn floor_with(names: &[&str]) -> (Floor, u64, Vec<u64>) {
    let mut f = Floor::new();
    for i in 0..6 {
        f.add_room(&format!("Room {i}"), 1);
    }
    let plain = f.add_service("Plain", 30, 0);
    let ids = names
        .iter()
        .map(|n| {
            f.advance(1);
            f.add_therapist(n, &[])
        })
        .collect();
    f.advance(1);
    (f, plain, ids)
}

/// Calls a new walk-in with the rotation and returns who took it.
fn next_walk_in(f: &mut Floor, service: u64) -> u64 {
    let v = f.add_visit("Walk-in", &[service]);
    f.call(v).0
}

fn called_event(f: &Floor) -> (u64, f64, Option<String>) {
    match &f.log.last().unwrap().event {
        Event::VisitCalled {
            therapist_id,
            turn,
            override_reason,
            ..
        } => (*therapist_id, turn.as_f64(), override_reason.clone()),
        other => panic!("not a call: {other:?}"),
    }
}

#[test]
fn fewest_turns_first_then_longest_available() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben", "Cleo"]);
    let [anna, ben, cleo] = ids[..] else { panic!() };
    assert_eq!(order(&f), vec![anna, ben, cleo], "clock-in order");
    let v1 = f.add_visit("V1", &[plain]);
    assert_eq!(f.call(v1).0, anna);
    assert_eq!(next_walk_in(&mut f, plain), ben);
    // Anna finishes first: she is free the longest, but she has a turn
    // and Cleo has none.
    f.start(v1);
    f.advance(5);
    f.finish(v1);
    assert_eq!(order(&f)[0], cleo);
    assert_eq!(next_walk_in(&mut f, plain), cleo);
    // All have one turn; Anna has been free longest.
    assert_eq!(next_walk_in(&mut f, plain), anna);
    assert_eq!(f.turns(anna), 2.0);
}

#[test]
fn ties_on_turns_and_availability_go_by_clock_in() {
    let mut f = Floor::new();
    f.add_room("Lotus", 1);
    let plain = f.add_service("Plain", 30, 0);
    // Ben gets the lower id but clocks in later.
    let ben = f.add_staff("Ben", Role::Therapist, &[]);
    let anna = f.add_staff("Anna", Role::Therapist, &[]);
    f.clock_in(anna);
    f.advance(1);
    f.clock_in(ben);
    f.advance(1);
    // Both take a break and come back in the same instant (Ben first).
    f.run(&ADMIN, take_break(ben));
    f.run(&ADMIN, take_break(anna));
    f.advance(1);
    f.run(&ADMIN, resume(ben));
    f.run(&ADMIN, resume(anna));
    assert_eq!(f.staff(anna).available_since, f.staff(ben).available_since);
    assert_eq!(
        order(&f),
        vec![anna, ben],
        "earliest clock-in breaks the tie"
    );
    assert_eq!(next_walk_in(&mut f, plain), anna);
    // Everything equal (same instant clock-in): the lower id, a total order.
    let mut g = Floor::new();
    g.add_room("Lotus", 1);
    let plain = g.add_service("Plain", 30, 0);
    let x = g.add_therapist("X", &[]);
    let y = g.add_therapist("Y", &[]);
    assert_eq!(order(&g), vec![x, y]);
    assert_eq!(next_walk_in(&mut g, plain), x);
}

#[test]
fn weighted_turns() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben", "Cleo"]);
    let [anna, ben, cleo] = ids[..] else { panic!() };
    let double = f.add_service_with(ServiceCreate {
        turn_weight: 2.0,
        ..new_service("Double", 120, 0)
    });
    let half = f.add_service_with(ServiceCreate {
        turn_weight: 0.5,
        ..new_service("Half", 15, 0)
    });
    let v = f.add_visit("Big", &[double]);
    assert_eq!(f.call(v).0, anna);
    f.serve_rest(v);
    assert_eq!(f.turns(anna), 2.0);
    let v = f.add_visit("Small", &[half]);
    assert_eq!(f.call(v).0, ben);
    f.serve_rest(v);
    assert_eq!(f.turns(ben), 0.5);
    // Cleo (0) before Ben (0.5) before Anna (2).
    assert_eq!(order(&f), vec![cleo, ben, anna]);
    assert_eq!(next_walk_in(&mut f, plain), cleo);
    // Now Anna 2, Ben 0.5, Cleo 1 (busy): Ben.
    assert_eq!(next_walk_in(&mut f, half), ben);
    // A visit of several services counts the sum of their weights.
    let v = f.add_visit("Combo", &[double, half, plain]);
    let (t, _) = f.call(v);
    assert_eq!(t, anna, "Anna is the only one free");
    assert_eq!(f.turns(anna), 5.5);
    assert_eq!(f.visit(v).turn_taken, Turns(3_500));
}

#[test]
fn a_skill_filter_keeps_places() {
    let mut f = Floor::new();
    for i in 0..4 {
        f.add_room(&format!("Room {i}"), 1);
    }
    let plain = f.add_service("Plain", 30, 0);
    let stone = f.add_service_with(ServiceCreate {
        skill: Some("hot-stone".into()),
        ..new_service("Hot stone", 60, 0)
    });
    let anna = f.add_therapist("Anna", &[]);
    f.advance(1);
    let ben = f.add_therapist("Ben", &["hot-stone"]);
    f.advance(1);
    let cleo = f.add_therapist("Cleo", &["hot-stone", "thai"]);
    // Anna heads the rotation but cannot do hot stone: Ben takes it.
    let v = f.add_visit("Stone", &[stone]);
    assert_eq!(f.call(v).0, ben);
    // Anna is still first for a plain visit.
    assert_eq!(order(&f)[0], anna);
    assert_eq!(next_walk_in(&mut f, plain), anna);
    assert_eq!(next_walk_in(&mut f, plain), cleo);
    // Nobody free with the skill: the message names it.
    let w = f.add_visit("Stone 2", &[stone]);
    f.run(&ADMIN, undo(f.staff(anna).current_visit.unwrap()));
    f.refuse(
        &ADMIN,
        call_visit(w),
        Conflict,
        &["no therapist with hot-stone is available", "A-00"],
    );
    // Naming a therapist without the skill is refused.
    f.refuse(
        &ADMIN,
        call_with(Some(w), Some(anna), None),
        Conflict,
        &["Anna", "hot-stone"],
    );
}

#[test]
fn a_requested_therapist_takes_the_visit_without_a_turn() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben", "Cleo"]);
    let [anna, ben, cleo] = ids[..] else { panic!() };
    let v = f.add_request("Fan of Cleo", &[plain], cleo);
    let (t, _) = f.call(v);
    assert_eq!(t, cleo, "the request beats the rotation");
    let (_, turn, reason) = called_event(&f);
    assert_eq!((turn, reason), (0.0, None));
    assert_eq!(f.turns(cleo), 0.0);
    assert_eq!(f.visit(v).turn_taken, Turns::ZERO);
    f.serve_rest(v);
    // Cleo kept her place by turns (0) but is now free the shortest time.
    assert_eq!(order(&f), vec![anna, ben, cleo]);
    // With count_turn it does count.
    let w = f.add_request("Fan of Ben", &[plain], ben);
    f.run(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(w),
            count_turn: Some(true),
            ..VisitCall::default()
        }),
    );
    assert_eq!(called_event(&f), (ben, 1.0, None));
    assert_eq!(f.turns(ben), 1.0);
    // Undoing a counted request gives the turn back.
    f.run(&ADMIN, undo(w));
    assert_eq!(f.turns(ben), 0.0);
    let _ = anna;
}

#[test]
fn a_request_for_a_busy_therapist_waits_without_blocking_the_queue() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
    let [anna, ben] = ids[..] else { panic!() };
    let first = f.add_visit("First", &[plain]);
    f.call(first); // Anna
    let fan = f.add_request("Fan of Anna", &[plain], anna);
    let walk_in = f.add_visit("Walk-in", &[plain]);
    // Calling "the next visit" skips the one waiting for Anna.
    f.run(&ADMIN, call_with(None, None, None));
    assert_eq!(f.visit(walk_in).therapist, Some(ben));
    assert_eq!(
        f.visit_state(fan),
        crate::domain::state::VisitState::Waiting
    );
    // Asked by id, it says who it waits for.
    let cleo = f.add_therapist("Cleo", &[]);
    f.refuse(
        &ADMIN,
        call_visit(fan),
        Conflict,
        &["A-002", "asked for Anna", "called to a visit"],
    );
    // Nothing else waits but the fan: "the next visit" says so.
    f.refuse(
        &ADMIN,
        call_with(None, None, None),
        Conflict,
        &["waits for a therapist who is busy"],
    );
    // Giving the fan's visit to somebody else (even the head of the
    // rotation) overrides the request: it needs a reason.
    assert_eq!(order(&f)[0], cleo);
    f.refuse(
        &ADMIN,
        call_with(Some(fan), Some(cleo), None),
        Conflict,
        &["A-002", "asked for Anna", "override_reason"],
    );
    f.run(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(fan),
            therapist_id: Some(cleo),
            override_reason: Some("Anna runs late".into()),
            ..VisitCall::default()
        }),
    );
    assert_eq!(f.visit(fan).therapist, Some(cleo));
    assert_eq!(called_event(&f), (cleo, 1.0, Some("Anna runs late".into())));
}

#[test]
fn out_of_turn_needs_a_reason_that_is_recorded() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
    let [anna, ben] = ids[..] else { panic!() };
    let v = f.add_visit("V", &[plain]);
    let err = f.refuse(
        &ADMIN,
        call_with(Some(v), Some(ben), None),
        Conflict,
        &["Ben", "not next", "Anna", "override_reason"],
    );
    assert!(err.message.contains("Anna is"), "{}", err.message);
    // Blank reasons are no reasons.
    f.refuse(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(v),
            therapist_id: Some(ben),
            override_reason: Some("   ".into()),
            ..VisitCall::default()
        }),
        Conflict,
        &["override_reason"],
    );
    f.refuse(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(v),
            therapist_id: Some(ben),
            override_reason: Some("x".repeat(201)),
            ..VisitCall::default()
        }),
        Invalid,
        &["`override_reason`"],
    );
    f.run(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(v),
            therapist_id: Some(ben),
            override_reason: Some("regular customer of Ben".into()),
            ..VisitCall::default()
        }),
    );
    assert_eq!(
        called_event(&f),
        (ben, 1.0, Some("regular customer of Ben".into()))
    );
    assert_eq!(
        f.visit(v).override_reason.as_deref(),
        Some("regular customer of Ben")
    );
    assert_eq!(f.turns(ben), 1.0, "an override still counts a turn");
    // Naming the head of the rotation is in turn: no reason needed, none kept.
    let w = f.add_visit("W", &[plain]);
    f.run(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(w),
            therapist_id: Some(anna),
            override_reason: Some("ignored".into()),
            ..VisitCall::default()
        }),
    );
    assert_eq!(called_event(&f), (anna, 1.0, None));
    // Undo clears the recorded override.
    f.run(&ADMIN, undo(v));
    assert_eq!(f.visit(v).override_reason, None);
}

#[test]
fn a_therapist_calls_for_themself() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
    let [anna, ben] = ids[..] else { panic!() };
    let anna_me = staff_actor(anna, Role::Therapist);
    let ben_me = staff_actor(ben, Role::Therapist);
    let v = f.add_visit("V", &[plain]);
    // Ben is not next, and a therapist cannot call out of turn (#21).
    f.refuse(
        &ben_me,
        call_with(None, None, None),
        Forbidden,
        &["not next"],
    );
    f.refuse(
        &ben_me,
        call_with(Some(v), Some(anna), None),
        Forbidden,
        &["themself"],
    );
    f.run(&anna_me, call_with(None, None, None));
    assert_eq!(f.visit(v).therapist, Some(anna));
    // Anna is busy now: Ben is next, and may call.
    let w = f.add_visit("W", &[plain]);
    f.run(
        &ben_me,
        Command::VisitCall(VisitCall {
            visit_id: Some(w),
            override_reason: Some("Anna is busy".into()),
            ..VisitCall::default()
        }),
    );
    assert_eq!(f.visit(w).therapist, Some(ben));
    // A therapist who is not available cannot call.
    let x = f.add_visit("X", &[plain]);
    f.refuse(
        &ben_me,
        call_visit(x),
        Conflict,
        &["Ben", "called to a visit"],
    );
    // For a visit that asked for them, they are in turn.
    f.run(&ADMIN, undo(w));
    f.run(&ADMIN, undo(v));
    for gone in [v, w, x] {
        f.run(&ADMIN, leave(gone, "went home"));
    }
    let fan = f.add_request("Fan of Ben", &[plain], ben);
    f.run(&ben_me, call_with(None, None, None));
    assert_eq!(f.visit(fan).therapist, Some(ben));
    assert_eq!(called_event(&f).1, 0.0);
}

#[test]
fn breaks_clock_out_and_back() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben", "Cleo"]);
    let [anna, ben, cleo] = ids[..] else { panic!() };
    // Anna on a break: out of the available rotation, listed after.
    f.run(&ADMIN, take_break(anna));
    assert_eq!(order(&f), vec![ben, cleo, anna]);
    assert_eq!(next_walk_in(&mut f, plain), ben);
    // Back from the break: at the tail of the ones with as few turns.
    f.advance(1);
    f.run(&ADMIN, resume(anna));
    assert_eq!(order(&f)[..2], [cleo, anna]);
    assert_eq!(next_walk_in(&mut f, plain), cleo);
    assert_eq!(next_walk_in(&mut f, plain), anna);
    // Everyone has one turn and is busy; free them in order Ben, Cleo, Anna.
    for t in [ben, cleo, anna] {
        f.advance(1);
        let v = f.staff(t).current_visit.unwrap();
        f.start(v);
        f.finish(v);
    }
    assert_eq!(order(&f), vec![ben, cleo, anna]);
    // Ben clocks out and back: he keeps his turn today, joins at the tail.
    f.advance(1);
    f.run(&ADMIN, clock_out(ben));
    assert_eq!(order(&f), vec![cleo, anna]);
    f.advance(1);
    f.clock_in(ben);
    assert_eq!(f.turns(ben), 1.0);
    assert_eq!(order(&f), vec![cleo, anna, ben]);
    // A newcomer with no turn goes first.
    let dana = f.add_therapist("Dana", &[]);
    assert_eq!(order(&f), vec![dana, cleo, anna, ben]);
}

#[test]
fn a_new_day_resets_the_turns() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
    let [anna, ben] = ids[..] else { panic!() };
    for _ in 0..2 {
        let t = next_walk_in(&mut f, plain);
        let v = f.staff(t).current_visit.unwrap();
        f.advance(30);
        f.serve_rest(v);
    }
    // Anna (free first) before Ben, both with one turn.
    let v = f.add_visit("V", &[plain]);
    assert_eq!(f.call(v).0, anna);
    f.advance(30);
    f.serve_rest(v);
    assert_eq!((f.turns(anna), f.turns(ben)), (2.0, 1.0));
    assert_eq!(order(&f), vec![ben, anna]);
    f.next_day();
    assert_eq!((f.turns(anna), f.turns(ben)), (0.0, 0.0));
    // With no turns today, the longest free goes first.
    assert_eq!(order(&f), vec![ben, anna]);
    let v = f.add_visit("Morning", &[plain]);
    assert_eq!(f.call(v).0, ben);
    assert_eq!(f.turns(ben), 1.0, "a call today starts today's count");
    assert_eq!(f.staff(ben).turns_day, f.now.day);
    assert_eq!(next_walk_in(&mut f, plain), anna);
    assert_eq!(f.turns(anna), 1.0);
}

#[test]
fn a_call_says_whether_the_therapist_or_the_room_is_missing() {
    let mut f = Floor::new();
    let plain = f.add_service("Plain", 30, 0);
    let v = f.add_visit("V", &[plain]);
    // Neither.
    f.refuse(
        &ADMIN,
        call_visit(v),
        Conflict,
        &["no therapist is available", "no room is free", "A-001"],
    );
    f.refuse(
        &ADMIN,
        call_with(None, None, None),
        Conflict,
        &["no therapist is available", "no room is free"],
    );
    // A therapist but no room.
    let anna = f.add_therapist("Anna", &[]);
    let err = f.refuse(
        &ADMIN,
        call_visit(v),
        Conflict,
        &["no room is free for A-001"],
    );
    assert!(!err.message.contains("therapist"), "{}", err.message);
    // A room but no therapist (Anna on a break).
    let lotus = f.add_room("Lotus", 1);
    f.run(&ADMIN, take_break(anna));
    let err = f.refuse(
        &ADMIN,
        call_visit(v),
        Conflict,
        &["no therapist is available"],
    );
    assert!(!err.message.contains("room"), "{}", err.message);
    f.refuse(
        &ADMIN,
        call_with(None, None, None),
        Conflict,
        &["no therapist is available"],
    );
    // Naming the room does not help the therapist.
    f.refuse(
        &ADMIN,
        call_with(Some(v), None, Some(lotus)),
        Conflict,
        &["no therapist is available for A-001"],
    );
    // Both back: it works.
    f.run(&ADMIN, resume(anna));
    assert_eq!(f.call(v), (anna, lotus));
    // Nobody waiting.
    f.refuse(
        &ADMIN,
        call_with(None, None, None),
        Conflict,
        &["nobody is waiting"],
    );
}

#[test]
fn the_room_picked_is_the_smallest_free_the_longest() {
    let mut f = Floor::new();
    let plain = f.add_service("Plain", 30, 0);
    let suite = f.add_room("Suite", 2);
    f.advance(1);
    let lotus = f.add_room("Lotus", 1);
    f.advance(1);
    let jade = f.add_room("Jade", 1);
    f.add_therapist("Anna", &[]);
    f.add_therapist("Ben", &[]);
    f.add_therapist("Cleo", &[]);
    let v = f.add_visit("V1", &[plain]);
    assert_eq!(f.call(v).1, lotus);
    let w = f.add_visit("V2", &[plain]);
    assert_eq!(f.call(w).1, jade);
    let x = f.add_visit("V3", &[plain]);
    assert_eq!(f.call(x).1, suite);
    // Lotus freed later than Jade's status changed: Jade comes first again.
    f.run(&ADMIN, undo(w));
    f.advance(1);
    f.run(&ADMIN, undo(v));
    assert_eq!(f.room_status(lotus), RoomStatus::Available);
    assert_eq!(f.call(v).1, jade);
}

#[test]
fn the_rotation_lists_available_first_then_the_others() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben", "Cleo", "Dana"]);
    let [anna, ben, cleo, dana] = ids[..] else {
        panic!()
    };
    f.run(&ADMIN, take_break(ben));
    let v = f.add_visit("V", &[plain]);
    assert_eq!(f.call(v).0, anna);
    f.run(&ADMIN, clock_out(dana));
    // Available (Cleo), then busy or on a break in rotation order.
    let list = order(&f);
    assert_eq!(list[0], cleo);
    assert_eq!(list.len(), 3, "clocked-out therapists are not listed");
    assert!(list.contains(&anna) && list.contains(&ben));
    assert_eq!(list[1..], [ben, anna], "Ben (no turn) before Anna (one)");
}

/// An unserved call (undone, left, voided) costs the therapist neither a
/// turn nor their place in the rotation.
#[test]
fn an_unserved_call_keeps_the_therapists_place() {
    for how in ["undo", "leave", "void", "out_of_service"] {
        let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
        let [anna, ben] = ids[..] else { panic!() };
        let v = f.add_visit("V", &[plain]);
        let (t, room) = f.call(v);
        assert_eq!(t, anna);
        f.advance(3);
        let cmd = match how {
            "undo" => undo(v),
            "leave" => leave(v, "changed their mind"),
            "void" => void(v, "entered by mistake"),
            _ => set_status(room, RoomStatus::OutOfService, Some("flooded")),
        };
        f.run(&ADMIN, cmd);
        let a = f.staff(anna);
        assert_eq!(
            a.presence,
            crate::domain::state::Presence::Available,
            "{how}"
        );
        assert_eq!(
            a.turns_on(f.now.day),
            Turns::ZERO,
            "{how}: the turn comes back"
        );
        assert_eq!(a.available_since, Some(T0 + MIN), "{how}: the place too");
        assert_eq!(order(&f), vec![anna, ben], "{how}");
        assert_eq!(next_walk_in(&mut f, plain), anna, "{how}");
    }
}

#[test]
fn a_request_for_a_therapist_who_left_the_staff() {
    let (mut f, plain, ids) = floor_with(&["Anna", "Ben"]);
    let [anna, ben] = ids[..] else { panic!() };
    let fan = f.add_request("Fan of Ben", &[plain], ben);
    f.run(&ADMIN, clock_out(ben));
    f.run(
        &ADMIN,
        Command::StaffDeactivate(crate::domain::command::StaffRef { staff_id: ben }),
    );
    // The arguments are fine; the floor has changed: `conflict`, saying why.
    f.refuse(
        &ADMIN,
        call_visit(fan),
        Conflict,
        &["A-001", "asked for Ben", "no longer an active therapist"],
    );
    // The desk gives it to Anna with a reason.
    f.refuse(
        &ADMIN,
        call_with(Some(fan), Some(anna), None),
        Conflict,
        &["override_reason"],
    );
    f.run(
        &ADMIN,
        Command::VisitCall(VisitCall {
            visit_id: Some(fan),
            therapist_id: Some(anna),
            override_reason: Some("Ben has left".into()),
            ..VisitCall::default()
        }),
    );
    assert_eq!(f.visit(fan).therapist, Some(anna));
}

#[test]
fn naming_a_room_with_space_leaves_only_the_therapist_missing() {
    let mut f = Floor::new();
    let plain = f.add_service("Plain", 30, 0);
    let suite = f.add_room("Suite", 2);
    let anna = f.add_therapist("Anna", &[]);
    let first = f.add_visit("First", &[plain]);
    assert_eq!(f.call(first), (anna, suite));
    // No room is available any more, but the suite has a place; nobody is free.
    let second = f.add_visit("Second", &[plain]);
    for cmd in [
        call_with(None, None, Some(suite)),
        call_with(Some(second), None, Some(suite)),
    ] {
        let err = f.refuse(
            &ADMIN,
            cmd,
            Conflict,
            &["no therapist is available for A-002"],
        );
        assert!(!err.message.contains("room"), "{}", err.message);
    }
    // Without naming it, both are missing.
    f.refuse(
        &ADMIN,
        call_with(None, None, None),
        Conflict,
        &["no therapist is available and no room is free"],
    );
}
