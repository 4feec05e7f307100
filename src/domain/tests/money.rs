//! Checkout, corrections, the drawer and the day report: every refusal,
//! idempotent retries, books that balance for any seeded sequence, and a
//! day report checked against an independent computation.

use serde_json::json;

use super::harness::*;
use crate::domain::money::{Method, PerMethod};
use crate::domain::report::{day_report, to_csv};
use crate::domain::rotation::Turns;
use crate::domain::state::VisitState;
use crate::domain::{Actor, Command, ErrorCode, Id, Role};

fn cmd(name: &str, args: serde_json::Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Shop {
    f: Floor,
    cashier: Actor,
    tess: Id,
    otto: Id,
    thai: Id,
}

/// A floor with a cashier (drawer open, float 100.00), two therapists, rooms
/// and a 50.00 service.
fn shop() -> Shop {
    let mut f = Floor::new();
    let cass = f.add_staff("Cass", Role::Cashier, &[]);
    let tess = f.add_therapist("Tess", &[]);
    let otto = f.add_therapist("Otto", &[]);
    f.add_room("Lotus", 1);
    f.add_room("Jade", 1);
    let thai = f.add_service("Thai", 60, 0);
    let cashier = staff_actor(cass, Role::Cashier);
    f.run(&cashier, cmd("drawer.open", json!({"float_cents": 10_000})));
    Shop {
        f,
        cashier,
        tess,
        otto,
        thai,
    }
}

impl Shop {
    /// A visit served and awaiting payment.
    fn served(&mut self, name: &str) -> Id {
        let v = self.f.add_visit(name, &[self.thai]);
        self.f.serve(v);
        v
    }
    fn drawer(&self) -> crate::domain::money::Drawer {
        self.f
            .state
            .drawers
            .values()
            .find(|d| d.is_open())
            .cloned()
            .expect("open drawer")
    }
}

fn pay(v: Id, request: &str, payments: serde_json::Value, tip: i64) -> Command {
    cmd(
        "visit.checkout",
        json!({"visit_id": v, "request_id": request, "payments": payments, "tip_cents": tip}),
    )
}

#[test]
fn split_payment_with_tip_closes_the_visit_and_fills_the_drawer() {
    let mut s = shop();
    let v = s.served("Ann");
    let cashier = s.cashier.clone();
    let done = s.f.run(
        &cashier,
        pay(v, "r1", json!([{"method": "cash", "amount_cents": 3_000}, {"method": "card", "amount_cents": 2_500, "reference": "slip 9"}]), 500),
    );
    assert_eq!(done.reply["receipt"]["total_cents"], 5_500);
    assert_eq!(done.reply["receipt"]["change_cents"], 0);
    assert_eq!(s.f.visit(v).state, VisitState::Closed);
    let c = s.f.visit(v).checkout.clone().expect("checkout");
    assert_eq!(c.tips.len(), 1);
    assert_eq!(
        (c.tips[0].therapist_id, c.tips[0].amount_cents),
        (s.f.visit(v).therapist.expect("t"), 500)
    );
    let d = s.drawer();
    assert_eq!(
        d.taken,
        PerMethod {
            cash: 3_000,
            card: 2_500,
            voucher: 0,
            other: 0
        }
    );
    assert_eq!(d.expected().cash, 13_000);
}

#[test]
fn cash_may_be_over_tendered_and_change_is_recorded() {
    let mut s = shop();
    let v = s.served("Ann");
    let cashier = s.cashier.clone();
    let done = s.f.run(
        &cashier,
        pay(
            v,
            "r1",
            json!([{"method": "cash", "amount_cents": 6_000}]),
            0,
        ),
    );
    assert_eq!(done.reply["receipt"]["change_cents"], 1_000);
    assert_eq!(s.drawer().expected().cash, 10_000 + 6_000 - 1_000);
    // Card cannot be over-tendered.
    let v2 = s.served("Ben");
    s.f.refuse(
        &cashier,
        pay(
            v2,
            "r2",
            json!([{"method": "card", "amount_cents": 6_000}]),
            0,
        ),
        ErrorCode::Invalid,
        &["payments", "6000", "5000"],
    );
    // Over-tendering beyond the cash given is not change either.
    s.f.refuse(
        &cashier,
        pay(v2, "r2", json!([{"method": "cash", "amount_cents": 100}, {"method": "card", "amount_cents": 5_500}]), 0),
        ErrorCode::Invalid,
        &["payments"],
    );
}

#[test]
fn a_retried_checkout_charges_once_and_answers_the_same() {
    let mut s = shop();
    let v = s.served("Ann");
    let cashier = s.cashier.clone();
    let first = s.f.run(
        &cashier,
        pay(
            v,
            "tap-1",
            json!([{"method": "cash", "amount_cents": 5_000}]),
            0,
        ),
    );
    let seq = s.f.state.seq();
    let drawer = s.drawer();
    // Double tap / retry after a lost ack: same request id → same answer, nothing new.
    let again = s.f.run(
        &cashier,
        pay(
            v,
            "tap-1",
            json!([{"method": "cash", "amount_cents": 5_000}]),
            0,
        ),
    );
    // The same answer, told apart only by `retried`.
    let (mut again_reply, mut first_reply) = (again.reply.clone(), first.reply.clone());
    assert_eq!(
        (again_reply["retried"].take(), first_reply["retried"].take()),
        (json!(true), json!(false))
    );
    assert_eq!(again_reply, first_reply);
    assert!(again.events.is_empty());
    assert_eq!(s.f.state.seq(), seq);
    assert_eq!(s.drawer(), drawer, "charged once");
    // A new request on a paid visit is a conflict.
    s.f.refuse(
        &cashier,
        pay(
            v,
            "tap-2",
            json!([{"method": "cash", "amount_cents": 5_000}]),
            0,
        ),
        ErrorCode::Conflict,
        &["already paid"],
    );
}

#[test]
fn every_refusal_of_checkout() {
    let mut s = shop();
    let v = s.served("Ann");
    let c = s.cashier.clone();
    let card = |cents: i64| json!([{"method": "card", "amount_cents": cents}]);
    s.f.refuse(
        &c,
        pay(v, "r", card(4_999), 0),
        ErrorCode::Invalid,
        &["payments", "4999", "5000"],
    );
    s.f.refuse(
        &c,
        pay(v, "r", card(-5), 0),
        ErrorCode::Invalid,
        &["amount_cents"],
    );
    s.f.refuse(
        &c,
        pay(v, "r", card(0), 0),
        ErrorCode::Invalid,
        &["amount_cents"],
    );
    s.f.refuse(
        &c,
        pay(v, "r", card(5_000), -1),
        ErrorCode::Invalid,
        &["tip_cents"],
    );
    s.f.refuse(
        &c,
        pay(v, "r", json!([]), 0),
        ErrorCode::Invalid,
        &["payments"],
    );
    s.f.refuse(
        &c,
        pay(v, "", card(5_000), 0),
        ErrorCode::Invalid,
        &["request_id"],
    );
    // Overflow: amounts that would wrap are refused, never wrapped.
    let huge = json!([{"method": "card", "amount_cents": i64::MAX}, {"method": "card", "amount_cents": i64::MAX}]);
    s.f.refuse(
        &c,
        pay(v, "r", huge, 0),
        ErrorCode::Invalid,
        &["amount_cents"],
    );
    s.f.refuse(
        &c,
        pay(v, "r", card(5_000), i64::MAX),
        ErrorCode::Invalid,
        &["tip_cents"],
    );
    // Amounts beyond i64 do not even decode.
    let err = Command::decode("visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "card", "amount_cents": 1e30}]})).expect_err("no f64");
    assert_eq!(err.code, ErrorCode::Invalid);
    let err = Command::decode("visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "bitcoin", "amount_cents": 1}]})).expect_err("method");
    assert!(err.message.contains("method"), "{err}");
    // A discount above 20% needs an admin; 20% exactly is fine for a cashier.
    let discounted = |pct: u32| {
        cmd(
            "visit.checkout",
            json!({"visit_id": v, "request_id": "d", "payments": [{"method": "card", "amount_cents": 5_000 - 50 * i64::from(pct)}], "discount": {"percent": pct, "reason": "regular"}}),
        )
    };
    s.f.refuse(&c, discounted(30), ErrorCode::Forbidden, &["20%", "admin"]);
    let err = Command::decode("visit.checkout", json!({"visit_id": v, "request_id": "d", "payments": [{"method": "card", "amount_cents": 5_000}], "discount": {"amount_cents": 100}})).expect_err("a discount needs a reason");
    assert!(err.message.contains("reason"), "{err}");
    s.f.refuse(&c, cmd("visit.checkout", json!({"visit_id": v, "request_id": "d", "payments": [{"method": "card", "amount_cents": 1}], "discount": {"amount_cents": 9_000, "reason": "x"}})), ErrorCode::Invalid, &["discount"]);
    // A custom tip split must add up.
    s.f.refuse(
        &c,
        cmd("visit.checkout", json!({"visit_id": v, "request_id": "t", "tip_cents": 500, "payments": [{"method": "card", "amount_cents": 5_500}], "tip_split": [{"therapist_id": s.tess, "amount_cents": 100}]})),
        ErrorCode::Invalid,
        &["tip_split", "100", "500"],
    );
    // A visit not finished yet.
    let waiting = s.f.add_visit("Wendy", &[s.thai]);
    s.f.refuse(
        &c,
        pay(waiting, "w", card(5_000), 0),
        ErrorCode::Conflict,
        &["awaiting payment"],
    );
    // No open drawer for this cashier.
    let other = s.f.add_staff("Cleo", Role::Cashier, &[]);
    s.f.refuse(
        &staff_actor(other, Role::Cashier),
        pay(v, "r", card(5_000), 0),
        ErrorCode::Conflict,
        &["drawer"],
    );
    // Then the right one goes through, and the admin may give a bigger discount.
    s.f.run(&c, discounted(20));
    let v2 = s.served("Bo");
    s.f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 0})));
    s.f.run(&ADMIN, cmd("visit.checkout", json!({"visit_id": v2, "request_id": "a", "payments": [{"method": "card", "amount_cents": 2_500}], "discount": {"percent": 50, "reason": "complaint"}})));
}

#[test]
fn void_before_payment_refund_and_retip_after() {
    let mut s = shop();
    let c = s.cashier.clone();
    let unpaid = s.served("Una");
    let paid = s.served("Pia");
    s.f.run(
        &c,
        pay(
            paid,
            "p",
            json!([{"method": "cash", "amount_cents": 6_000}]),
            1_000,
        ),
    );
    // Void: only before payment, admin, with a reason.
    s.f.refuse(
        &c,
        cmd("visit.void", json!({"visit_id": unpaid, "reason": "test"})),
        ErrorCode::Forbidden,
        &[],
    );
    s.f.refuse(
        &ADMIN,
        cmd("visit.void", json!({"visit_id": paid, "reason": "oops"})),
        ErrorCode::Conflict,
        &[],
    );
    s.f.run(
        &ADMIN,
        cmd(
            "visit.void",
            json!({"visit_id": unpaid, "reason": "walked out"}),
        ),
    );
    // Refund: only after payment, admin, reason, never more than was paid.
    s.f.refuse(
        &c,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 100, "method": "card", "reason": "x"}),
        ),
        ErrorCode::Forbidden,
        &[],
    );
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": unpaid, "amount_cents": 100, "method": "card", "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["not paid"],
    );
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 6_001, "method": "card", "reason": "x"}),
        ),
        ErrorCode::Invalid,
        &["6000"],
    );
    // A cash sale is refunded in cash, from the admin's own open drawer.
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 100, "method": "card", "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["tender it was paid with"],
    );
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 100, "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["drawer"],
    );
    s.f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 1_500})));
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 2_000, "reason": "x"}),
        ),
        ErrorCode::Conflict,
        &["1500 cents in cash"],
    );
    let before = s.f.visit(paid).checkout.clone();
    s.f.run(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 1_500, "reason": "oil allergy"}),
        ),
    );
    assert_eq!(s.f.visit(paid).refunds[0].method, Method::Cash);
    // The admin may say otherwise: the rest back to a card, from no drawer.
    s.f.run(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 4_500, "method": "card", "other_tender": true, "reason": "full"}),
        ),
    );
    assert_eq!(s.f.visit(paid).refunds[1].drawer_id, None);
    let admin_drawer =
        s.f.state
            .drawers
            .values()
            .find(|d| d.owner.is_none())
            .expect("admin drawer");
    assert_eq!(admin_drawer.expected().cash, 0);
    assert_eq!(admin_drawer.expected().card, 0);
    s.f.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": paid, "amount_cents": 1, "method": "card", "reason": "x"}),
        ),
        ErrorCode::Invalid,
        &["0 cents"],
    );
    // Retip: the split changes, the tip total and the original payments do not.
    s.f.run(&ADMIN, cmd("visit.retip", json!({"visit_id": paid, "reason": "shared", "tip_split": [{"therapist_id": s.tess, "amount_cents": 600}, {"therapist_id": s.otto, "amount_cents": 400}]})));
    let after = s.f.visit(paid).checkout.clone().expect("checkout");
    let before = before.expect("checkout");
    assert_eq!(after.payments, before.payments);
    assert_eq!(after.tip_cents, before.tip_cents);
    assert_eq!(
        after.tips.iter().map(|t| t.amount_cents).sum::<i64>(),
        1_000
    );
    s.f.refuse(&ADMIN, cmd("visit.retip", json!({"visit_id": paid, "reason": "x", "tip_split": [{"therapist_id": s.tess, "amount_cents": 999}]})), ErrorCode::Invalid, &["999", "1000"]);
    let err = Command::decode(
        "visit.retip",
        json!({"visit_id": paid, "tip_split": [{"therapist_id": s.tess, "amount_cents": 1000}]}),
    )
    .expect_err("needs a reason");
    assert!(err.message.contains("reason"), "{err}");
}

#[test]
fn the_drawer_opens_once_moves_and_closes_with_a_z_report() {
    let mut s = shop();
    let c = s.cashier.clone();
    s.f.refuse(
        &c,
        cmd("drawer.open", json!({"float_cents": 5})),
        ErrorCode::Conflict,
        &["already open"],
    );
    s.f.run(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "pay_in", "amount_cents": 2_000, "note": "change from bank"}),
        ),
    );
    s.f.run(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "tip_payout", "amount_cents": 500, "note": "Tess"}),
        ),
    );
    s.f.run(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "safe_drop", "amount_cents": 5_000, "note": ""}),
        ),
    );
    s.f.refuse(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "pay_out", "amount_cents": 1_000_000, "note": ""}),
        ),
        ErrorCode::Conflict,
        &["cash"],
    );
    s.f.refuse(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "pay_out", "amount_cents": -1, "note": ""}),
        ),
        ErrorCode::Invalid,
        &["amount_cents"],
    );
    let v = s.served("Ann");
    // Visits await payment: refused, and only an admin may force.
    s.f.refuse(
        &c,
        cmd("drawer.close", json!({"counted": {"cash": 6_500}})),
        ErrorCode::Conflict,
        &["await payment", "A-001"],
    );
    s.f.refuse(
        &c,
        cmd(
            "drawer.close",
            json!({"counted": {"cash": 6_500}, "force": true}),
        ),
        ErrorCode::Forbidden,
        &["admin"],
    );
    s.f.run(
        &c,
        pay(
            v,
            "r",
            json!([{"method": "card", "amount_cents": 5_000}]),
            0,
        ),
    );
    let done = s.f.run(
        &c,
        cmd(
            "drawer.close",
            json!({"counted": {"cash": 6_400, "card": 5_000}}),
        ),
    );
    let z = &done.reply["z_report"];
    assert_eq!(z["expected"]["cash"], 10_000 + 2_000 - 500 - 5_000);
    assert_eq!(z["counted"]["cash"], 6_400);
    assert_eq!(z["variance"]["cash"], -100);
    assert_eq!(z["variance"]["card"], 0);
    // A closed drawer's Z report never changes: further moves are refused.
    let closed =
        s.f.state
            .drawers
            .values()
            .find(|d| !d.is_open())
            .cloned()
            .expect("closed");
    s.f.refuse(
        &c,
        cmd(
            "drawer.move",
            json!({"kind": "pay_in", "amount_cents": 1, "note": ""}),
        ),
        ErrorCode::Conflict,
        &["drawer"],
    );
    assert_eq!(s.f.state.drawers[&closed.id], closed);
    // The admin may force a close while visits await payment.
    s.f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 0})));
    let _waiting = s.served("Zoe");
    let forced = s.f.run(
        &ADMIN,
        cmd("drawer.close", json!({"counted": {}, "force": true})),
    );
    assert_eq!(forced.reply["drawer"]["forced"], true);
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn the_books_balance_for_any_seeded_day() {
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut s = shop();
        let c = s.cashier.clone();
        let (
            mut float,
            mut cash_in,
            mut change,
            mut cash_refunds,
            mut pay_in,
            mut pay_out,
            mut tip_out,
            mut drops,
        ) = (10_000i64, 0i64, 0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
        let mut other_in = PerMethod::default();
        let mut tips_taken = 0i64;
        let mut paid: Vec<Id> = Vec::new();
        let admin_float = 20_000i64;
        s.f.run(
            &ADMIN,
            cmd("drawer.open", json!({"float_cents": admin_float})),
        );
        for step in 0..300 {
            match rng.below(6) {
                0 | 1 => {
                    let v = s.served(&format!("C{step}"));
                    let tip = (rng.below(4) as i64) * 250;
                    let total = 5_000 + tip;
                    let method = Method::ALL[rng.below(4) as usize];
                    let over = if method == Method::Cash {
                        rng.below(3) as i64 * 500
                    } else {
                        0
                    };
                    let split = rng.below(2) == 0;
                    let payments = if split && total > 1_000 {
                        json!([{"method": "cash", "amount_cents": 1_000 + over}, {"method": method.as_str(), "amount_cents": total - 1_000}])
                    } else {
                        json!([{"method": method.as_str(), "amount_cents": total + over}])
                    };
                    s.f.run(&c, pay(v, &format!("r{step}"), payments, tip));
                    let ck = s.f.visit(v).checkout.clone().expect("checkout");
                    for p in &ck.payments {
                        if p.method == Method::Cash {
                            cash_in += p.amount_cents;
                        } else {
                            other_in.add(p.method, p.amount_cents);
                        }
                    }
                    change += ck.change_cents;
                    tips_taken += tip;
                    paid.push(v);
                }
                2 if !paid.is_empty() => {
                    let v = paid[rng.below(paid.len() as u64) as usize];
                    // Back in a tender it was paid with; cash from the
                    // admin's drawer (never more than it holds), other
                    // tenders from no drawer at all.
                    let method = Method::ALL[rng.below(4) as usize];
                    let mut left = s.f.visit(v).refundable_in(method);
                    if method == Method::Cash {
                        left = left.min(s.drawer_of(&ADMIN).expected().cash);
                    }
                    if left > 0 {
                        let amount = 1 + rng.below(left as u64) as i64;
                        s.f.run(&ADMIN, cmd("visit.refund", json!({"visit_id": v, "amount_cents": amount, "method": method.as_str(), "reason": "seeded"})));
                        if method == Method::Cash {
                            cash_refunds += amount;
                        }
                    }
                }
                3 if !paid.is_empty() => {
                    let v = paid[rng.below(paid.len() as u64) as usize];
                    let tip =
                        s.f.visit(v)
                            .checkout
                            .as_ref()
                            .map(|c| c.tip_cents)
                            .unwrap_or(0);
                    let a = rng.below(tip as u64 + 1) as i64;
                    s.f.run(&ADMIN, cmd("visit.retip", json!({"visit_id": v, "reason": "seeded", "tip_split": [{"therapist_id": s.tess, "amount_cents": a}, {"therapist_id": s.otto, "amount_cents": tip - a}]})));
                }
                4 => {
                    let amount = 1 + rng.below(3_000) as i64;
                    s.f.run(
                        &c,
                        cmd(
                            "drawer.move",
                            json!({"kind": "pay_in", "amount_cents": amount, "note": ""}),
                        ),
                    );
                    pay_in += amount;
                }
                _ => {
                    let available = s.drawer_of(&c).expected().cash;
                    if available > 1 {
                        let amount = 1 + rng.below((available - 1).min(2_000) as u64) as i64;
                        let kind = ["pay_out", "tip_payout", "safe_drop"][rng.below(3) as usize];
                        s.f.run(
                            &c,
                            cmd(
                                "drawer.move",
                                json!({"kind": kind, "amount_cents": amount, "note": ""}),
                            ),
                        );
                        match kind {
                            "pay_out" => pay_out += amount,
                            "tip_payout" => tip_out += amount,
                            _ => drops += amount,
                        }
                    }
                }
            }
            // After every step: the cashier's drawer balances, computed
            // independently; refunds never touch it.
            let d = s.drawer_of(&c);
            let expected_cash = float + cash_in - change + pay_in - pay_out - tip_out - drops;
            assert_eq!(
                d.expected().cash,
                expected_cash,
                "seed {seed} step {step}: cash"
            );
            for m in [Method::Card, Method::Voucher, Method::Other] {
                assert_eq!(
                    d.expected().get(m),
                    other_in.get(m),
                    "seed {seed} step {step}: {m:?}"
                );
            }
            let admin = s.drawer_of(&ADMIN).expected();
            assert_eq!(
                admin.cash,
                admin_float - cash_refunds,
                "seed {seed} step {step}"
            );
            assert!(admin.cash >= 0);
            assert_eq!(admin.card + admin.voucher + admin.other, 0);
            // Tips allocated = tips taken, whatever the retips did.
            let allocated: i64 =
                s.f.state
                    .visits
                    .values()
                    .filter_map(|v| v.checkout.as_ref())
                    .flat_map(|c| c.tips.iter())
                    .map(|t| t.amount_cents)
                    .sum();
            assert_eq!(allocated, tips_taken, "seed {seed} step {step}: tips");
        }
        // Revenue − cash refunds over all drawers = what the drawers expect
        // beyond floats and moves (other refunds leave no drawer).
        let refunds: i64 =
            s.f.state
                .visits
                .values()
                .flat_map(|v| v.refunds.iter())
                .filter(|r| r.method == Method::Cash)
                .map(|r| r.amount_cents)
                .sum();
        assert_eq!(refunds, cash_refunds);
        let revenue: i64 =
            s.f.state
                .visits
                .values()
                .filter_map(|v| v.checkout.as_ref())
                .map(|c| c.paid_cents() - c.change_cents)
                .sum();
        let expected_all: i64 =
            s.f.state
                .drawers
                .values()
                .map(|d| d.expected().total())
                .sum();
        assert_eq!(
            expected_all,
            revenue - refunds + float + admin_float + pay_in - pay_out - tip_out - drops,
            "seed {seed}: all drawers"
        );
        float = 0;
        let _ = float;
    }
}

impl Shop {
    fn drawer_of(&self, actor: &Actor) -> crate::domain::money::Drawer {
        let owner = actor.staff_id();
        self.f
            .state
            .drawers
            .values()
            .find(|d| d.is_open() && d.owner == owner)
            .cloned()
            .expect("drawer")
    }
}

/// A seeded day, its report, and the same numbers computed independently
/// from the floor's state; then CSV parsed back, and the report unchanged by
/// the next day's activity.
#[test]
fn the_day_report_matches_an_independent_computation() {
    let mut s = shop();
    let c = s.cashier.clone();
    let mut rng = Rng(99);
    let mut expect_revenue = PerMethod::default();
    let mut expect_discount = 0i64;
    let mut expect_tips = std::collections::BTreeMap::<Id, i64>::new();
    let mut waits = Vec::new();
    for i in 0..40 {
        s.f.advance(3);
        let v = s.f.add_visit(&format!("C{i}"), &[s.thai]);
        let created = s.f.now.ms;
        s.f.advance(1 + rng.below(10) as i64);
        let (t, _) = s.f.call(v);
        waits.push(s.f.now.ms - created);
        s.f.start(v);
        s.f.advance(60);
        s.f.finish(v);
        if i % 5 == 4 {
            continue; // left awaiting payment
        }
        let tip = 100 * (i % 3);
        let discount = if i % 7 == 0 { 500 } else { 0 };
        let total = 5_000 - discount + tip;
        let method = Method::ALL[(i % 4) as usize];
        let mut args = json!({"visit_id": v, "request_id": format!("r{i}"), "tip_cents": tip, "payments": [{"method": method.as_str(), "amount_cents": total}]});
        if discount > 0 {
            args["discount"] = json!({"amount_cents": discount, "reason": "loyalty"});
        }
        s.f.run(&c, cmd("visit.checkout", args));
        expect_revenue.add(method, total);
        expect_discount += discount;
        *expect_tips.entry(t).or_default() += tip;
    }
    let day = s.f.now.day;
    let log = s.f.log.clone();
    let report = day_report(log.clone(), day, |_| day);
    assert_eq!(report.revenue_by_method, expect_revenue);
    assert_eq!(report.revenue_cents, expect_revenue.total());
    assert_eq!(report.discounts.cents, expect_discount);
    assert_eq!(report.visits_created, 40);
    assert_eq!(report.visits_by_state["closed"], 32);
    assert_eq!(report.visits_by_state["awaiting_payment"], 8);
    assert_eq!(report.services_sold[0].count, 32);
    for t in &report.therapists {
        assert_eq!(
            t.tips_cents,
            expect_tips.get(&t.therapist_id).copied().unwrap_or(0),
            "{}",
            t.name
        );
    }
    let avg_wait = waits.iter().sum::<i64>() as f64 / waits.len() as f64 / 60_000.0;
    assert!((report.average_wait_min.expect("wait") - avg_wait).abs() < 1e-9);
    assert!((report.average_service_min.expect("service") - 60.0).abs() < 1e-9);
    let turns: Turns = report.therapists.iter().map(|t| t.turns).sum();
    assert_eq!(turns, Turns(40_000));

    // CSV, read back with a CSV reader.
    let text = to_csv(&report).expect("csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<(String, String, String)> = reader
        .records()
        .map(|r| r.expect("row"))
        .map(|r| (r[0].to_string(), r[1].to_string(), r[3].to_string()))
        .collect();
    let get = |section: &str, key: &str| {
        rows.iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.clone())
            .expect("row")
    };
    assert_eq!(
        get("revenue_cents", "total"),
        report.revenue_cents.to_string()
    );
    assert_eq!(
        get("revenue_cents", "card"),
        expect_revenue.card.to_string()
    );
    assert_eq!(get("visits_by_state", "closed"), "32");

    // The next day's activity (and a later checkout of day 1's visits) does
    // not change day 1's report.
    let end_of_day1 = s.f.now.ms;
    let day_of = move |ms: i64| if ms <= end_of_day1 { day } else { day + 1 };
    let before = day_report(log.clone(), day, day_of);
    s.f.advance(24 * 60);
    s.f.now.day += 1;
    let late =
        s.f.state
            .visits
            .values()
            .find(|v| v.state == VisitState::AwaitingPayment)
            .map(|v| v.id)
            .expect("one left");
    s.f.run(
        &c,
        pay(
            late,
            "late",
            json!([{"method": "card", "amount_cents": 5_000}]),
            0,
        ),
    );
    let v = s.f.add_visit("Tomorrow", &[s.thai]);
    s.f.serve(v);
    let after = day_report(s.f.log.clone(), day, day_of);
    assert_eq!(before, after);
    assert_eq!(report.revenue_by_method, after.revenue_by_method);
}
