//! Returning customers (#16): records and their validation, search,
//! linking from check-in and the book, `visit.update`, merge, forget (and
//! the report totals it must not move), the views, the sealing helpers, and
//! a seeded random mix of all of it with the invariants after every step.

use serde_json::{json, Value};

use super::harness::*;
use crate::domain::customers::{
    self, put_personal_event, put_personal_record, take_personal_event, take_personal_record,
    FORGOTTEN,
};
use crate::domain::report::day_report;
use crate::domain::state::{Record, VisitState};
use crate::domain::views::{self, Viewer};
use crate::domain::{Actor, Command, ErrorCode, Event, Id, Role};

fn cmd(name: &str, args: Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn day_of(ms: i64) -> u32 {
    crate::domain::book::time::local_of(&jiff::tz::TimeZone::UTC, ms).0
}

fn search(f: &Floor, q: &str) -> Vec<String> {
    customers::search(&f.state, q)
        .into_iter()
        .map(|id| f.state.customers[&id].name.clone())
        .collect()
}

fn visit_for(f: &mut Floor, customer: Id, services: &[Id]) -> Id {
    let token = f.token();
    f.run(
        &ADMIN,
        cmd(
            "visit.create",
            json!({"customer_id": customer, "service_ids": services}),
        )
        .with_token(token),
    );
    f.state.visits.keys().copied().max().expect("a visit")
}

trait WithToken {
    fn with_token(self, token: String) -> Command;
}

impl WithToken for Command {
    fn with_token(mut self, token: String) -> Command {
        match &mut self {
            Command::VisitCreate(c) => c.token_hash = token,
            Command::BookingCreate(c) => c.token_hash = token,
            _ => {}
        }
        self
    }
}

#[test]
fn bad_records_are_invalid_naming_the_field_and_change_nothing() {
    let mut f = Floor::new();
    let c = f.add_customer("Maria", "600 111 222", "");
    for (args, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"name": "Ann", "phone": "12345"}), "phone"),
        (json!({"name": "Ann", "phone": "call me"}), "phone"),
        (json!({"name": "Ann", "email": "ann.example.com"}), "email"),
        (json!({"name": "Ann", "notes": "x".repeat(2001)}), "notes"),
    ] {
        f.refuse(
            &ADMIN,
            cmd("customer.create", args),
            ErrorCode::Invalid,
            &[field],
        );
    }
    f.refuse(
        &ADMIN,
        cmd(
            "customer.update",
            json!({"customer_id": c, "phone": "1-2-3"}),
        ),
        ErrorCode::Invalid,
        &["phone"],
    );
    f.refuse(
        &ADMIN,
        cmd("customer.update", json!({"customer_id": 999})),
        ErrorCode::NotFound,
        &["999"],
    );
    // 2,000 characters of notes are fine, and the phone is kept as digits.
    let ok = f.run(
        &ADMIN,
        cmd(
            "customer.create",
            json!({"name": "Ann", "phone": "+34 (600) 999-000", "notes": "x".repeat(2000)}),
        ),
    );
    assert_eq!(ok.reply["customer"]["phone"], "34600999000");
}

#[test]
fn the_same_phone_is_offered_not_silently_duplicated() {
    let mut f = Floor::new();
    let maria = f.add_customer("Maria", "600 111 222", "");
    f.refuse(
        &ADMIN,
        cmd(
            "customer.create",
            json!({"name": "Maria R", "phone": "600111222"}),
        ),
        ErrorCode::Conflict,
        &[&maria.to_string(), "duplicate"],
    );
    let thai = f.add_service("Thai", 60, 0);
    // A walk-in with that phone: the visit is made, the record offered.
    let token = f.token();
    let d = f.run(
        &ADMIN,
        cmd(
            "visit.create",
            json!({"customer_name": "Maria", "phone": "600-111-222", "service_ids": [thai]}),
        )
        .with_token(token),
    );
    assert_eq!(d.reply["customer_matches"][0]["id"], maria);
    let v = d.reply["visit"]["id"].as_u64().expect("visit id");
    assert_eq!(d.reply["visit"]["customer_id"], Value::Null);
    // The desk takes the offer: the visit is linked by an edit.
    f.run(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": v, "customer_id": maria})),
    );
    assert_eq!(f.state.customer_of_visit(v).map(|c| c.id), Some(maria));
}

#[test]
fn search_by_word_prefix_accents_phone_fragments_ranked_and_at_most_20() {
    let mut f = Floor::new();
    f.add_customer("José Álvarez", "600 100 200", "");
    f.add_customer("Josefina Ruiz", "611 222 333", "");
    f.add_customer("Ana María Jos", "622 333 1234", "");
    f.add_customer("Zoë Müller", "633 444 555", "");
    f.add_customer("Marta Joss", "644 555 666", "");
    // Any word's prefix, case and accents folded.
    assert_eq!(search(&f, "zoe"), ["Zoë Müller"]);
    assert_eq!(search(&f, "MUL"), ["Zoë Müller"]);
    assert_eq!(search(&f, "alv"), ["José Álvarez"]);
    // Whole word first, then a first-name start, then the rest.
    assert_eq!(
        search(&f, "jos"),
        [
            "Ana María Jos",
            "José Álvarez",
            "Josefina Ruiz",
            "Marta Joss"
        ]
    );
    assert_eq!(search(&f, "jose"), ["José Álvarez", "Josefina Ruiz"]);
    // Every word must match.
    assert_eq!(search(&f, "maria jo"), ["Ana María Jos"]);
    assert!(search(&f, "xyz").is_empty());
    // Words longer than the index keeps inline are still found and ranked.
    f.add_customer("Hubert Wolfeschlegelsteinhausen", "655 000 111", "");
    f.add_customer("Ina Wolfeschlegelsteinhauser", "655 000 222", "");
    assert_eq!(
        search(&f, "wolfeschlegelsteinhausen"),
        ["Hubert Wolfeschlegelsteinhausen"]
    );
    assert_eq!(search(&f, "wolfesch").len(), 2);
    assert!(search(&f, "").is_empty());
    // Phone digits anywhere; those ending with them first.
    assert_eq!(search(&f, "1234"), ["Ana María Jos"]);
    assert_eq!(search(&f, "333"), ["Josefina Ruiz", "Ana María Jos"]);
    assert_eq!(search(&f, "+34"), Vec::<String>::new());
    // At most 20.
    for i in 0..30 {
        f.add_customer(&format!("Jo Twin{i}"), &format!("700 000 {i:03}"), "");
    }
    assert_eq!(search(&f, "jo").len(), 20);
    assert_eq!(search(&f, "700").len(), 20);
    // Through the command, and only the office may ask.
    let d = f.run(&ADMIN, cmd("customer.search", json!({"q": "zoe"})));
    assert_eq!(d.reply["customers"][0]["name"], "Zoë Müller");
    assert!(d.events.is_empty());
    let t = f.add_therapist("Tess", &[]);
    f.refuse(
        &staff_actor(t, Role::Therapist),
        cmd("customer.search", json!({"q": "zoe"})),
        ErrorCode::Forbidden,
        &[],
    );
}

#[test]
fn check_in_with_a_record_brings_the_notes_to_the_therapist_and_no_further() {
    let mut f = Floor::new();
    let tess = f.add_therapist("Tess", &[]);
    let otto = f.add_therapist("Otto", &[]);
    let lotus = f.add_room("Lotus", 1);
    let thai = f.add_service("Thai", 60, 0);
    let maria = f.add_customer("Maria", "600 111 222", "allergic to nut oils");
    let v = visit_for(&mut f, maria, &[thai]);
    assert_eq!(f.visit(v).customer_name, "Maria");
    assert_eq!(f.visit(v).phone.as_deref(), Some("600111222"));
    f.call_to(v, tess, lotus);
    let visit = f.visit(v).clone();
    let mine = views::visit_in(Viewer::Therapist(tess), &visit, &f.state).expect("own");
    assert_eq!(mine["customer"]["notes"], "allergic to nut oils");
    let desk = views::visit_in(Viewer::Office, &visit, &f.state).expect("office");
    assert_eq!(desk["customer"]["notes"], "allergic to nut oils");
    assert_eq!(desk["customer_id"], maria);
    let other = views::visit_in(Viewer::Therapist(otto), &visit, &f.state).expect("other");
    assert!(other.get("customer").is_none() && other.get("notes").is_none());
    let board = views::visit_in(Viewer::Monitor, &visit, &f.state).expect("board");
    assert!(!board.to_string().contains("Maria"));
    let own = views::visit_in(Viewer::Customer(v), &visit, &f.state).expect("own visit");
    assert!(!own.to_string().contains("nut oils"));
    assert!(views::visit_in(Viewer::Customer(v + 1), &visit, &f.state).is_none());
    // The customer record remembers the visit.
    assert_eq!(f.state.customers[&maria].visit_ids, vec![v]);
    assert_eq!(f.state.customers[&maria].last_visit_at, Some(f.now.ms));
    // A walk-in without a record still works.
    let w = f.add_visit("Lu", &[thai]);
    assert!(f.state.customer_of_visit(w).is_none());
    // A forgotten or unknown record cannot be checked in.
    let token = f.token();
    f.refuse(
        &ADMIN,
        cmd(
            "visit.create",
            json!({"customer_id": 999, "service_ids": [thai]}),
        )
        .with_token(token),
        ErrorCode::NotFound,
        &["customer_id"],
    );
}

#[test]
fn a_booking_for_a_record_links_its_visit_at_check_in() {
    let mut f = Floor::new();
    let tess = f.add_therapist("Tess", &[]);
    let jade = f.add_room("Jade", 1);
    let thai = f.add_service("Thai", 60, 0);
    f.run(
        &ADMIN,
        cmd(
            "schedule.set",
            json!({"therapist_id": tess, "date": "2026-11-26", "start": "08:00", "end": "20:00"}),
        ),
    );
    let maria = f.add_customer("Maria", "600 111 222", "nut oils");
    let token = f.token();
    let d = f.run(
        &ADMIN,
        cmd(
            "booking.create",
            json!({"start": "2026-11-26T12:00", "service_ids": [thai], "therapist_id": tess,
                   "room_id": jade, "customer_id": maria}),
        )
        .with_token(token),
    );
    let b = d.reply["booking"]["id"].as_u64().expect("booking");
    assert_eq!(d.reply["booking"]["customer"]["notes"], "nut oils");
    assert_eq!(f.state.customer_of_booking(b).map(|c| c.id), Some(maria));
    let d = f.run(&ADMIN, cmd("booking.check_in", json!({"booking_id": b})));
    let v = d.reply["visit"]["id"].as_u64().expect("visit");
    assert_eq!(f.state.customer_of_visit(v).map(|c| c.id), Some(maria));
    let h = f.run(
        &ADMIN,
        cmd("customer.history", json!({"customer_id": maria})),
    );
    assert_eq!(h.reply["visits"][0]["id"], v);
    assert_eq!(h.reply["bookings"][0]["id"], b);
}

#[test]
fn visit_edits_reprice_move_the_end_and_are_audited() {
    let mut f = Floor::new();
    let tess = f.add_therapist("Tess", &[]);
    let otto = f.add_therapist("Otto", &[]);
    let lotus = f.add_room("Lotus", 1);
    let thai = f.add_service("Thai", 60, 0);
    let foot = f.add_service("Foot", 30, 0);
    let v = f.add_visit("Vera", &[thai]);
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    let by = staff_actor(cashier, Role::Cashier);
    let before = f.visit(v).services_cents;
    f.run(
        &by,
        cmd(
            "visit.update",
            json!({"visit_id": v, "service_ids": [thai, foot], "customer_name": "Vera B",
                   "requested_therapist_id": otto}),
        ),
    );
    let after = f.visit(v).clone();
    assert_eq!(after.customer_name, "Vera B");
    assert_eq!(after.service_minutes, 90);
    assert!(after.services_cents > before);
    assert_eq!(after.requested_therapist, Some(otto));
    let edits = &f.state.visit_edits[&v];
    assert_eq!(edits[0].by, Some(cashier));
    assert_eq!(edits[0].at, f.now.ms);
    assert_eq!(
        edits[0].changed,
        ["customer_name", "service_ids", "requested_therapist_id"]
    );
    // The requested therapist only while waiting; services while on the floor.
    f.run(
        &ADMIN,
        cmd(
            "visit.update",
            json!({"visit_id": v, "requested_therapist_id": null}),
        ),
    );
    f.call_to(v, tess, lotus);
    f.refuse(
        &ADMIN,
        cmd(
            "visit.update",
            json!({"visit_id": v, "requested_therapist_id": otto}),
        ),
        ErrorCode::Conflict,
        &["waits"],
    );
    f.start(v);
    let started = f.visit(v).started_at.expect("started");
    f.run(
        &ADMIN,
        cmd(
            "visit.update",
            json!({"visit_id": v, "service_ids": [foot]}),
        ),
    );
    assert_eq!(f.visit(v).planned_end, Some(started + 30 * MIN));
    f.finish(v);
    f.refuse(
        &ADMIN,
        cmd(
            "visit.update",
            json!({"visit_id": v, "service_ids": [thai]}),
        ),
        ErrorCode::Conflict,
        &["finished"],
    );
    // The checkout charges the edited price.
    let _ = f.try_run(&ADMIN, &cmd("drawer.open", json!({"float_cents": 0})));
    let price = f.visit(v).services_cents;
    assert_eq!(price, f.service(foot).price_cents);
    f.refuse(
        &ADMIN,
        cmd(
            "visit.checkout",
            json!({"visit_id": v, "request_id": "old-price",
                   "payments": [{"method": "card", "amount_cents": before + price}]}),
        ),
        ErrorCode::Invalid,
        &[],
    );
    f.run(
        &ADMIN,
        cmd(
            "visit.checkout",
            json!({"visit_id": v, "request_id": "p", "payments": [{"method": "card", "amount_cents": price}]}),
        ),
    );
    f.refuse(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": v, "notes": "late"})),
        ErrorCode::Conflict,
        &["closed"],
    );
    let w = f.add_visit("Wes", &[thai]);
    f.run(
        &ADMIN,
        cmd("visit.void", json!({"visit_id": w, "reason": "test"})),
    );
    f.refuse(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": w, "notes": "late"})),
        ErrorCode::Conflict,
        &["voided"],
    );
    let x = f.add_visit("Xia", &[thai]);
    f.refuse(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": x, "customer_name": ""})),
        ErrorCode::Invalid,
        &["customer_name"],
    );
    f.refuse(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": x, "service_ids": []})),
        ErrorCode::Invalid,
        &["service_ids"],
    );
    // The edit shows in the visit's history for the office.
    let view = views::visit_in(Viewer::Office, f.visit(v), &f.state).expect("view");
    assert_eq!(view["edits"].as_array().map(Vec::len), Some(3));
}

fn paid_visit(f: &mut Floor, customer: Id, service: Id) -> Id {
    let v = visit_for(f, customer, &[service]);
    f.serve(v);
    let _ = f.try_run(&ADMIN, &cmd("drawer.open", json!({"float_cents": 0})));
    let total = f.visit(v).services_cents;
    f.run(
        &ADMIN,
        cmd(
            "visit.checkout",
            json!({"visit_id": v, "request_id": format!("pay-{v}"), "tip_cents": 300,
                   "payments": [{"method": "card", "amount_cents": total + 300}]}),
        ),
    );
    v
}

#[test]
fn merge_keeps_every_visit_and_amount_and_the_duplicate_is_gone() {
    let mut f = Floor::new();
    f.add_therapist("Tess", &[]);
    f.add_room("Lotus", 1);
    let thai = f.add_service("Thai", 60, 0);
    let a = f.add_customer("Maria Lopez", "600 111 222", "nut oils");
    let b = f.add_customer("María López", "600 111 223", "");
    let va = paid_visit(&mut f, a, thai);
    let vb = paid_visit(&mut f, b, thai);
    let vb2 = paid_visit(&mut f, b, thai);
    let history = |f: &mut Floor, id: Id| {
        f.run(&ADMIN, cmd("customer.history", json!({"customer_id": id})))
            .reply
    };
    let paid = |h: &Value| -> i64 {
        h["visits"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| v["paid_cents"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let total = paid(&history(&mut f, a)) + paid(&history(&mut f, b));
    assert!(total > 0);
    f.refuse(
        &ADMIN,
        cmd("customer.merge", json!({"customer_id": a, "into_id": a})),
        ErrorCode::Invalid,
        &["into_id"],
    );
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    f.refuse(
        &staff_actor(cashier, Role::Cashier),
        cmd("customer.merge", json!({"customer_id": b, "into_id": a})),
        ErrorCode::Forbidden,
        &[],
    );
    f.run(
        &ADMIN,
        cmd("customer.merge", json!({"customer_id": b, "into_id": a})),
    );
    assert!(!f.state.customers.contains_key(&b));
    let h = history(&mut f, a);
    let mut ids: Vec<u64> = h["visits"]
        .as_array()
        .expect("visits")
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![va, vb, vb2]);
    assert_eq!(paid(&h), total);
    assert_eq!(f.state.customers[&a].absorbed, vec![b]);
    for v in [va, vb, vb2] {
        assert_eq!(f.state.customer_of_visit(v).map(|c| c.id), Some(a));
    }
    f.refuse(
        &ADMIN,
        cmd("customer.merge", json!({"customer_id": b, "into_id": a})),
        ErrorCode::NotFound,
        &[],
    );
    assert_eq!(search(&f, "lop"), ["Maria Lopez"]);
}

#[test]
fn forget_blanks_every_copy_keeps_the_report_and_cannot_happen_twice() {
    let mut f = Floor::new();
    f.add_therapist("Tess", &[]);
    f.add_room("Lotus", 1);
    let thai = f.add_service("Thai", 60, 0);
    let maria = f.add_customer("Maria Secret", "600 111 222", "nut oils");
    let other = f.add_customer("Olga", "600 999 888", "");
    let v1 = paid_visit(&mut f, maria, thai);
    let v2 = visit_for(&mut f, maria, &[thai]);
    f.run(
        &ADMIN,
        cmd(
            "visit.update",
            json!({"visit_id": v2, "notes": "Maria likes it warm"}),
        ),
    );
    let o = paid_visit(&mut f, other, thai);
    let report = day_report(f.log.clone(), DAY1, day_of);
    // The forget comes the next day: the past day's report must not move.
    f.advance(23 * 60);
    f.next_day();
    f.refuse(
        &ADMIN,
        cmd(
            "customer.forget",
            json!({"customer_id": maria, "reason": " "}),
        ),
        ErrorCode::Invalid,
        &["reason"],
    );
    let d = f.run(
        &ADMIN,
        cmd(
            "customer.forget",
            json!({"customer_id": maria, "reason": "asked by email"}),
        ),
    );
    let Some(Event::CustomerForgotten {
        visit_ids, key_ids, ..
    }) = d.events.first()
    else {
        panic!("a forget event: {:?}", d.events);
    };
    assert_eq!(visit_ids, &vec![v1, v2]);
    assert_eq!(key_ids, &vec![maria]);
    let c = &f.state.customers[&maria];
    assert!(c.forgotten && c.name == FORGOTTEN && c.phone.is_none() && c.notes.is_none());
    for v in [v1, v2] {
        let visit = f.visit(v);
        assert_eq!(visit.customer_name, FORGOTTEN);
        assert!(visit.phone.is_none() && visit.notes.is_none());
    }
    assert_eq!(f.visit(o).customer_name, "Olga");
    let state_text = format!("{:?}", f.state);
    assert!(!state_text.contains("Secret") && !state_text.contains("600111222"));
    assert!(search(&f, "maria").is_empty() && search(&f, "111222").is_empty());
    // The day's report keeps every count and amount.
    assert_eq!(day_report(f.log.clone(), DAY1, day_of), report);
    // Twice, or anything else on a forgotten record: conflict.
    f.refuse(
        &ADMIN,
        cmd(
            "customer.forget",
            json!({"customer_id": maria, "reason": "again"}),
        ),
        ErrorCode::Conflict,
        &["already"],
    );
    f.refuse(
        &ADMIN,
        cmd(
            "customer.update",
            json!({"customer_id": maria, "name": "Back"}),
        ),
        ErrorCode::Conflict,
        &["forgotten"],
    );
    f.refuse(
        &ADMIN,
        cmd(
            "customer.merge",
            json!({"customer_id": other, "into_id": maria}),
        ),
        ErrorCode::Conflict,
        &["forgotten"],
    );
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    f.refuse(
        &staff_actor(cashier, Role::Cashier),
        cmd(
            "customer.forget",
            json!({"customer_id": other, "reason": "x"}),
        ),
        ErrorCode::Forbidden,
        &[],
    );
    // The visit still on the floor carries on.
    assert_eq!(f.visit_state(v2), VisitState::Waiting);
}

#[test]
fn every_personal_field_comes_out_and_goes_back() {
    let mut f = Floor::new();
    let thai = f.add_service("Thai", 60, 0);
    let maria = f.add_customer("Maria", "600 111 222", "nut oils");
    let v = visit_for(&mut f, maria, &[thai]);
    f.run(
        &ADMIN,
        cmd("visit.update", json!({"visit_id": v, "notes": "warm"})),
    );
    f.run(
        &ADMIN,
        cmd(
            "customer.update",
            json!({"customer_id": maria, "email": "m@example.com"}),
        ),
    );
    for record in f.log.clone() {
        let mut e = record.event.clone();
        let seal = customers::seal_of_event(&f.state, &e);
        match take_personal_event(&mut e) {
            Some(p) => {
                assert_eq!(seal, customers::Seal::Key(maria), "{}", e.kind());
                let text = format!("{e:?}");
                for secret in ["Maria", "600111222", "nut oils", "warm", "m@example"] {
                    assert!(!text.contains(secret), "{secret} left in {text}");
                }
                put_personal_event(&mut e, p);
                assert_eq!(e, record.event);
            }
            None => assert!(!format!("{e:?}").contains("Maria"), "{}", e.kind()),
        }
    }
    for (_, record) in f.state.records() {
        let mut r = record.clone();
        if let Some(p) = take_personal_record(&mut r) {
            assert!(!format!("{r:?}").contains("Maria"));
            put_personal_record(&mut r, p);
        }
        assert_eq!(r, record);
        if let Record::Visit(_) | Record::Customer(_) = record {
            assert_eq!(
                customers::seal_of_record(&f.state, &record),
                customers::Seal::Key(maria)
            );
        }
    }
}

/// Seeded random mixes of every customer command (and check-ins, edits,
/// checkouts) by random actors: after every step the index matches the
/// records, every visit has at most one customer, a forgotten customer's
/// data is nowhere in the state, search answers at most 20 live records,
/// and (at the end) the state equals its replay and its rebuild.
#[test]
fn seeded_customer_days_keep_the_invariants() {
    for seed in 1..=6u64 {
        let mut rng = SeededRng::new(seed);
        let mut f = Floor::new();
        let tess = f.add_therapist("Tess", &[]);
        f.add_room("Lotus", 1);
        f.add_room("Jade", 1);
        let thai = f.add_service("Thai", 60, 0);
        let foot = f.add_service("Foot", 30, 0);
        let _ = f.try_run(&ADMIN, &cmd("drawer.open", json!({"float_cents": 0})));
        let names = ["Maria", "José", "Zoë", "Ana", "Marta", "Olga"];
        let mut forgotten_names: Vec<String> = Vec::new();
        let actors = [
            ADMIN,
            staff_actor(tess, Role::Therapist),
            Actor::Device { id: 999 },
        ];
        let mut accepted: std::collections::BTreeMap<&'static str, u32> = Default::default();
        for step in 0..400 {
            let customers: Vec<Id> = f.state.customers.keys().copied().collect();
            let visits: Vec<Id> = f.state.visits.keys().copied().collect();
            let any_c = rng.pick(&customers).unwrap_or(12345);
            let any_v = rng.pick(&visits).unwrap_or(12345);
            let actor = if rng.chance(85) {
                ADMIN
            } else {
                actors[rng.below(3) as usize].clone()
            };
            let n = names[rng.below(names.len() as u64) as usize];
            let unique = format!("{n} S{seed}x{step}z");
            let mut candidate = None;
            let command = match rng.below(10) {
                0 | 1 => cmd(
                    "customer.create",
                    json!({"name": unique, "phone": format!("6{:08}", rng.below(50)),
                           "notes": "allergy", "duplicate": rng.chance(70)}),
                ),
                2 => cmd(
                    "customer.update",
                    json!({"customer_id": any_c, "name": unique, "notes": null}),
                ),
                3 => {
                    let token = f.token();
                    cmd(
                        "visit.create",
                        json!({"customer_id": any_c, "service_ids": [thai]}),
                    )
                    .with_token(token)
                }
                4 => cmd(
                    "visit.update",
                    json!({"visit_id": any_v, "service_ids": [if rng.chance(50) { thai } else { foot }],
                           "notes": unique}),
                ),
                5 => cmd(
                    "customer.merge",
                    json!({"customer_id": any_c, "into_id": rng.pick(&customers).unwrap_or(1)}),
                ),
                6 => {
                    candidate = f.state.customers.get(&any_c).map(|c| c.name.clone());
                    cmd(
                        "customer.forget",
                        json!({"customer_id": any_c, "reason": "asked"}),
                    )
                }
                7 => cmd(
                    "visit.update",
                    json!({"visit_id": any_v, "customer_id": any_c}),
                ),
                8 => cmd("visit.call", json!({})),
                _ => cmd("customer.search", json!({"q": &n[..2]})),
            };
            let before = f.state.clone();
            match f.try_run(&actor, &command) {
                Ok(_) => {
                    *accepted.entry(command.name()).or_default() += 1;
                    forgotten_names.extend(candidate)
                }
                Err(_) => assert_eq!(
                    f.state, before,
                    "seed {seed} step {step}: a refusal changed the state"
                ),
            }
            check_customer_invariants(&f, &forgotten_names, seed, step);
        }
        // The mix really exercised every kind of change.
        for name in [
            "customer.create",
            "customer.update",
            "customer.merge",
            "customer.forget",
            "visit.create",
            "visit.update",
        ] {
            assert!(
                accepted.get(name).copied().unwrap_or(0) > 0,
                "seed {seed}: no {name} accepted: {accepted:?}"
            );
        }
    }
}

fn check_customer_invariants(f: &Floor, forgotten: &[String], seed: u64, step: usize) {
    let s = &f.state;
    let at = format!("seed {seed} step {step}");
    let mut owners = std::collections::BTreeMap::new();
    for c in s.customers.values() {
        for v in &c.visit_ids {
            assert!(
                owners.insert(*v, c.id).is_none(),
                "{at}: visit {v} has two customers"
            );
        }
        if c.forgotten {
            assert!(c.name == FORGOTTEN && c.phone.is_none() && c.email.is_none());
            for v in c.visit_ids.iter().filter_map(|v| s.visits.get(v)) {
                assert_eq!(v.customer_name, FORGOTTEN, "{at}");
                assert!(v.phone.is_none() && v.notes.is_none(), "{at}");
            }
        }
    }
    assert_eq!(
        owners, s.customer_index.visit_owner,
        "{at}: the index drifted"
    );
    let text = format!("{:?}", s.customers);
    for name in forgotten {
        // A forgotten name never shows again (names here are unique).
        if name != FORGOTTEN {
            assert!(!text.contains(name.as_str()), "{at}: {name} is still held");
        }
    }
    for q in ["ma", "jo", "zo", "6000"] {
        let hits = customers::search(s, q);
        assert!(hits.len() <= customers::SEARCH_LIMIT);
        assert!(hits.iter().all(|id| !s.customers[id].forgotten), "{at}");
    }
}
