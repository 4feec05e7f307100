//! Who sees what: the role-filtered snapshots and the queue estimate.

use serde_json::Value;

use super::harness::*;
use crate::domain::state::RoomStatus;
use crate::domain::views::{self, Viewer};

struct Lobby {
    f: Floor,
    anna: u64,
    ben: u64,
    lotus: u64,
    /// Called to Anna, with phone and notes.
    carla: u64,
    /// Waiting, asked for Ben, with phone and notes.
    dora: u64,
    /// Waiting, no request, with phone and notes.
    ella: u64,
}

fn lobby() -> Lobby {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 10);
    let lotus = f.add_room("Lotus", 1);
    f.add_room("Jade", 1);
    let anna = f.add_therapist("Anna", &[]);
    let ben = f.add_therapist("Ben", &[]);
    let mut c = f.new_visit("Carla Customer", &[thai]);
    c.phone = Some("+1-555-0000001".into());
    c.notes = Some("NOTE-carla".into());
    let carla = f.add_visit_with(c);
    let mut c = f.new_visit("Dora Customer", &[thai]);
    c.phone = Some("+1-555-0000002".into());
    c.notes = Some("NOTE-dora".into());
    c.requested_therapist_id = Some(ben);
    let dora = f.add_visit_with(c);
    let mut c = f.new_visit("Ella Customer", &[thai]);
    c.phone = Some("+1-555-0000003".into());
    c.notes = Some("NOTE-ella".into());
    let ella = f.add_visit_with(c);
    f.call_to(carla, anna, lotus);
    Lobby {
        f,
        anna,
        ben,
        lotus,
        carla,
        dora,
        ella,
    }
}

fn text(viewer: Viewer, f: &Floor) -> String {
    views::snapshot(viewer, &f.state, f.now).to_string()
}

#[test]
fn no_view_holds_a_secret() {
    let l = lobby();
    let f = &l.f;
    for viewer in [
        Viewer::Office,
        Viewer::Monitor,
        Viewer::Therapist(l.anna),
        Viewer::Customer(l.carla),
    ] {
        let t = text(viewer, f);
        assert!(!t.contains("argon2"), "{viewer:?}: a PIN hash");
        assert!(!t.contains("token-hash"), "{viewer:?}: a token hash");
    }
}

#[test]
fn the_office_sees_everything() {
    let l = lobby();
    let t = text(Viewer::Office, &l.f);
    for word in [
        "Carla Customer",
        "Dora Customer",
        "+1-555-0000003",
        "NOTE-ella",
    ] {
        assert!(t.contains(word), "{word} missing");
    }
    let snap = views::snapshot(Viewer::Office, &l.f.state, l.f.now);
    assert_eq!(snap["seq"], l.f.state.seq());
    assert_eq!(snap["server_time"], l.f.now.ms);
    assert!(snap["staff"].is_array());
    assert!(snap["devices"].is_array());
    assert_eq!(snap["rotation"], serde_json::json!([l.ben, l.anna]));
}

#[test]
fn a_monitor_sees_numbers_never_names() {
    let l = lobby();
    let t = text(Viewer::Monitor, &l.f);
    for word in ["Customer", "+1-555", "NOTE-", "Anna", "Ben"] {
        assert!(!t.contains(word), "a monitor sees {word}: {t}");
    }
    let snap = views::snapshot(Viewer::Monitor, &l.f.state, l.f.now);
    assert!(t.contains("A-001") && t.contains("A-003"));
    assert_eq!(snap["therapists_available"], 1);
    assert!(snap.get("therapists").is_none());
    assert!(snap.get("staff").is_none());
    for v in snap["visits"].as_array().unwrap() {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["id", "number", "room_id", "state"]);
    }
    for room in snap["rooms"].as_array().unwrap() {
        assert!(
            room.get("visits").is_none(),
            "which visit is where is not shown"
        );
    }
    // Positions and estimates for the waiting visits.
    let queue = snap["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(queue[0]["position"], 1);
    assert_eq!(queue[1]["number"], "A-003");
    assert!(queue[0].get("customer_name").is_none());
}

#[test]
fn a_customer_sees_their_own_visit_only() {
    let l = lobby();
    let snap = views::snapshot(Viewer::Customer(l.ella), &l.f.state, l.f.now);
    let t = snap.to_string();
    assert!(t.contains("Ella Customer"));
    assert!(t.contains("+1-555-0000003"), "their own phone");
    for word in [
        "Carla",
        "Dora",
        "+1-555-0000001",
        "+1-555-0000002",
        "NOTE-",
        "Lotus",
    ] {
        assert!(!t.contains(word), "customer Ella sees {word}: {t}");
    }
    assert_eq!(snap["visit"]["number"], "A-003");
    assert!(snap["visit"].get("notes").is_none(), "no staff notes");
    let queue = snap["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 1, "only their own place");
    assert_eq!(queue[0]["position"], 2);
    assert!(snap.get("rooms").is_none());
    assert_eq!(snap["room"], Value::Null);
    // Once called, they see their room's name.
    let snap = views::snapshot(Viewer::Customer(l.carla), &l.f.state, l.f.now);
    assert_eq!(snap["room"]["name"], "Lotus");
    assert_eq!(snap["queue"].as_array().unwrap().len(), 0);
    // A customer token for a visit that is gone shows nothing.
    let snap = views::snapshot(Viewer::Customer(999), &l.f.state, l.f.now);
    assert_eq!(snap["visit"], Value::Null);
    assert!(!snap.to_string().contains("Customer"));
}

#[test]
fn a_therapist_sees_phone_and_notes_of_their_own_visits_only() {
    let l = lobby();
    let anna = text(Viewer::Therapist(l.anna), &l.f);
    assert!(anna.contains("+1-555-0000001") && anna.contains("NOTE-carla"));
    for word in ["+1-555-0000002", "NOTE-dora", "+1-555-0000003", "NOTE-ella"] {
        assert!(!anna.contains(word), "Anna sees {word}");
    }
    // Ben was asked for by Dora: he sees her details before the call.
    let ben = text(Viewer::Therapist(l.ben), &l.f);
    assert!(ben.contains("+1-555-0000002") && ben.contains("NOTE-dora"));
    for word in [
        "+1-555-0000001",
        "NOTE-carla",
        "+1-555-0000003",
        "NOTE-ella",
    ] {
        assert!(!ben.contains(word), "Ben sees {word}");
    }
    // Names, services and the rotation are shared on the floor.
    assert!(ben.contains("Carla Customer") && ben.contains("Ella Customer"));
    let snap = views::snapshot(Viewer::Therapist(l.ben), &l.f.state, l.f.now);
    assert!(snap.get("staff").is_none() && snap.get("devices").is_none());
    assert!(snap["rotation"].is_array());
}

#[test]
fn the_queue_estimates_waits_from_sessions_and_durations() {
    let mut l = lobby();
    // Anna starts Carla's 60-minute session; Ben is free.
    l.f.start(l.carla);
    l.f.advance(20);
    let q = views::queue(&l.f.state, l.f.now);
    assert_eq!(q.len(), 2);
    // Dora waits for Ben, who is free: now.
    assert_eq!(
        (q[0].visit_id, q[0].position, q[0].eta_min),
        (l.dora, 1, Some(0))
    );
    // Ella: Ben is taken by Dora for 60 min, Anna is free in 40: Anna.
    assert_eq!(
        (q[1].visit_id, q[1].position, q[1].eta_min),
        (l.ella, 2, Some(40))
    );
    // Ben on a break: Dora has nobody to wait for.
    l.f.run(&ADMIN, take_break(l.ben));
    let q = views::queue(&l.f.state, l.f.now);
    assert_eq!(q[0].eta_min, None);
    assert_eq!(q[1].eta_min, Some(40));
}

#[test]
fn rooms_say_when_they_are_free() {
    let mut l = lobby();
    let now = l.f.now.ms;
    let free = |f: &Floor, room| views::room_free_in_min(f.room(room), &f.state, f.now.ms);
    // Held (Carla called): her 60 minutes plus 10 of cleanup.
    assert_eq!(free(&l.f, l.lotus), Some(70));
    l.f.start(l.carla);
    l.f.advance(25);
    assert_eq!(free(&l.f, l.lotus), Some(45));
    l.f.finish(l.carla);
    assert_eq!(free(&l.f, l.lotus), Some(10));
    l.f.advance_ms(MIN / 2);
    assert_eq!(free(&l.f, l.lotus), Some(10), "rounded up");
    l.f.run(&ADMIN, set_status(l.lotus, RoomStatus::Available, None));
    assert_eq!(free(&l.f, l.lotus), Some(0));
    l.f.run(
        &ADMIN,
        set_status(l.lotus, RoomStatus::OutOfService, Some("x")),
    );
    assert_eq!(free(&l.f, l.lotus), None);
    assert!(l.f.now.ms > now);
}
