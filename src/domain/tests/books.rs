//! The books: the day report against the log, one regression test per item
//! of the correctness review (#22), and the JSON and CSV reports line for
//! line. `books_day` runs seeded random business days on top of these.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::harness::*;
use crate::domain::command::ServiceCreate;
use crate::domain::money::Method;
use crate::domain::report::{csv_rows, day_report, to_csv, DayReport, CSV_HEADER};
use crate::domain::rotation::Turns;
use crate::domain::state::VisitState;
use crate::domain::{Actor, Command, ErrorCode, EventRecord, Id, Role};

pub(super) fn cmd(name: &str, args: Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Which local day each event fell on: the floor's day changes are
/// recorded as the instant the new day began.
#[derive(Clone, Default)]
pub(super) struct Days(Vec<(i64, u32)>);

impl Days {
    pub(super) fn start(f: &Floor) -> Days {
        Days(vec![(i64::MIN, f.now.day)])
    }
    pub(super) fn next_day(&mut self, f: &mut Floor) {
        f.next_day();
        self.0.push((f.now.ms, f.now.day));
    }
    pub(super) fn day_of(&self, ms: i64) -> u32 {
        self.0
            .iter()
            .rev()
            .find(|(from, _)| ms >= *from)
            .map(|(_, d)| *d)
            .unwrap_or(self.0[0].1)
    }
    pub(super) fn all(&self) -> Vec<u32> {
        self.0.iter().map(|(_, d)| *d).collect()
    }
    pub(super) fn report(&self, log: &[EventRecord], day: u32) -> DayReport {
        day_report(log.iter().cloned(), day, |ms| self.day_of(ms))
    }
}

/// A floor with a cashier whose drawer is open, an admin drawer, two
/// therapists clocked in, two rooms and a 100.00 service.
struct Spa {
    f: Floor,
    days: Days,
    cashier: Actor,
    t1: Id,
    t2: Id,
    svc: Id,
}

fn spa() -> Spa {
    let mut f = Floor::new();
    let cass = f.add_staff("Cass", Role::Cashier, &[]);
    let t1 = f.add_therapist("T1", &[]);
    let t2 = f.add_therapist("T2", &[]);
    f.add_room("Lotus", 1);
    f.add_room("Jade", 1);
    let svc = f.add_service_with(ServiceCreate {
        price_cents: 10_000,
        ..new_service("Massage", 60, 0)
    });
    let cashier = staff_actor(cass, Role::Cashier);
    f.run(&cashier, cmd("drawer.open", json!({"float_cents": 5_000})));
    let days = Days::start(&f);
    Spa {
        f,
        days,
        cashier,
        t1,
        t2,
        svc,
    }
}

impl Spa {
    fn report(&self) -> DayReport {
        self.days.report(&self.f.log, self.f.now.day)
    }
    fn report_of(&self, day: u32) -> DayReport {
        self.days.report(&self.f.log, day)
    }
    fn pay(&mut self, v: Id, request: &str, payments: Value, tip: i64) {
        let c = self.cashier.clone();
        self.f.run(
            &c,
            cmd(
                "visit.checkout",
                json!({"visit_id": v, "request_id": request, "payments": payments, "tip_cents": tip}),
            ),
        );
    }
}

fn line(r: &DayReport, id: Id) -> &crate::domain::report::TherapistLine {
    r.therapists
        .iter()
        .find(|t| t.therapist_id == id)
        .unwrap_or_else(|| panic!("no line for {id} in {:?}", r.therapists))
}

// ---- the review's items, one by one ----

/// 1. A service sold at the price the visit captured, not today's.
#[test]
fn services_sold_at_the_price_charged_not_the_catalogue() {
    let mut s = spa();
    let v = s.f.add_visit("Ann", &[s.svc]);
    s.f.run(
        &ADMIN,
        cmd(
            "service.update",
            json!({"service_id": s.svc, "price_cents": 15_000}),
        ),
    );
    s.f.serve(v);
    s.pay(
        v,
        "r1",
        json!([{"method": "card", "amount_cents": 10_000}]),
        0,
    );
    let r = s.report();
    assert_eq!(r.revenue_cents, 10_000);
    assert_eq!(r.services_sold.len(), 1);
    assert_eq!(r.services_sold[0].revenue_cents, 10_000);
    assert_eq!(r.services_cents, 10_000);
    let rows = csv_rows(&r);
    assert!(rows.contains(&[
        "services_revenue_cents".into(),
        s.svc.to_string(),
        "Massage".into(),
        "10000".into()
    ]));
}

/// 2. A role change does not erase a therapist's day.
#[test]
fn a_role_change_keeps_a_therapists_day() {
    let mut s = spa();
    let v = s.f.add_visit("Ann", &[s.svc]);
    s.f.call_to(
        v,
        s.t1,
        s.f.state.rooms.keys().copied().next().expect("room"),
    );
    s.f.serve_rest(v);
    s.pay(
        v,
        "r1",
        json!([{"method": "card", "amount_cents": 11_500}]),
        1_500,
    );
    s.f.run(&ADMIN, clock_out(s.t1));
    s.f.run(
        &ADMIN,
        cmd("staff.update", json!({"staff_id": s.t1, "role": "cashier"})),
    );
    let r = s.report();
    let t1 = line(&r, s.t1);
    assert_eq!(
        (t1.tips_cents, t1.sessions, t1.role),
        (1_500, 1, Role::Cashier)
    );
    assert_eq!(
        r.therapists.iter().map(|t| t.tips_cents).sum::<i64>(),
        r.tips.cents
    );
}

/// 3. A re-split after midnight is a movement on the day it is made.
#[test]
fn a_retip_on_a_later_day_is_a_movement_that_day() {
    let mut s = spa();
    let v = s.f.add_visit("Ann", &[s.svc]);
    s.f.call_to(
        v,
        s.t1,
        s.f.state.rooms.keys().copied().next().expect("room"),
    );
    s.f.serve_rest(v);
    s.pay(
        v,
        "r1",
        json!([{"method": "card", "amount_cents": 11_000}]),
        1_000,
    );
    let day1 = s.f.now.day;
    let before = s.report_of(day1);
    s.days.next_day(&mut s.f);
    s.f.run(&ADMIN, cmd("visit.retip", json!({"visit_id": v, "reason": "shared", "tip_split": [{"therapist_id": s.t1, "amount_cents": 300}, {"therapist_id": s.t2, "amount_cents": 700}]})));
    // The 6th never moves; the 7th shows the movement from T1 to T2.
    assert_eq!(s.report_of(day1), before);
    assert_eq!(line(&before, s.t1).tips_cents, 1_000);
    let r = s.report();
    assert_eq!(r.tips.cents, 0, "no tip was taken on day 2");
    assert_eq!(line(&r, s.t1).tips_cents, -700);
    assert_eq!(line(&r, s.t2).tips_cents, 700);
    assert_eq!(line(&r, s.t2).tip_corrections_cents, 700);
    assert_eq!(r.tip_corrections.len(), 1);
    assert_eq!(r.tip_corrections[0].reason, "shared");
    let moves: Vec<(Id, i64)> = r.tip_corrections[0]
        .changes
        .iter()
        .map(|c| (c.therapist_id, c.delta_cents))
        .collect();
    assert_eq!(moves, vec![(s.t1, -700), (s.t2, 700)]);
    // Over both days T2 earned 700 and T1 300.
    let both = |id| line(&before, id).tips_cents + line(&r, id).tips_cents;
    assert_eq!(both(s.t1), 300);
    assert!(before.therapists.iter().all(|t| t.therapist_id != s.t2));
    assert_eq!(line(&r, s.t2).tips_cents, 700);
}

/// 4. Turn weights are exact: 0.1 + 0.2 ties with 0.3.
#[test]
fn turn_weights_add_up_exactly() {
    let mut f = Floor::new();
    let a = f.add_therapist("A", &[]);
    let b = f.add_therapist("B", &[]);
    f.add_room("R1", 1);
    f.add_room("R2", 1);
    let w = |f: &mut Floor, name: &str, weight: f64| {
        f.add_service_with(ServiceCreate {
            turn_weight: weight,
            ..new_service(name, 30, 0)
        })
    };
    let s1 = w(&mut f, "S1", 0.1);
    let s2 = w(&mut f, "S2", 0.2);
    let s3 = w(&mut f, "S3", 0.3);
    // A serves [0.1 + 0.2] first, then B serves [0.3] and becomes free later.
    let v1 = f.add_visit("x", &[s1, s2]);
    let (t, _) = f.serve(v1);
    assert_eq!(t, a);
    let v2 = f.add_visit("y", &[s3]);
    f.advance(5);
    let (t, _) = f.serve(v2);
    assert_eq!(t, b);
    assert_eq!(f.staff(a).turns_on(f.now.day), Turns(300));
    assert_eq!(f.staff(b).turns_on(f.now.day), Turns(300));
    // A tie on turns: A, free longer, is next.
    let v3 = f.add_visit("z", &[s1]);
    let (t, _) = f.call(v3);
    assert_eq!(
        t, a,
        "0.1 + 0.2 is exactly 0.3: the tie goes to the one free longer"
    );
    // Weights finer than a thousandth are refused, naming the field.
    f.refuse(
        &ADMIN,
        Command::ServiceCreate(ServiceCreate {
            turn_weight: 0.0001,
            ..new_service("Fine", 30, 0)
        }),
        ErrorCode::Invalid,
        &["`turn_weight`", "0.001"],
    );
    // The wire shows the decimal; the log's f64 decodes to the exact count.
    assert_eq!(serde_json::to_string(&Turns(300)).expect("json"), "0.3");
    let old: Turns = serde_json::from_str("0.30000000000000004").expect("turns");
    assert_eq!(old, Turns(300));
    let bytes = postcard::to_allocvec(&Turns(1_500)).expect("postcard");
    assert_eq!(bytes, postcard::to_allocvec(&1.5f64).expect("postcard"));
}

/// 5. A zero total checks out with no payment, and the drawer closes.
#[test]
fn a_zero_total_checks_out_without_payment() {
    let mut s = spa();
    let free = s.f.add_service_with(ServiceCreate {
        price_cents: 0,
        ..new_service("Consultation", 15, 0)
    });
    let v = s.f.add_visit("Ann", &[free]);
    s.f.serve(v);
    let c = s.cashier.clone();
    s.f.refuse(
        &c,
        cmd("drawer.close", json!({"counted": {"cash": 5_000}})),
        ErrorCode::Conflict,
        &["await payment"],
    );
    s.f.run(
        &c,
        cmd("visit.checkout", json!({"visit_id": v, "request_id": "z"})),
    );
    assert_eq!(s.f.visit(v).state, VisitState::Closed);
    // A 100% discount (an admin's) also comes to zero.
    let v2 = s.f.add_visit("Ben", &[s.svc]);
    s.f.serve(v2);
    s.f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 0})));
    s.f.run(&ADMIN, cmd("visit.checkout", json!({"visit_id": v2, "request_id": "z2", "payments": [], "discount": {"percent": 100, "reason": "complaint"}})));
    // A non-zero total still needs a payment.
    let v3 = s.f.add_visit("Cy", &[s.svc]);
    s.f.serve(v3);
    s.f.refuse(
        &c,
        cmd(
            "visit.checkout",
            json!({"visit_id": v3, "request_id": "z3", "payments": []}),
        ),
        ErrorCode::Invalid,
        &["`payments`"],
    );
    s.f.run(&ADMIN, void(v3, "test"));
    s.f.run(&c, cmd("drawer.close", json!({"counted": {"cash": 5_000}})));
    let r = s.report();
    assert_eq!(r.visits_by_state["closed"], 2);
    assert_eq!((r.revenue_cents, r.services_cents), (0, 10_000));
    assert_eq!(r.discounts.cents, 10_000);
}

/// Percent discounts round half up to the cent: 15% of 9.99 is 1.50.
#[test]
fn a_percent_discount_rounds_half_up() {
    let mut s = spa();
    let cheap = s.f.add_service_with(ServiceCreate {
        price_cents: 999,
        ..new_service("Foot soak", 15, 0)
    });
    let v = s.f.add_visit("Ann", &[cheap]);
    s.f.serve(v);
    let c = s.cashier.clone();
    s.f.run(&c, cmd("visit.checkout", json!({"visit_id": v, "request_id": "d", "payments": [{"method": "card", "amount_cents": 849}], "discount": {"percent": 15, "reason": "loyalty"}})));
    let ck = s.f.visit(v).checkout.clone().expect("paid");
    assert_eq!(ck.discount_cents, 150);
}

/// Item 6: refunds go back in the tender paid with; cash never below what
/// a drawer holds; card refunds touch no drawer.
#[test]
fn refunds_follow_the_tender_and_the_drawer() {
    let mut s = spa();
    let v = s.f.add_visit("Ann", &[s.svc]);
    s.f.serve(v);
    s.pay(
        v,
        "r",
        json!([{"method": "card", "amount_cents": 10_000}]),
        0,
    );
    // The admin has no drawer: a card refund needs none.
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v, "amount_cents": 10_000, "method": "cash", "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["tender it was paid with"],
    );
    s.f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 0})));
    // Even with the admin's say-so, an empty drawer pays out no cash.
    s.f.refuse(
        &ADMIN,
        cmd("visit.refund", json!({"visit_id": v, "amount_cents": 10_000, "method": "cash", "other_tender": true, "reason": "x"})),
        ErrorCode::Conflict,
        &["0 cents in cash"],
    );
    s.f.run(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v, "amount_cents": 4_000, "reason": "sore"}),
        ),
    );
    let r = s.f.visit(v).refunds[0].clone();
    assert_eq!((r.method, r.drawer_id), (Method::Card, None));
    for d in s.f.state.drawers.values() {
        assert_eq!(
            d.expected().card,
            if d.owner.is_some() { 10_000 } else { 0 }
        );
        assert!(d.expected().cash >= 0);
    }
    // Split tender: the method must be named.
    let v2 = s.f.add_visit("Ben", &[s.svc]);
    s.f.serve(v2);
    s.pay(
        v2,
        "r2",
        json!([{"method": "cash", "amount_cents": 4_000}, {"method": "voucher", "amount_cents": 6_000}]),
        0,
    );
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v2, "amount_cents": 100, "reason": "x"}),
        ),
        ErrorCode::Invalid,
        &["`method`", "cash and voucher"],
    );
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v2, "amount_cents": 6_001, "method": "voucher", "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["6000 cents paid by voucher"],
    );
    s.f.run(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v2, "amount_cents": 6_000, "method": "voucher", "reason": "x"}),
        ),
    );
    let rep = s.report();
    assert_eq!(rep.refunds_by_method.card, 4_000);
    assert_eq!(rep.refunds_by_method.voucher, 6_000);
}

/// Item 7: report lines are keyed by id, with the day's names; a room
/// removed after use stays in that day.
#[test]
fn report_lines_are_keyed_by_id_and_keep_removed_rooms() {
    let mut s = spa();
    let v = s.f.add_visit("Ann", &[s.svc]);
    let (t, room) = s.f.serve(v);
    s.pay(
        v,
        "r",
        json!([{"method": "card", "amount_cents": 10_500}]),
        500,
    );
    s.f.run(&ADMIN, clock_out(t));
    s.f.run(&ADMIN, cmd("staff.deactivate", json!({"staff_id": t})));
    let twin = s.f.add_therapist(&s.f.staff(t).name.clone(), &[]);
    let v2 = s.f.add_visit("Ben", &[s.svc]);
    s.f.call_to(v2, twin, room);
    s.f.serve_rest(v2);
    s.pay(
        v2,
        "r2",
        json!([{"method": "card", "amount_cents": 10_200}]),
        200,
    );
    s.f.advance(30);
    s.f.run(&ADMIN, cmd("room.remove", json!({"room_id": room})));
    let r = s.report();
    let tips: Vec<(Id, i64)> = r
        .therapists
        .iter()
        .map(|l| (l.therapist_id, l.tips_cents))
        .collect();
    assert_eq!(tips, vec![(t, 500), (twin, 200)]);
    assert_eq!(line(&r, t).name, line(&r, twin).name);
    let gone = r
        .rooms
        .iter()
        .find(|x| x.room_id == room)
        .expect("room kept");
    assert!(gone.removed && gone.sessions == 2, "{gone:?}");
    let rows = csv_rows(&r);
    let tip_rows: Vec<&[String; 4]> = rows.iter().filter(|x| x[0] == "tips_cents").collect();
    assert_eq!(tip_rows.len(), 2);
    assert_ne!(tip_rows[0][1], tip_rows[1][1], "two rows, two ids");
}

// ---- JSON and CSV ----

/// Every JSON line of the report, flattened the way the CSV reads it:
/// section, key (an id or a fixed word), name, value.
fn json_rows(r: &DayReport) -> BTreeSet<[String; 4]> {
    let j = serde_json::to_value(r).expect("json");
    let mut rows = BTreeSet::new();
    let mut add = |s: &str, k: String, n: &str, v: String| {
        rows.insert([s.to_string(), k, n.to_string(), v]);
    };
    let num = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let day = j["day"].as_u64().expect("day");
    add(
        "day",
        "date".into(),
        "",
        format!("{}-{:02}-{:02}", day / 10_000, day / 100 % 100, day % 100),
    );
    add("visits", "created".into(), "", num(&j["visits_created"]));
    for (state, n) in j["visits_by_state"].as_object().expect("states") {
        add("visits_by_state", state.clone(), "", num(n));
    }
    for s in j["services_sold"].as_array().expect("services") {
        let (id, name) = (num(&s["service_id"]), s["name"].as_str().expect("name"));
        add("services_sold", id.clone(), name, num(&s["count"]));
        add("services_revenue_cents", id, name, num(&s["revenue_cents"]));
    }
    for m in Method::ALL {
        add(
            "revenue_cents",
            m.as_str().into(),
            "",
            num(&j["revenue_by_method"][m.as_str()]),
        );
        add(
            "refunds_cents",
            m.as_str().into(),
            "",
            num(&j["refunds_by_method"][m.as_str()]),
        );
    }
    add(
        "revenue_cents",
        "total".into(),
        "",
        num(&j["revenue_cents"]),
    );
    add(
        "revenue_cents",
        "booked".into(),
        "",
        num(&j["booked_revenue_cents"]),
    );
    add(
        "revenue_cents",
        "walk_in".into(),
        "",
        num(&j["walk_in_revenue_cents"]),
    );
    for (key, value) in j["bookings"].as_object().expect("bookings") {
        add("bookings", key.clone(), "", num(value));
    }
    add(
        "services_cents",
        "total".into(),
        "",
        num(&j["services_cents"]),
    );
    for section in ["discounts", "tips", "refunds"] {
        add(section, "count".into(), "", num(&j[section]["count"]));
        add(section, "cents".into(), "", num(&j[section]["cents"]));
    }
    for t in j["therapists"].as_array().expect("therapists") {
        let (id, name) = (num(&t["therapist_id"]), t["name"].as_str().expect("name"));
        add("staff_role", id.clone(), name, num(&t["role"]));
        for f in ["tips_cents", "tip_corrections_cents", "turns", "sessions"] {
            add(f, id.clone(), name, num(&t[f]));
        }
        let one = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_default();
        for f in ["served_min", "shift_min", "utilisation_percent"] {
            add(f, id.clone(), name, one(&t[f]));
        }
    }
    for c in j["tip_corrections"].as_array().expect("corrections") {
        for ch in c["changes"].as_array().expect("changes") {
            add(
                "tip_correction_cents",
                format!("{}/{}", num(&c["seq"]), num(&ch["therapist_id"])),
                &format!("{} {}", num(&c["number"]), num(&ch["name"])),
                num(&ch["delta_cents"]),
            );
        }
    }
    let one = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_default();
    add(
        "average_min",
        "wait".into(),
        "",
        one(&j["average_wait_min"]),
    );
    add(
        "average_min",
        "service".into(),
        "",
        one(&j["average_service_min"]),
    );
    for room in j["rooms"].as_array().expect("rooms") {
        let (id, name) = (num(&room["room_id"]), room["name"].as_str().expect("name"));
        add("room_sessions", id.clone(), name, num(&room["sessions"]));
        add(
            "room_occupied_min",
            id.clone(),
            name,
            one(&room["occupied_min"]),
        );
        add(
            "room_utilisation_percent",
            id,
            name,
            one(&room["utilisation_percent"]),
        );
    }
    for d in j["drawers"].as_array().expect("drawers") {
        let owner = d["owner_name"].as_str().expect("owner");
        for part in ["expected", "counted", "variance"] {
            for m in Method::ALL {
                add(
                    &format!("drawer_{part}_cents"),
                    format!("{}/{}", num(&d["drawer_id"]), m.as_str()),
                    owner,
                    num(&d[part][m.as_str()]),
                );
            }
        }
    }
    // The counter (#17).
    let rates = j["taxes"].as_array().expect("taxes");
    for (t, key) in rates
        .iter()
        .map(|t| (t, num(&t["rate_bp"])))
        .chain(std::iter::once((&j["taxes_total"], "total".to_string())))
    {
        add("tax_net_cents", key.clone(), "", num(&t["net_cents"]));
        add("tax_cents", key.clone(), "", num(&t["tax_cents"]));
        add("tax_gross_cents", key, "", num(&t["gross_cents"]));
    }
    for p in j["products_sold"].as_array().expect("products") {
        let (id, name) = (num(&p["product_id"]), p["name"].as_str().expect("name"));
        add("products_sold", id.clone(), name, num(&p["sold"]));
        add("products_returned", id.clone(), name, num(&p["returned"]));
        add("products_gross_cents", id, name, num(&p["gross_cents"]));
    }
    for key in ["sold", "redeemed", "refunded_to_cards", "cancelled"] {
        let g = &j["giftcards"][key];
        add("giftcards_count", key.into(), "", num(&g["count"]));
        add("giftcards_cents", key.into(), "", num(&g["cents"]));
    }
    add(
        "giftcards_cents",
        "liability_change".into(),
        "",
        num(&j["giftcards"]["liability_change_cents"]),
    );
    add("sales", "count".into(), "", num(&j["sales"]["count"]));
    add("sales", "cents".into(), "", num(&j["sales"]["cents"]));
    add("receipts", "count".into(), "", num(&j["receipts"]));
    rows
}

/// The CSV (parsed back with a CSV reader) and the JSON agree line for line.
pub(super) fn check_csv_matches_json(r: &DayReport) {
    let text = to_csv(r).expect("csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let csv: Vec<[String; 4]> = reader
        .records()
        .map(|r| r.expect("row"))
        .map(|r| [r[0].into(), r[1].into(), r[2].into(), r[3].into()])
        .collect();
    let unique: BTreeSet<[String; 4]> = csv.iter().cloned().collect();
    assert_eq!(unique.len(), csv.len(), "no CSV line twice");
    assert_eq!(unique, json_rows(r), "CSV and JSON differ");
}

#[test]
fn csv_and_json_agree_line_for_line() {
    let mut s = spa();
    let v = s.f.add_visit("Ann, \"the\" regular", &[s.svc]);
    s.f.serve(v);
    s.pay(
        v,
        "r",
        json!([{"method": "cash", "amount_cents": 12_000}]),
        500,
    );
    s.f.run(&ADMIN, cmd("visit.retip", json!({"visit_id": v, "reason": "x", "tip_split": [{"therapist_id": s.t1, "amount_cents": 250}, {"therapist_id": s.t2, "amount_cents": 250}]})));
    s.f.run(
        &ADMIN,
        cmd(
            "staff.update",
            json!({"staff_id": s.t2, "name": "T2, \"senior\""}),
        ),
    );
    let c = s.cashier.clone();
    s.f.run(
        &c,
        cmd("drawer.close", json!({"counted": {"cash": 16_000}})),
    );
    let r = s.report();
    assert!(!r.drawers.is_empty() && !r.tip_corrections.is_empty());
    check_csv_matches_json(&r);
}
