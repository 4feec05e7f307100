//! The therapist state machine: clock in, clock out, break, resume from
//! every presence, by every kind of staff.

use super::harness::*;
use crate::domain::command::TherapistRef;
use crate::domain::state::Presence::{self, *};
use crate::domain::{Actor, Command, ErrorCode::*, Event, Role};

/// A floor with one therapist in each presence; returns (floor, ids by presence).
fn one_in_each_presence() -> (Floor, Vec<(Presence, u64)>) {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 5);
    let lotus = f.add_room("Lotus", 1);
    let jade = f.add_room("Jade", 1);
    let off = f.add_staff("Olli", Role::Therapist, &[]);
    let available = f.add_therapist("Ava", &[]);
    let on_break = f.add_therapist("Bree", &[]);
    f.run(&ADMIN, take_break(on_break));
    let called = f.add_therapist("Cal", &[]);
    let in_session = f.add_therapist("Ines", &[]);
    let v1 = f.add_visit("Vic", &[thai]);
    f.call_to(v1, called, lotus);
    let v2 = f.add_visit("Wes", &[thai]);
    f.call_to(v2, in_session, jade);
    f.start(v2);
    let all = vec![
        (Off, off),
        (Available, available),
        (Break, on_break),
        (Called, called),
        (InSession, in_session),
    ];
    for (p, id) in &all {
        assert_eq!(f.presence(*id), *p);
    }
    (f, all)
}

#[test]
fn every_presence_command_from_every_presence() {
    type Make = fn(u64) -> Command;
    let commands: [(&str, Make); 4] = [
        ("therapist.clock_in", clock_in),
        ("therapist.clock_out", clock_out),
        ("therapist.break", take_break),
        ("therapist.resume", resume),
    ];
    // (from, command) -> the presence after, or None when refused.
    let want = |from: Presence, cmd: &str| -> Option<Presence> {
        match (from, cmd) {
            (Off, "therapist.clock_in") => Some(Available),
            (Available | Break, "therapist.clock_out") => Some(Off),
            (Available, "therapist.break") => Some(Break),
            (Break, "therapist.resume") => Some(Available),
            _ => None,
        }
    };
    for (name, make) in commands {
        for from in [Off, Available, Break, Called, InSession] {
            // By an admin, a cashier, and the therapist themself.
            for by in ["admin", "cashier", "self"] {
                let (mut f, all) = one_in_each_presence();
                let id = all.iter().find(|(p, _)| *p == from).unwrap().1;
                let cashier = f.add_staff("Cash", Role::Cashier, &[]);
                let actor = match by {
                    "admin" => ADMIN,
                    "cashier" => f.as_staff(cashier),
                    _ => f.as_staff(id),
                };
                // The therapist may leave out their id.
                let cmd = if by == "self" {
                    let mut c = make(id);
                    if let Command::ClockIn(a)
                    | Command::ClockOut(a)
                    | Command::Break(a)
                    | Command::Resume(a) = &mut c
                    {
                        a.therapist_id = None;
                    }
                    c
                } else {
                    make(id)
                };
                f.advance(1);
                match want(from, name) {
                    Some(to) => {
                        let d = f.run(&actor, cmd);
                        let t = f.staff(id);
                        assert_eq!(t.presence, to, "{name} from {from:?} by {by}");
                        assert_eq!(t.presence_since, f.now.ms);
                        assert_eq!(d.reply["therapist"]["status"], to.as_str());
                        let ev = f.log.last().unwrap();
                        assert!(matches!(
                            ev.event,
                            Event::PresenceChanged { therapist_id, presence }
                                if therapist_id == id && presence == to
                        ));
                    }
                    None => {
                        let words: Vec<&str> = match (from, name) {
                            (Called, "therapist.clock_out") => {
                                vec!["cannot clock out", "called to a visit", "A-001"]
                            }
                            (InSession, "therapist.clock_out") => {
                                vec!["cannot clock out", "in a session", "A-002"]
                            }
                            _ => vec![name],
                        };
                        f.refuse(&actor, cmd, Conflict, &words);
                    }
                }
            }
        }
    }
}

#[test]
fn clock_in_sets_the_rotation_keys_and_clock_out_clears_them() {
    let mut f = Floor::new();
    let anna = f.add_staff("Anna", Role::Therapist, &[]);
    assert_eq!(f.staff(anna).clocked_in_at, None);
    f.advance(5);
    f.clock_in(anna);
    let t = f.staff(anna);
    assert_eq!(t.clocked_in_at, Some(f.now.ms));
    assert_eq!(t.available_since, Some(f.now.ms));
    f.advance(5);
    f.run(&ADMIN, take_break(anna));
    assert_eq!(f.staff(anna).available_since, Some(f.now.ms - 5 * MIN));
    f.advance(5);
    f.run(&ADMIN, resume(anna));
    let t = f.staff(anna);
    assert_eq!(t.clocked_in_at, Some(f.now.ms - 10 * MIN));
    assert_eq!(
        t.available_since,
        Some(f.now.ms),
        "back from a break: at the tail"
    );
    f.run(&ADMIN, clock_out(anna));
    let t = f.staff(anna);
    assert_eq!((t.clocked_in_at, t.available_since), (None, None));
}

#[test]
fn who_may_change_a_presence() {
    let (mut f, all) = one_in_each_presence();
    let ava = all[1].1;
    let bree = all[2].1;
    let ava_actor = staff_actor(ava, Role::Therapist);
    // A therapist only for themself, whatever the command.
    for cmd in [
        clock_in(bree),
        clock_out(bree),
        take_break(bree),
        resume(bree),
    ] {
        f.refuse(&ava_actor, cmd, Forbidden, &["own"]);
    }
    // Office staff must say who.
    let cashier = f.add_staff("Cash", Role::Cashier, &[]);
    let cash = f.as_staff(cashier);
    for actor in [ADMIN, cash.clone()] {
        f.refuse(
            &actor,
            Command::Break(TherapistRef { therapist_id: None }),
            Invalid,
            &["`therapist_id`"],
        );
    }
    // Only therapists have a presence.
    f.refuse(
        &ADMIN,
        clock_in(cashier),
        Invalid,
        &["`therapist_id`", "not an active therapist"],
    );
    f.refuse(&ADMIN, clock_in(999), NotFound, &["999"]);
    // A cashier clocking in as themself (no id) is refused: not a therapist.
    f.refuse(
        &cash,
        Command::ClockIn(TherapistRef { therapist_id: None }),
        Invalid,
        &["`therapist_id`"],
    );
    // Monitors, customers and the hub's timers may not.
    for actor in [
        Actor::Device { id: 1 },
        Actor::Customer { visit_id: 1 },
        Actor::System,
    ] {
        f.refuse(&actor, clock_out(ava), Forbidden, &[]);
    }
    // A deactivated therapist cannot clock in.
    let olli = all[0].1;
    f.run(
        &ADMIN,
        Command::StaffDeactivate(crate::domain::command::StaffRef { staff_id: olli }),
    );
    f.refuse(
        &ADMIN,
        clock_in(olli),
        Invalid,
        &["not an active therapist"],
    );
}

#[test]
fn clock_out_after_finishing_is_allowed() {
    let (mut f, all) = one_in_each_presence();
    let ines = all[4].1;
    let visit = f.staff(ines).current_visit.unwrap();
    f.refuse(&ADMIN, clock_out(ines), Conflict, &["in a session"]);
    f.finish(visit);
    assert_eq!(f.presence(ines), Available);
    f.run(&ADMIN, clock_out(ines));
    assert_eq!(f.presence(ines), Off);
}

#[test]
fn clock_out_after_an_undone_call_is_allowed() {
    let (mut f, all) = one_in_each_presence();
    let cal = all[3].1;
    let visit = f.staff(cal).current_visit.unwrap();
    f.run(&ADMIN, undo(visit));
    f.run(&staff_actor(cal, Role::Therapist), clock_out(cal));
    assert_eq!(f.presence(cal), Off);
}
