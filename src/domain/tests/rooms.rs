//! Rooms: create, update, remove, set_status (the Room state machine) and
//! the cleanup timer, in every relevant state.

use super::harness::*;
use crate::domain::command::RoomCreate;
use crate::domain::state::RoomStatus::{self, *};
use crate::domain::{Actor, Command, ErrorCode::*, Event, Role};

#[test]
fn create_a_room() {
    let mut f = Floor::new();
    let d = f.run(&ADMIN, room_create("  Lotus ", 2, Some(1)));
    let id = f.state.counters.next_id - 1;
    let room = f.room(id).clone();
    assert_eq!(room.name, "Lotus", "the name is trimmed");
    assert_eq!(room.capacity, 2);
    assert_eq!(room.light_channel, Some(1));
    assert_eq!(room.status, Available);
    assert_eq!(room.status_since, f.now.ms);
    assert!(room.occupants.is_empty());
    assert_eq!(d.reply["room"]["id"], id);
    assert_eq!(d.reply["room"]["status"], "available");
    assert_eq!(d.reply["room"]["free_in_min"], 0);
}

#[test]
fn room_ids_come_from_one_counter() {
    let mut f = Floor::new();
    let a = f.add_room("A", 1);
    let s = f.add_service("Thai", 60, 10);
    let b = f.add_room("B", 1);
    assert!(a < s && s < b);
}

#[test]
fn room_capacity_defaults_to_one_on_the_wire() {
    let cmd = Command::decode("room.create", serde_json::json!({"name": "Jade"})).unwrap();
    assert_eq!(
        cmd,
        Command::RoomCreate(RoomCreate {
            name: "Jade".into(),
            capacity: 1,
            light_channel: None
        })
    );
}

#[test]
fn create_refusals_name_the_field() {
    let mut f = Floor::new();
    f.run(&ADMIN, room_create("Lotus", 1, Some(2)));
    f.refuse(&ADMIN, room_create("", 1, None), Invalid, &["`name`"]);
    f.refuse(&ADMIN, room_create("   ", 1, None), Invalid, &["`name`"]);
    f.refuse(
        &ADMIN,
        room_create(&"x".repeat(65), 1, None),
        Invalid,
        &["`name`"],
    );
    f.refuse(
        &ADMIN,
        room_create("Bad\u{7}", 1, None),
        Invalid,
        &["`name`"],
    );
    f.refuse(
        &ADMIN,
        room_create("Jade", 0, None),
        Invalid,
        &["`capacity`"],
    );
    f.refuse(
        &ADMIN,
        room_create("Jade", 3, None),
        Invalid,
        &["`capacity`"],
    );
    f.refuse(
        &ADMIN,
        room_create("Jade", 1, Some(9)),
        Invalid,
        &["`light_channel`", "1, 2, 3"],
    );
    f.refuse(
        &ADMIN,
        room_create("Jade", 1, Some(2)),
        Invalid,
        &["`light_channel`", "Lotus"],
    );
    // Names are unique, whatever the case.
    f.refuse(&ADMIN, room_create("LOTUS", 1, None), Conflict, &["LOTUS"]);
    // The longest name allowed is fine.
    f.run(&ADMIN, room_create(&"x".repeat(64), 1, Some(3)));
}

#[test]
fn no_light_channels_configured() {
    let mut f = Floor::new();
    f.rules.light_channels.clear();
    f.refuse(
        &ADMIN,
        room_create("Jade", 1, Some(1)),
        Invalid,
        &["`light_channel`", "no channels"],
    );
    f.run(&ADMIN, room_create("Jade", 1, None));
}

#[test]
fn update_a_room() {
    let mut f = Floor::new();
    let lotus = f.add_room("Lotus", 1);
    let mut u = room_update(lotus);
    u.name = Some("Lotus Suite".into());
    u.capacity = Some(2);
    u.light_channel = Some(Some(3));
    let d = f.run(&ADMIN, Command::RoomUpdate(u));
    let room = f.room(lotus);
    assert_eq!(
        (room.name.as_str(), room.capacity, room.light_channel),
        ("Lotus Suite", 2, Some(3))
    );
    assert_eq!(d.reply["room"]["name"], "Lotus Suite");

    // Absent fields are kept; `null` clears the channel.
    let mut u = room_update(lotus);
    u.light_channel = Some(None);
    f.run(&ADMIN, Command::RoomUpdate(u));
    let room = f.room(lotus);
    assert_eq!(
        (room.name.as_str(), room.capacity, room.light_channel),
        ("Lotus Suite", 2, None)
    );

    // Renaming to its own name (other case) and keeping its channel is fine.
    let mut u = room_update(lotus);
    u.light_channel = Some(Some(1));
    f.run(&ADMIN, Command::RoomUpdate(u));
    let mut u = room_update(lotus);
    u.name = Some("LOTUS SUITE".into());
    u.light_channel = Some(Some(1));
    f.run(&ADMIN, Command::RoomUpdate(u));
    assert_eq!(f.room(lotus).name, "LOTUS SUITE");
}

#[test]
fn update_refusals() {
    let mut f = Floor::new();
    let lotus = f.add_room("Lotus", 2);
    let jade = f.add_room("Jade", 1);
    let mut u = room_update(jade);
    u.light_channel = Some(Some(2));
    f.run(&ADMIN, Command::RoomUpdate(u));

    f.refuse(
        &ADMIN,
        Command::RoomUpdate(room_update(999)),
        NotFound,
        &["999"],
    );
    let mut u = room_update(lotus);
    u.name = Some("jade".into());
    f.refuse(&ADMIN, Command::RoomUpdate(u), Conflict, &["jade"]);
    let mut u = room_update(lotus);
    u.name = Some(String::new());
    f.refuse(&ADMIN, Command::RoomUpdate(u), Invalid, &["`name`"]);
    let mut u = room_update(lotus);
    u.capacity = Some(0);
    f.refuse(&ADMIN, Command::RoomUpdate(u), Invalid, &["`capacity`"]);
    let mut u = room_update(lotus);
    u.light_channel = Some(Some(2));
    f.refuse(
        &ADMIN,
        Command::RoomUpdate(u),
        Invalid,
        &["`light_channel`", "Jade"],
    );
    let mut u = room_update(lotus);
    u.light_channel = Some(Some(7));
    f.refuse(
        &ADMIN,
        Command::RoomUpdate(u),
        Invalid,
        &["`light_channel`"],
    );
}

#[test]
fn capacity_cannot_drop_below_the_visits_in_the_room() {
    let mut f = Floor::new();
    let suite = f.add_room("Suite", 2);
    let thai = f.add_service("Thai", 60, 0);
    let anna = f.add_therapist("Anna", &[]);
    let ben = f.add_therapist("Ben", &[]);
    let v1 = f.add_visit("Carla", &[thai]);
    let v2 = f.add_visit("Dora", &[thai]);
    f.call_to(v1, anna, suite);
    f.call_to(v2, ben, suite);
    assert_eq!(f.room(suite).occupants, vec![v1, v2]);
    let mut u = room_update(suite);
    u.capacity = Some(1);
    f.refuse(
        &ADMIN,
        Command::RoomUpdate(u),
        Conflict,
        &["Suite", "2 visits"],
    );
    // Renaming an occupied room is fine.
    let mut u = room_update(suite);
    u.name = Some("Grand suite".into());
    f.run(&ADMIN, Command::RoomUpdate(u));
    // With one visit left, capacity 1 fits.
    f.run(&ADMIN, undo(v2));
    let mut u = room_update(suite);
    u.capacity = Some(1);
    f.run(&ADMIN, Command::RoomUpdate(u));
    assert_eq!(f.room(suite).capacity, 1);
}

/// A room in each status the machine knows, and the visit holding it if any.
struct Rooms {
    f: Floor,
    available: u64,
    held: u64,
    occupied: u64,
    cleaning_timed: u64,
    cleaning_untimed: u64,
    out_of_service: u64,
    held_visit: u64,
    occupied_visit: u64,
    anna: u64,
    ben: u64,
}

fn rooms_in_every_status() -> Rooms {
    let mut f = Floor::new();
    let available = f.add_room("Available", 1);
    let held = f.add_room("Held", 1);
    let occupied = f.add_room("Occupied", 1);
    let cleaning_timed = f.add_room("Cleaning timed", 1);
    let cleaning_untimed = f.add_room("Cleaning untimed", 1);
    let out_of_service = f.add_room("Out of service", 1);
    let thai = f.add_service("Thai", 60, 15);
    let anna = f.add_therapist("Anna", &[]);
    let ben = f.add_therapist("Ben", &[]);
    let cleo = f.add_therapist("Cleo", &[]);

    let v = f.add_visit("Timed", &[thai]);
    f.call_to(v, cleo, cleaning_timed);
    f.start(v);
    f.finish(v);
    f.set_room(cleaning_untimed, Cleaning);
    f.set_room(out_of_service, OutOfService);
    let held_visit = f.add_visit("Hilda", &[thai]);
    f.call_to(held_visit, anna, held);
    let occupied_visit = f.add_visit("Olga", &[thai]);
    f.call_to(occupied_visit, ben, occupied);
    f.start(occupied_visit);

    assert_eq!(f.room_status(available), Available);
    assert_eq!(f.room_status(held), Held);
    assert_eq!(f.room_status(occupied), Occupied);
    assert_eq!(f.room_status(cleaning_timed), Cleaning);
    assert!(f.room(cleaning_timed).cleaning_until.is_some());
    assert_eq!(f.room_status(cleaning_untimed), Cleaning);
    assert_eq!(f.room(cleaning_untimed).cleaning_until, None);
    assert_eq!(f.room_status(out_of_service), OutOfService);
    Rooms {
        f,
        available,
        held,
        occupied,
        cleaning_timed,
        cleaning_untimed,
        out_of_service,
        held_visit,
        occupied_visit,
        anna,
        ben,
    }
}

/// Every (status now, status asked) pair: accepted or refused with the code.
#[test]
fn set_status_in_every_status() {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Ok,
        Refused(crate::domain::ErrorCode),
    }
    use Want::*;
    let from_all = [
        "available",
        "held",
        "occupied",
        "cleaning_timed",
        "cleaning_untimed",
        "out_of_service",
    ];
    let to_all = [Available, Cleaning, OutOfService, Held, Occupied];
    let want = |from: &str, to: RoomStatus| -> Want {
        match (from, to) {
            (_, Held | Occupied) => Refused(Invalid),
            ("available", Cleaning | OutOfService) => Ok,
            ("held", OutOfService) => Ok,
            ("cleaning_timed" | "cleaning_untimed", Available | OutOfService) => Ok,
            ("out_of_service", Available) => Ok,
            _ => Refused(Conflict),
        }
    };
    for from in from_all {
        for to in to_all {
            let mut r = rooms_in_every_status();
            let room = match from {
                "available" => r.available,
                "held" => r.held,
                "occupied" => r.occupied,
                "cleaning_timed" => r.cleaning_timed,
                "cleaning_untimed" => r.cleaning_untimed,
                _ => r.out_of_service,
            };
            let cmd = set_status(room, to, Some("a reason"));
            match want(from, to) {
                Ok => {
                    r.f.advance(1);
                    r.f.run(&ADMIN, cmd);
                    let after = r.f.room(room);
                    assert_eq!(after.status, to, "{from} -> {to:?}");
                    assert_eq!(after.status_since, r.f.now.ms);
                    assert_eq!(after.cleaning_until, None, "staff cleaning has no timer");
                    assert!(after.occupants.is_empty());
                    assert_eq!(after.reason.as_deref(), Some("a reason"));
                }
                Refused(code) => {
                    let words: &[&str] = if code == Invalid {
                        &["`status`"]
                    } else {
                        &[to.as_str()]
                    };
                    r.f.refuse(&ADMIN, cmd, code, words);
                }
            }
        }
    }
}

#[test]
fn taking_a_held_room_out_of_service_sends_its_visit_back_to_the_queue() {
    let mut r = rooms_in_every_status();
    let seq = r.f.state.seq();
    r.f.run(&ADMIN, set_status(r.held, OutOfService, Some("leak")));
    let events = r.f.events_since(seq);
    assert!(matches!(events[0], Event::VisitCallUndone { visit_id } if *visit_id == r.held_visit));
    assert!(matches!(
        events[1],
        Event::RoomStatusSet {
            status: OutOfService,
            ..
        }
    ));
    let v = r.f.visit(r.held_visit);
    assert_eq!(v.state, crate::domain::state::VisitState::Waiting);
    assert_eq!((v.therapist, v.room), (None, None));
    assert_eq!(
        r.f.presence(r.anna),
        crate::domain::state::Presence::Available
    );
    assert_eq!(r.f.turns(r.anna), 0.0, "the turn is given back");
    assert_eq!(r.f.room_status(r.held), OutOfService);
    assert_eq!(r.f.room(r.held).reason.as_deref(), Some("leak"));
    // Ben's session in the other room goes on.
    assert_eq!(
        r.f.presence(r.ben),
        crate::domain::state::Presence::InSession
    );
    assert_eq!(r.f.room_status(r.occupied), Occupied);
    let _ = r.occupied_visit;
}

#[test]
fn out_of_service_needs_a_reason_and_an_admin_or_cashier() {
    let mut r = rooms_in_every_status();
    let f = &mut r.f;
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    let anna = staff_actor(r.anna, Role::Therapist);
    f.refuse(
        &ADMIN,
        set_status(r.available, OutOfService, None),
        Invalid,
        &["`reason`"],
    );
    f.refuse(
        &ADMIN,
        set_status(r.available, OutOfService, Some("  ")),
        Invalid,
        &["`reason`"],
    );
    f.refuse(
        &anna,
        set_status(r.available, OutOfService, Some("broken")),
        Forbidden,
        &["admin", "cashier"],
    );
    f.refuse(
        &anna,
        set_status(r.cleaning_timed, OutOfService, Some("broken")),
        Forbidden,
        &[],
    );
    let cass = f.as_staff(cashier);
    f.run(&cass, set_status(r.available, OutOfService, Some("broken")));
    f.run(
        &ADMIN,
        set_status(r.cleaning_timed, OutOfService, Some("mould")),
    );
    let admin_staff = f.add_staff("Ada", Role::Admin, &[]);
    let ada = f.as_staff(admin_staff);
    f.run(
        &ada,
        set_status(r.cleaning_untimed, OutOfService, Some("mould")),
    );
}

#[test]
fn any_staff_may_mark_cleaning_and_ready_without_a_reason() {
    let mut r = rooms_in_every_status();
    let anna = staff_actor(r.anna, Role::Therapist);
    r.f.run(&anna, set_status(r.cleaning_timed, Available, None));
    assert_eq!(r.f.room_status(r.cleaning_timed), Available);
    assert_eq!(r.f.room(r.cleaning_timed).cleaning_until, None);
    assert_eq!(r.f.room(r.cleaning_timed).reason, None);
    r.f.run(&anna, set_status(r.available, Cleaning, None));
    assert_eq!(r.f.room_status(r.available), Cleaning);
    // Out of service and back: admin or cashier only (issue #21).
    r.f.refuse(
        &anna,
        set_status(r.out_of_service, Available, None),
        Forbidden,
        &["back in service"],
    );
    assert_eq!(r.f.room_status(r.out_of_service), OutOfService);
    r.f.run(&ADMIN, set_status(r.out_of_service, Available, None));
    assert_eq!(r.f.room_status(r.out_of_service), Available);
    assert_eq!(r.f.room(r.out_of_service).reason, None);
    // An optional reason is still checked.
    r.f.refuse(
        &anna,
        set_status(r.available, Cleaning, Some(&"x".repeat(201))),
        Invalid,
        &["`reason`"],
    );
}

#[test]
fn set_status_of_an_unknown_room() {
    let mut f = Floor::new();
    f.refuse(&ADMIN, set_status(42, Available, None), NotFound, &["42"]);
}

#[test]
fn remove_in_every_status() {
    for (name, ok) in [
        ("available", true),
        ("held", false),
        ("occupied", false),
        ("cleaning_timed", false),
        ("cleaning_untimed", false),
        ("out_of_service", true),
    ] {
        let mut r = rooms_in_every_status();
        let room = match name {
            "available" => r.available,
            "held" => r.held,
            "occupied" => r.occupied,
            "cleaning_timed" => r.cleaning_timed,
            "cleaning_untimed" => r.cleaning_untimed,
            _ => r.out_of_service,
        };
        let cmd = Command::RoomRemove(crate::domain::command::RoomRef { room_id: room });
        if ok {
            let d = r.f.run(&ADMIN, cmd);
            assert_eq!(d.reply["room_id"], room);
            assert!(!r.f.state.rooms.contains_key(&room));
        } else {
            r.f.refuse(
                &ADMIN,
                cmd,
                Conflict,
                &["only an available or out-of-service room"],
            );
        }
    }
    let mut f = Floor::new();
    f.refuse(
        &ADMIN,
        Command::RoomRemove(crate::domain::command::RoomRef { room_id: 5 }),
        NotFound,
        &[],
    );
}

#[test]
fn a_removed_room_frees_its_name_and_channel() {
    let mut f = Floor::new();
    f.run(&ADMIN, room_create("Lotus", 1, Some(1)));
    let lotus = f.state.counters.next_id - 1;
    f.run(
        &ADMIN,
        Command::RoomRemove(crate::domain::command::RoomRef { room_id: lotus }),
    );
    f.run(&ADMIN, room_create("Lotus", 1, Some(1)));
    assert_ne!(f.state.counters.next_id - 1, lotus, "ids are never reused");
}

#[test]
fn cleanup_timer_in_every_status() {
    let mut r = rooms_in_every_status();
    let timer = |room| Command::CleanupElapsed { room_id: room };
    for room in [
        r.available,
        r.held,
        r.occupied,
        r.cleaning_untimed,
        r.out_of_service,
    ] {
        r.f.refuse(&Actor::System, timer(room), Conflict, &["timed cleanup"]);
    }
    r.f.refuse(&Actor::System, timer(999), NotFound, &[]);
    r.f.advance(15);
    r.f.run(&Actor::System, timer(r.cleaning_timed));
    let room = r.f.room(r.cleaning_timed);
    assert_eq!(room.status, Available);
    assert_eq!((room.cleaning_until, room.cleaning_ms), (None, 0));
    // A second firing (a timer that survived a restart) changes nothing.
    r.f.refuse(&Actor::System, timer(r.cleaning_timed), Conflict, &[]);
}

#[test]
fn marking_a_timed_cleanup_ready_early_stops_the_timer() {
    let mut r = rooms_in_every_status();
    r.f.advance(3);
    r.f.run(&ADMIN, set_status(r.cleaning_timed, Available, None));
    r.f.refuse(
        &Actor::System,
        Command::CleanupElapsed {
            room_id: r.cleaning_timed,
        },
        Conflict,
        &[],
    );
    // Staff marking it for cleaning again starts no timer either.
    r.f.run(&ADMIN, set_status(r.cleaning_timed, Cleaning, None));
    r.f.refuse(
        &Actor::System,
        Command::CleanupElapsed {
            room_id: r.cleaning_timed,
        },
        Conflict,
        &[],
    );
}

#[test]
fn out_of_service_and_cleaning_rooms_are_never_picked() {
    let mut r = rooms_in_every_status();
    let thai = r.f.add_service("Quick", 30, 0);
    let _dana = r.f.add_therapist("Dana", &[]);
    let v = r.f.add_visit("Vera", &[thai]);
    let (_, room) = r.f.call(v);
    assert_eq!(room, r.available);
    let w = r.f.add_visit("Wanda", &[thai]);
    let _eve = r.f.add_therapist("Eve", &[]);
    r.f.refuse(&ADMIN, call_visit(w), Conflict, &["no room is free", "A-0"]);
    // Naming a room that is cleaning or out of service is refused too.
    for room in [
        r.cleaning_timed,
        r.cleaning_untimed,
        r.out_of_service,
        r.held,
    ] {
        r.f.refuse(
            &ADMIN,
            call_with(Some(w), None, Some(room)),
            Conflict,
            &["no space"],
        );
    }
}
