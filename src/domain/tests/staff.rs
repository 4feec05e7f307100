//! Staff, services, devices and sessions: every command in every relevant
//! state, accepted and refused.

use super::harness::*;
use crate::domain::command::*;
use crate::domain::rotation::Turns;
use crate::domain::state::{Presence, VisitState};
use crate::domain::{Command, ErrorCode::*, Role};

fn session_open(staff_id: u64, token: &str) -> Command {
    Command::SessionOpen {
        staff_id,
        token_hash: token.into(),
    }
}

// ---- staff ----

#[test]
fn create_staff() {
    let mut f = Floor::new();
    let d = f.run(
        &ADMIN,
        staff_create(" Anna ", Role::Therapist, &["thai", "hot-stone", "thai"]),
    );
    let id = f.state.counters.next_id - 1;
    let anna = f.staff(id);
    assert_eq!(anna.name, "Anna");
    assert_eq!(anna.role, Role::Therapist);
    assert!(anna.active);
    assert_eq!(
        anna.skills,
        vec!["hot-stone", "thai"],
        "sorted, no duplicates"
    );
    assert_eq!(anna.presence, Presence::Off);
    assert_eq!(anna.pin_hash, "$argon2id$v=19$pin-of- Anna ");
    assert_eq!(anna.current_visit, None);
    assert_eq!(d.reply["staff"]["status"], "off");
    let text = d.reply.to_string();
    assert!(!text.contains("argon2"), "no PIN hash in a reply: {text}");
    for role in [Role::Admin, Role::Cashier] {
        f.run(&ADMIN, staff_create(role.as_str(), role, &[]));
    }
}

#[test]
fn create_staff_refusals() {
    let mut f = Floor::new();
    f.add_staff("Anna", Role::Therapist, &[]);
    f.refuse(
        &ADMIN,
        staff_create("", Role::Cashier, &[]),
        Invalid,
        &["`name`"],
    );
    f.refuse(
        &ADMIN,
        staff_create(&"n".repeat(65), Role::Cashier, &[]),
        Invalid,
        &["`name`"],
    );
    f.refuse(
        &ADMIN,
        staff_create("anna", Role::Cashier, &[]),
        Conflict,
        &["anna"],
    );
    for role in [Role::Monitor, Role::Customer] {
        f.refuse(&ADMIN, staff_create("Mo", role, &[]), Invalid, &["`role`"]);
    }
    let mut no_pin = staff_create("Pat", Role::Cashier, &[]);
    if let Command::StaffCreate(c) = &mut no_pin {
        c.pin_hash.clear();
    }
    f.refuse(&ADMIN, no_pin, Invalid, &["`pin`"]);
    let many: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    f.refuse(
        &ADMIN,
        staff_create("Sam", Role::Therapist, &many),
        Invalid,
        &["`skills`"],
    );
    f.refuse(
        &ADMIN,
        staff_create("Sam", Role::Therapist, &[" "]),
        Invalid,
        &["`skills`"],
    );
    f.refuse(
        &ADMIN,
        staff_create("Sam", Role::Therapist, &[&"k".repeat(33)]),
        Invalid,
        &["`skills`"],
    );
    f.run(&ADMIN, staff_create("Sam", Role::Therapist, &many[..20]));
}

#[test]
fn a_deactivated_name_may_be_used_again() {
    let mut f = Floor::new();
    let anna = f.add_staff("Anna", Role::Therapist, &[]);
    f.run(
        &ADMIN,
        Command::StaffDeactivate(StaffRef { staff_id: anna }),
    );
    let again = f.add_staff("Anna", Role::Therapist, &[]);
    assert_ne!(anna, again);
    assert_eq!(f.state.staff_by_name("anna").map(|s| s.id), Some(again));
}

#[test]
fn update_staff() {
    let mut f = Floor::new();
    let anna = f.add_staff("Anna", Role::Therapist, &["thai"]);
    f.run(&ADMIN, session_open(anna, "s1"));
    // A new name and skills keep the sessions.
    let mut u = staff_update(anna);
    u.name = Some("Anna B".into());
    u.skills = Some(vec!["shiatsu".into(), "thai".into()]);
    let d = f.run(&ADMIN, Command::StaffUpdate(u));
    assert_eq!(d.reply["staff"]["name"], "Anna B");
    assert_eq!(f.staff(anna).skills, vec!["shiatsu", "thai"]);
    assert!(f.state.sessions.contains_key("s1"));
    // A new PIN ends every session of the member.
    let mut u = staff_update(anna);
    u.pin_hash = Some("$argon2id$new".into());
    f.run(&ADMIN, Command::StaffUpdate(u));
    assert_eq!(f.staff(anna).pin_hash, "$argon2id$new");
    assert!(f.state.sessions.is_empty());
    // So does a new role (allowed while clocked out).
    f.run(&ADMIN, session_open(anna, "s2"));
    let mut u = staff_update(anna);
    u.role = Some(Role::Cashier);
    f.run(&ADMIN, Command::StaffUpdate(u));
    assert_eq!(f.staff(anna).role, Role::Cashier);
    assert!(f.state.sessions.is_empty());
    // Empty update: accepted, nothing changes but the seq.
    let before = f.staff(anna).clone();
    f.run(&ADMIN, Command::StaffUpdate(staff_update(anna)));
    assert_eq!(f.staff(anna), &before);
}

#[test]
fn update_staff_refusals() {
    let mut f = Floor::new();
    let anna = f.add_therapist("Anna", &[]);
    let ben = f.add_staff("Ben", Role::Cashier, &[]);
    f.refuse(
        &ADMIN,
        Command::StaffUpdate(staff_update(999)),
        NotFound,
        &["999"],
    );
    let mut u = staff_update(ben);
    u.name = Some("ANNA".into());
    f.refuse(&ADMIN, Command::StaffUpdate(u), Conflict, &["ANNA"]);
    let mut u = staff_update(ben);
    u.name = Some(" ".into());
    f.refuse(&ADMIN, Command::StaffUpdate(u), Invalid, &["`name`"]);
    let mut u = staff_update(ben);
    u.role = Some(Role::Monitor);
    f.refuse(&ADMIN, Command::StaffUpdate(u), Invalid, &["`role`"]);
    let mut u = staff_update(ben);
    u.skills = Some(vec![String::new()]);
    f.refuse(&ADMIN, Command::StaffUpdate(u), Invalid, &["`skills`"]);
    // Anna is clocked in: her role stays until she clocks out.
    for presence_cmd in [None, Some(take_break(anna))] {
        if let Some(cmd) = presence_cmd {
            f.run(&ADMIN, cmd);
        }
        let mut u = staff_update(anna);
        u.role = Some(Role::Cashier);
        f.refuse(
            &ADMIN,
            Command::StaffUpdate(u),
            Conflict,
            &["Anna", "clock out"],
        );
    }
    // Same role is no change.
    let mut u = staff_update(anna);
    u.role = Some(Role::Therapist);
    f.run(&ADMIN, Command::StaffUpdate(u));
    // Deactivated: nothing more.
    f.run(&ADMIN, Command::StaffDeactivate(StaffRef { staff_id: ben }));
    let mut u = staff_update(ben);
    u.name = Some("Benjamin".into());
    f.refuse(
        &ADMIN,
        Command::StaffUpdate(u),
        Conflict,
        &["Ben", "deactivated"],
    );
}

#[test]
fn deactivate_in_every_presence() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 0);
    let _room = f.add_room("Lotus", 1);
    let _room2 = f.add_room("Jade", 1);
    let off = f.add_staff("Off", Role::Therapist, &[]);
    let available = f.add_therapist("Avail", &[]);
    let on_break = f.add_therapist("Pause", &[]);
    f.run(&ADMIN, take_break(on_break));
    let called = f.add_therapist("Called", &[]);
    let in_session = f.add_therapist("Busy", &[]);
    let v1 = f.add_visit("V1", &[thai]);
    let v2 = f.add_visit("V2", &[thai]);
    f.call_to(v1, called, _room);
    f.call_to(v2, in_session, _room2);
    f.start(v2);
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    f.run(&ADMIN, session_open(available, "tok-a"));
    f.run(&ADMIN, session_open(cashier, "tok-c"));

    for who in [called, in_session] {
        let name = f.staff(who).name.clone();
        f.refuse(
            &ADMIN,
            Command::StaffDeactivate(StaffRef { staff_id: who }),
            Conflict,
            &[&name, "finish or undo"],
        );
    }
    for who in [off, available, on_break, cashier] {
        f.run(&ADMIN, Command::StaffDeactivate(StaffRef { staff_id: who }));
        let s = f.staff(who);
        assert!(!s.active);
        assert_eq!(s.presence, Presence::Off);
        f.refuse(
            &ADMIN,
            Command::StaffDeactivate(StaffRef { staff_id: who }),
            Conflict,
            &["already"],
        );
    }
    assert!(f.state.sessions.is_empty(), "sessions end with the member");
    f.refuse(
        &ADMIN,
        Command::StaffDeactivate(StaffRef { staff_id: 999 }),
        NotFound,
        &[],
    );
    // A deactivated therapist leaves the rotation and cannot be asked for.
    let mut create = f.new_visit("Wanda", &[thai]);
    create.requested_therapist_id = Some(available);
    f.refuse(
        &ADMIN,
        Command::VisitCreate(create),
        Invalid,
        &["`requested_therapist_id`", "not an active therapist"],
    );
    assert!(!crate::domain::rotation::rotation(&f.state, f.now.day).contains(&available));
}

#[test]
fn sessions_open_and_close() {
    let mut f = Floor::new();
    let anna = f.add_staff("Anna", Role::Cashier, &[]);
    let d = f.run(&ADMIN, session_open(anna, "tok"));
    assert_eq!(d.reply["role"], "cashier");
    let s = &f.state.sessions["tok"];
    assert_eq!(s.expires_at, f.now.ms + f.rules.session_ttl_ms);
    assert_eq!(s.role, Role::Cashier);
    f.run(
        &ADMIN,
        Command::SessionClose {
            token_hash: "tok".into(),
        },
    );
    assert!(f.state.sessions.is_empty());
    f.refuse(
        &ADMIN,
        Command::SessionClose {
            token_hash: "tok".into(),
        },
        NotFound,
        &[],
    );
    f.refuse(&ADMIN, session_open(999, "x"), NotFound, &[]);
    f.run(
        &ADMIN,
        Command::StaffDeactivate(StaffRef { staff_id: anna }),
    );
    f.refuse(
        &ADMIN,
        session_open(anna, "tok2"),
        Forbidden,
        &["deactivated"],
    );
}

// ---- devices ----

#[test]
fn pair_and_revoke_devices() {
    let mut f = Floor::new();
    let d = f.run(
        &ADMIN,
        Command::DevicePair(DevicePair {
            role: Role::Monitor,
            name: "Lobby".into(),
            token_hash: "device-hash".into(),
        }),
    );
    let id = f.state.counters.next_id - 1;
    assert_eq!(d.reply["device"]["name"], "Lobby");
    assert!(!d.reply.to_string().contains("device-hash"));
    let dev = &f.state.devices[&id];
    assert_eq!(
        (dev.role, dev.revoked, dev.paired_at),
        (Role::Monitor, false, f.now.ms)
    );
    let revoke = Command::DeviceRevoke(DeviceRef { device_id: id });
    f.run(&ADMIN, revoke.clone());
    assert!(f.state.devices[&id].revoked);
    f.refuse(&ADMIN, revoke, Conflict, &["Lobby", "already revoked"]);
    f.refuse(
        &ADMIN,
        Command::DeviceRevoke(DeviceRef { device_id: 999 }),
        NotFound,
        &[],
    );
}

#[test]
fn pair_refusals() {
    let mut f = Floor::new();
    for role in [Role::Admin, Role::Cashier, Role::Therapist, Role::Customer] {
        f.refuse(
            &ADMIN,
            Command::DevicePair(DevicePair {
                role,
                name: "Lobby".into(),
                token_hash: "h".into(),
            }),
            Invalid,
            &["`role`"],
        );
    }
    f.refuse(
        &ADMIN,
        Command::DevicePair(DevicePair {
            role: Role::Monitor,
            name: "".into(),
            token_hash: "h".into(),
        }),
        Invalid,
        &["`name`"],
    );
    f.refuse(
        &ADMIN,
        Command::DevicePair(DevicePair {
            role: Role::Monitor,
            name: "Lobby".into(),
            token_hash: String::new(),
        }),
        Invalid,
        &["token"],
    );
}

// ---- services ----

#[test]
fn create_a_service() {
    let mut f = Floor::new();
    let mut c = new_service(" Hot stone ", 90, 15);
    c.price_cents = 12_345;
    c.skill = Some(" hot-stone ".into());
    c.turn_weight = 1.5;
    let d = f.run(&ADMIN, Command::ServiceCreate(c));
    let id = f.state.counters.next_id - 1;
    let s = f.service(id);
    assert_eq!(s.name, "Hot stone");
    assert_eq!(
        (s.duration_min, s.cleanup_min, s.price_cents),
        (90, 15, 12_345)
    );
    assert_eq!(s.skill.as_deref(), Some("hot-stone"));
    assert_eq!(s.turn_weight, Turns(1_500));
    assert!(s.active);
    assert_eq!(d.reply["service"]["price_cents"], 12_345);
    // An empty skill is no skill; limits are inclusive.
    let mut c = new_service("Quick", 1, 240);
    c.skill = Some("  ".into());
    c.price_cents = 10_000_000;
    c.turn_weight = 10.0;
    f.run(&ADMIN, Command::ServiceCreate(c));
    let id = f.state.counters.next_id - 1;
    assert_eq!(f.service(id).skill, None);
    let mut c = new_service("Free", 600, 0);
    c.price_cents = 0;
    c.turn_weight = 0.0;
    f.run(&ADMIN, Command::ServiceCreate(c));
}

#[test]
fn turn_weight_defaults_to_one_on_the_wire() {
    let cmd = Command::decode(
        "service.create",
        serde_json::json!({"name": "Thai", "duration_min": 60, "price_cents": 4000}),
    )
    .unwrap();
    let Command::ServiceCreate(c) = cmd else {
        panic!()
    };
    assert_eq!((c.turn_weight, c.cleanup_min, c.skill), (1.0, 0, None));
}

fn service_field_refusals() -> Vec<(ServiceCreate, &'static str)> {
    let base = new_service("Thai", 60, 10);
    let with = |f: &dyn Fn(&mut ServiceCreate)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    vec![
        (with(&|c| c.name = "".into()), "`name`"),
        (with(&|c| c.duration_min = 0), "`duration_min`"),
        (with(&|c| c.duration_min = 601), "`duration_min`"),
        (with(&|c| c.cleanup_min = 241), "`cleanup_min`"),
        (with(&|c| c.price_cents = -1), "`price_cents`"),
        (with(&|c| c.price_cents = 10_000_001), "`price_cents`"),
        (with(&|c| c.turn_weight = -0.5), "`turn_weight`"),
        (with(&|c| c.turn_weight = 10.5), "`turn_weight`"),
        (with(&|c| c.turn_weight = f64::NAN), "`turn_weight`"),
        (with(&|c| c.turn_weight = f64::INFINITY), "`turn_weight`"),
        (with(&|c| c.skill = Some("s".repeat(33))), "`skill`"),
    ]
}

#[test]
fn create_service_refusals() {
    let mut f = Floor::new();
    for (c, field) in service_field_refusals() {
        f.refuse(&ADMIN, Command::ServiceCreate(c), Invalid, &[field]);
    }
    f.add_service("Thai", 60, 10);
    f.refuse(&ADMIN, service_create("THAI", 30, 0), Conflict, &["THAI"]);
}

#[test]
fn update_a_service() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 10);
    let mut u = service_update(thai);
    u.name = Some("Thai deluxe".into());
    u.duration_min = Some(75);
    u.price_cents = Some(9_900);
    u.skill = Some(Some("thai".into()));
    u.turn_weight = Some(2.0);
    f.run(&ADMIN, Command::ServiceUpdate(u));
    let s = f.service(thai);
    assert_eq!(
        (
            s.name.as_str(),
            s.duration_min,
            s.cleanup_min,
            s.price_cents
        ),
        ("Thai deluxe", 75, 10, 9_900)
    );
    assert_eq!(
        (s.skill.as_deref(), s.turn_weight),
        (Some("thai"), Turns(2_000))
    );
    // `null` clears the skill, absent keeps it.
    f.run(&ADMIN, Command::ServiceUpdate(service_update(thai)));
    assert_eq!(f.service(thai).skill.as_deref(), Some("thai"));
    let mut u = service_update(thai);
    u.skill = Some(None);
    f.run(&ADMIN, Command::ServiceUpdate(u));
    assert_eq!(f.service(thai).skill, None);
}

#[test]
fn a_price_change_does_not_change_visits_already_created() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 10);
    let v = f.add_visit("Vera", &[thai]);
    let mut u = service_update(thai);
    u.price_cents = Some(1);
    u.duration_min = Some(5);
    f.run(&ADMIN, Command::ServiceUpdate(u));
    assert_eq!(f.visit(v).services_cents, 5_000);
    assert_eq!(f.visit(v).service_minutes, 60);
}

#[test]
fn update_service_refusals() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 10);
    let _swedish = f.add_service("Swedish", 60, 10);
    f.refuse(
        &ADMIN,
        Command::ServiceUpdate(service_update(999)),
        NotFound,
        &["999"],
    );
    let mut u = service_update(thai);
    u.name = Some("swedish".into());
    f.refuse(&ADMIN, Command::ServiceUpdate(u), Conflict, &["swedish"]);
    for (c, field) in service_field_refusals() {
        let u = ServiceUpdate {
            service_id: thai,
            name: Some(c.name),
            duration_min: Some(c.duration_min),
            cleanup_min: Some(c.cleanup_min),
            price_cents: Some(c.price_cents),
            skill: Some(c.skill),
            turn_weight: Some(c.turn_weight),
            tax_rate_bp: None,
        };
        f.refuse(&ADMIN, Command::ServiceUpdate(u), Invalid, &[field]);
    }
    f.run(
        &ADMIN,
        Command::ServiceRemove(ServiceRef { service_id: thai }),
    );
    let mut u = service_update(thai);
    u.price_cents = Some(1);
    f.refuse(&ADMIN, Command::ServiceUpdate(u), Conflict, &["removed"]);
}

#[test]
fn remove_a_service() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 10);
    let waiting = f.add_visit("Vera", &[thai]);
    let remove = Command::ServiceRemove(ServiceRef { service_id: thai });
    let d = f.run(&ADMIN, remove.clone());
    assert_eq!(d.reply["service_id"], thai);
    assert!(
        !f.service(thai).active,
        "kept for history, no longer offered"
    );
    f.refuse(&ADMIN, remove, Conflict, &["already removed"]);
    f.refuse(
        &ADMIN,
        Command::ServiceRemove(ServiceRef { service_id: 999 }),
        NotFound,
        &[],
    );
    let create = f.new_visit("Wanda", &[thai]);
    f.refuse(
        &ADMIN,
        Command::VisitCreate(create),
        Invalid,
        &["`service_ids`", "Thai", "no longer offered"],
    );
    // A visit that already has it is still served.
    f.add_room("Lotus", 1);
    f.add_therapist("Anna", &[]);
    f.serve(waiting);
    assert_eq!(f.visit_state(waiting), VisitState::AwaitingPayment);
    // Its name is free again.
    f.add_service("Thai", 45, 0);
}
