//! The counter (#17): tax per line and per rate with rates and prices that
//! round, products and their stock, gift cards sold, redeemed and refunded
//! onto, receipts for every checkout, sale and refund, refunds per line,
//! corrections by a cashier with an admin's approval, every refusal, and
//! the day report's counter figures.

use serde_json::{json, Value};

use super::books::cmd;
use super::harness::*;
use crate::domain::event::Event;
use crate::domain::money::giftcode;
use crate::domain::money::receipt::Receipt;
use crate::domain::report::day_report;
use crate::domain::{Actor, Command, ErrorCode, Id, Role};
use ErrorCode::{Conflict, Forbidden, Invalid, NotFound};

pub(super) struct Counter {
    pub f: Floor,
    pub cashier: Actor,
    pub admin: Actor,
    pub admin_id: Id,
    /// 19% and 7.25% services, 19% and 7.25% products (prices that round).
    pub massage: Id,
    pub facial: Id,
    pub oil: Id,
    pub cream: Id,
    /// Every sold card's code, as the acks showed them.
    codes: Vec<String>,
}

/// A counter with a cashier (drawer open, float 100.00), an admin, a
/// therapist, rooms, two taxed services and two products on the shelf.
pub(super) fn counter(prices_include_tax: bool) -> Counter {
    let mut f = Floor::new();
    f.rules.prices_include_tax = prices_include_tax;
    let admin_id = f.add_staff("Ada", Role::Admin, &[]);
    let cashier_id = f.add_staff("Cass", Role::Cashier, &[]);
    f.add_therapist("Tess", &[]);
    f.add_room("Lotus", 1);
    let massage = f.run(
        &ADMIN,
        cmd(
            "service.create",
            json!({"name": "Massage", "duration_min": 60, "price_cents": 6_999, "tax_rate_bp": 1_900}),
        ),
    );
    let massage = massage.reply["service"]["id"].as_u64().expect("id");
    let facial = f.run(
        &ADMIN,
        cmd(
            "service.create",
            json!({"name": "Facial", "duration_min": 30, "price_cents": 4_545, "tax_rate_bp": 725}),
        ),
    );
    let facial = facial.reply["service"]["id"].as_u64().expect("id");
    let oil = product(&mut f, "Lavender oil", "LAV-50", 1_299, 1_900, 10);
    let cream = product(&mut f, "Rose cream", "ROSE-1", 2_005, 725, 3);
    let cashier = staff_actor(cashier_id, Role::Cashier);
    f.run(&cashier, cmd("drawer.open", json!({"float_cents": 10_000})));
    Counter {
        f,
        cashier,
        admin: staff_actor(admin_id, Role::Admin),
        admin_id,
        massage,
        facial,
        oil,
        cream,
        codes: Vec::new(),
    }
}

pub(super) fn product(
    f: &mut Floor,
    name: &str,
    sku: &str,
    price: i64,
    rate: i64,
    stock: i64,
) -> Id {
    let d = f.run(
        &ADMIN,
        cmd(
            "product.create",
            json!({"name": name, "sku": sku, "price_cents": price, "tax_rate_bp": rate, "stock": stock}),
        ),
    );
    d.reply["product"]["id"].as_u64().expect("product id")
}

/// Fills in what the shell adds: the hash of each gift card code given in
/// payment or a balance enquiry (a sold card's code comes from the core).
pub(super) fn with_codes(mut c: Command) -> Command {
    let pay = |payments: &mut Vec<crate::domain::command::PaymentArg>| {
        for p in payments {
            if let Some(code) = p.code.take() {
                p.code_hash = Some(giftcode::hash(&code));
            }
        }
    };
    match &mut c {
        Command::SaleCheckout(a) => pay(&mut a.payments),
        Command::VisitCheckout(a) => pay(&mut a.payments),
        Command::GiftcardIssue(a) => pay(&mut a.payments),
        Command::GiftcardBalance(a) => a.code_hash = giftcode::hash(&std::mem::take(&mut a.code)),
        _ => {}
    }
    c
}

/// The codes a checkout's ack shows, in the order of its cards.
pub(super) fn codes_in(reply: &Value) -> Vec<String> {
    reply["giftcards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(String::from))
        .collect()
}

impl Counter {
    pub fn run(&mut self, actor: &Actor, name: &str, args: Value) -> Value {
        let reply = self.f.run(actor, with_codes(cmd(name, args))).reply;
        if reply["retried"] != true {
            self.codes.extend(codes_in(&reply));
        }
        reply
    }
    /// The code of the `n`th card sold (from 1), as its ack showed it.
    pub fn code(&self, n: usize) -> String {
        self.codes[n - 1].clone()
    }
    pub fn refuse(
        &mut self,
        actor: &Actor,
        name: &str,
        args: Value,
        code: ErrorCode,
        words: &[&str],
    ) {
        self.f
            .refuse(actor, with_codes(cmd(name, args)), code, words);
    }
    /// A visit of `services` served and awaiting payment.
    pub fn served(&mut self, services: &[Id]) -> Id {
        let v = self.f.add_visit("Ann", services);
        self.f.serve(v);
        v
    }
    pub fn receipt(&self, id: Id) -> Receipt {
        self.f.state.till.receipt_for(id).cloned().expect("receipt")
    }
    pub fn stock(&self, product: Id) -> i64 {
        self.f.state.till.products[&product].stock
    }
    pub fn balance(&self, code: &str) -> i64 {
        self.f
            .state
            .till
            .card_by_code_hash(&giftcode::hash(code))
            .expect("card")
            .balance_cents
    }
    pub fn cash(&self) -> i64 {
        let owner = self.cashier.staff_id();
        self.f
            .state
            .drawers
            .values()
            .find(|d| d.is_open() && d.owner == owner)
            .expect("drawer")
            .expected()
            .cash
    }
}

/// Every line's gross is its net plus its tax; the rows per rate add up to
/// the taxable lines; the lines add up to what the payments cover.
pub(super) fn check_receipt_adds_up(r: &Receipt) {
    for l in &r.lines {
        assert_eq!(
            l.taxed.net_cents + l.taxed.tax_cents,
            l.taxed.gross_cents,
            "{l:?}"
        );
    }
    let rows = r.tax_rows();
    let taxable: i64 = r
        .lines
        .iter()
        .filter(|l| l.is_taxable())
        .map(|l| l.taxed.gross_cents)
        .sum();
    assert_eq!(rows.iter().map(|x| x.gross_cents).sum::<i64>(), taxable);
    for x in &rows {
        assert_eq!(x.net_cents + x.tax_cents, x.gross_cents);
    }
    if r.kind == crate::domain::money::receipt::ReceiptKind::Sale {
        assert_eq!(r.paid_cents() - r.change_cents, r.total_cents(), "{r:?}");
    } else {
        assert_eq!(r.paid_cents(), r.total_cents(), "{r:?}");
    }
}

#[test]
fn tax_per_line_rounds_half_away_and_the_rates_add_up_prices_including_tax() {
    let mut c = counter(true);
    let v = c.served(&[c.massage, c.facial]);
    let cashier = c.cashier.clone();
    // 69.99 + 45.45 + 3 × 12.99 + 20.05 = 174.46 gross; a 5.00 tip.
    let done = c.run(
        &cashier,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "tip_cents": 500,
               "items": [{"product_id": c.oil, "qty": 3}, {"product_id": c.cream, "qty": 1}],
               "payments": [{"method": "cash", "amount_cents": 10_000}, {"method": "card", "amount_cents": 7_946}]}),
    );
    let r = c.receipt(v);
    check_receipt_adds_up(&r);
    assert_eq!(r.number, 1);
    assert_eq!(r.total_cents(), 17_446 + 500);
    // 19%: 69.99 → tax 11.17 (69.99 × 19/119 = 11.175… → 11.18? no: 11.1747 → 11.17);
    // 3 × 12.99 = 38.97 → 6.222… → 6.22. 7.25%: 45.45 → 3.072… → 3.07; 20.05 → 1.355… → 1.36.
    let rows = r.tax_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].rate_bp, rows[0].tax_cents), (725, 307 + 136));
    assert_eq!((rows[1].rate_bp, rows[1].tax_cents), (1_900, 1_117 + 622));
    assert_eq!(rows[1].gross_cents, 6_999 + 3_897);
    assert_eq!(done["receipt"]["sale"]["number"], "R-000001");
    assert_eq!(done["receipt"]["total_cents"], 17_946);
    assert_eq!(c.stock(c.oil), 7);
    assert_eq!(c.stock(c.cream), 2);
    assert_eq!(c.cash(), 20_000);
}

#[test]
fn prices_without_tax_add_it_at_the_checkout() {
    let mut c = counter(false);
    let v = c.served(&[c.facial]);
    let cashier = c.cashier.clone();
    // 45.45 net + 7.25% = 3.295… → 3.30: 48.75. One 0.50 cream-less oil:
    // 12.99 × 2 = 25.98 + 19% = 4.9362 → 4.94: 30.92.
    c.refuse(
        &cashier,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "items": [{"product_id": c.oil, "qty": 2}],
               "payments": [{"method": "card", "amount_cents": 4_545 + 2_598}]}),
        Invalid,
        &["+ tax", "7967"],
    );
    c.run(
        &cashier,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "items": [{"product_id": c.oil, "qty": 2}],
               "payments": [{"method": "card", "amount_cents": 7_967}]}),
    );
    let r = c.receipt(v);
    check_receipt_adds_up(&r);
    let rows = r.tax_rows();
    assert_eq!((rows[0].net_cents, rows[0].tax_cents), (4_545, 330));
    assert_eq!((rows[1].net_cents, rows[1].tax_cents), (2_598, 494));
}

#[test]
fn a_discount_is_spread_over_the_goods_before_their_tax() {
    let mut c = counter(true);
    let v = c.served(&[c.massage]);
    let cashier = c.cashier.clone();
    // 10% of 69.99 + 12.99 = 8.298 → 8.30, spread 7.00 / 1.30 (by amount).
    c.run(
        &cashier,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "items": [{"product_id": c.oil, "qty": 1}],
               "discount": {"percent": 10, "reason": "regular"},
               "payments": [{"method": "card", "amount_cents": 8_298 - 830}]}),
    );
    let r = c.receipt(v);
    check_receipt_adds_up(&r);
    let d: i64 = r.lines.iter().map(|l| l.discount_cents).sum();
    assert_eq!(d, 830);
    assert_eq!(r.total_cents(), 8_298 - 830);
    assert_eq!(
        c.f.visit(v).checkout.as_ref().expect("paid").discount_cents,
        830
    );
}

#[test]
fn stock_never_goes_below_zero_and_bad_lines_change_nothing() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let pay = |cents: i64| json!([{"method": "card", "amount_cents": cents}]);
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 4}], "payments": pay(8_020)}), Conflict, &["3 in stock"]);
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 0}], "payments": pay(1)}), Invalid, &["items.0.qty"]);
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 1}, {"product_id": c.cream, "qty": 2}], "payments": pay(6_015)}), Invalid, &["items.1", "twice"]);
    c.refuse(
        &cashier,
        "sale.checkout",
        json!({"request_id": "s", "items": [{"product_id": 999, "qty": 1}], "payments": pay(1)}),
        Invalid,
        &["items.0.product_id"],
    );
    c.refuse(
        &cashier,
        "sale.checkout",
        json!({"request_id": "s", "payments": pay(1)}),
        Invalid,
        &["items"],
    );
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 1}], "payments": pay(2_004)}), Invalid, &["2004", "2005"]);
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 1}], "payments": [{"method": "card", "amount_cents": -5}]}), Invalid, &["amount_cents"]);
    // A non-integer amount or quantity does not even decode.
    for bad in [
        json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 1.5}]}),
        json!({"request_id": "s", "items": [{"product_id": c.cream, "qty": 1}], "payments": [{"method": "card", "amount_cents": 20.05}]}),
    ] {
        let err = crate::domain::Command::decode("sale.checkout", bad).expect_err("refused");
        assert_eq!(err.code, Invalid);
    }
    // Three sell; the fourth is refused; stock moves by reasoned counts.
    c.run(&cashier, "sale.checkout", json!({"request_id": "s1", "items": [{"product_id": c.cream, "qty": 3}], "payments": pay(6_015)}));
    assert_eq!(c.stock(c.cream), 0);
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s2", "items": [{"product_id": c.cream, "qty": 1}], "payments": pay(2_005)}), Conflict, &["0 in stock"]);
    c.refuse(
        &ADMIN,
        "product.stock",
        json!({"product_id": c.cream, "delta": -1, "reason": "broken"}),
        Conflict,
        &["cannot come off"],
    );
    c.refuse(
        &ADMIN,
        "product.stock",
        json!({"product_id": c.cream, "delta": 0, "reason": "x"}),
        Invalid,
        &["delta"],
    );
    c.refuse(
        &ADMIN,
        "product.stock",
        json!({"product_id": c.cream, "delta": 5, "reason": " "}),
        Invalid,
        &["reason"],
    );
    c.run(
        &ADMIN,
        "product.stock",
        json!({"product_id": c.cream, "delta": 5, "reason": "delivery"}),
    );
    assert_eq!(c.stock(c.cream), 5);
    // The catalogue's own refusals.
    c.refuse(
        &ADMIN,
        "product.create",
        json!({"name": "X", "sku": "lav-50", "price_cents": 1}),
        Conflict,
        &["SKU"],
    );
    c.refuse(
        &ADMIN,
        "product.create",
        json!({"name": "X", "sku": "X1", "price_cents": 1, "tax_rate_bp": 10_001}),
        Invalid,
        &["tax_rate_bp"],
    );
    c.refuse(
        &ADMIN,
        "product.create",
        json!({"name": "X", "sku": "X1", "price_cents": -1}),
        Invalid,
        &["price_cents"],
    );
    c.refuse(
        &ADMIN,
        "product.create",
        json!({"name": "X", "sku": "X1", "price_cents": 1, "stock": -1}),
        Invalid,
        &["stock"],
    );
    c.refuse(
        &ADMIN,
        "product.update",
        json!({"product_id": 999, "price_cents": 1}),
        NotFound,
        &["999"],
    );
    c.refuse(
        &ADMIN,
        "service.create",
        json!({"name": "S", "duration_min": 30, "price_cents": 1, "tax_rate_bp": -1}),
        Invalid,
        &["tax_rate_bp"],
    );
    c.run(
        &ADMIN,
        "product.update",
        json!({"product_id": c.cream, "active": false}),
    );
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "s3", "items": [{"product_id": c.cream, "qty": 1}], "payments": pay(2_005)}), Conflict, &["no longer sold"]);
    // Only an admin keeps the catalogue.
    for (name, args) in [
        (
            "product.create",
            json!({"name": "n", "sku": "s", "price_cents": 1}),
        ),
        (
            "product.update",
            json!({"product_id": c.oil, "price_cents": 1}),
        ),
        (
            "product.stock",
            json!({"product_id": c.oil, "delta": 1, "reason": "r"}),
        ),
    ] {
        c.refuse(&cashier, name, args, Forbidden, &[name]);
    }
}

#[test]
fn gift_cards_are_sold_redeemed_up_to_their_balance_and_refunded_onto() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    // Sold for cash: the code's hash is stored, the drawer holds the cash.
    let sold = c.run(&cashier, "giftcard.issue", json!({"request_id": "g1", "amount_cents": 5_000, "payments": [{"method": "cash", "amount_cents": 5_000}]}));
    assert_eq!(sold["giftcards"][0]["balance_cents"], 5_000);
    assert_eq!(c.cash(), 15_000);
    let code = c.code(1);
    let card = code.as_str();
    assert_eq!(
        (sold["code"].as_str(), &sold["giftcard"]["balance_cents"]),
        (Some(card), &json!(5_000))
    );
    assert_eq!(c.balance(card), 5_000);
    let text = serde_json::to_string(&sold).expect("json");
    assert!(
        !text.contains(&giftcode::hash(card)),
        "the ack never shows the code's hash"
    );
    // A retry answers with the first receipt, issues nothing, and shows
    // the same code again to the cashier who sold it.
    let again = c.run(&cashier, "giftcard.issue", json!({"request_id": "g1", "amount_cents": 5_000, "payments": [{"method": "cash", "amount_cents": 5_000}]}));
    assert_eq!(again["retried"], true);
    assert_eq!(again["code"].as_str(), Some(card));
    assert_eq!(c.f.state.till.giftcards.len(), 1);
    let b = c.run(&cashier, "giftcard.balance", json!({"code": card}));
    assert_eq!(b["balance_cents"], 5_000);
    c.refuse(
        &cashier,
        "giftcard.balance",
        json!({"code": "nope"}),
        Conflict,
        &["no gift card"],
    );
    // Redeemed up to the balance, beside card.
    let v = c.served(&[c.massage]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "giftcard", "amount_cents": 5_001, "code": card}, {"method": "card", "amount_cents": 1_998}]}), Conflict, &["holds 5000"]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "giftcard", "amount_cents": 3_000, "code": card}, {"method": "giftcard", "amount_cents": 2_001, "code": card}, {"method": "card", "amount_cents": 1_998}]}), Conflict, &["holds 2000"]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "giftcard", "amount_cents": 5_000, "code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}, {"method": "card", "amount_cents": 1_999}]}), Conflict, &["no gift card"]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "giftcard", "amount_cents": 5_000}, {"method": "card", "amount_cents": 1_999}]}), Invalid, &["payments.0.code"]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "card", "amount_cents": 6_999, "code": card}]}), Invalid, &["gift card payment only"]);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "giftcard", "amount_cents": 5_000, "code": card}, {"method": "card", "amount_cents": 1_999}]}));
    assert_eq!(c.balance(card), 0);
    // Spent: the card pays no more.
    let w = c.served(&[c.facial]);
    c.refuse(&cashier, "visit.checkout", json!({"visit_id": w, "request_id": "r2", "payments": [{"method": "giftcard", "amount_cents": 1, "code": card}, {"method": "card", "amount_cents": 4_544}]}), Conflict, &["holds 0"]);
    // Refunded onto the card (by a cashier with an admin's approval): the
    // balance comes back, the drawer is not touched.
    let cash = c.cash();
    let admin_id = c.admin_id;
    let mut refund = cmd(
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 2_000, "method": "giftcard", "reason": "short session"}),
    );
    if let Command::VisitRefund(a) = &mut refund {
        a.approved_by = Some(admin_id);
    }
    let done = c.f.run(&cashier, refund);
    assert_eq!(c.balance(card), 2_000);
    assert_eq!(c.cash(), cash);
    let r: Receipt =
        c.f.state.till.receipts[&done.reply["receipt"]["id"].as_u64().expect("id")].clone();
    check_receipt_adds_up(&r);
    assert_eq!(r.approved_by, Some(admin_id));
    // Not more onto the card than it paid.
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 3_001, "method": "giftcard", "reason": "x"}),
        Conflict,
        &["3000 cents paid by giftcard"],
    );
    c.refuse(&ADMIN, "visit.refund", json!({"visit_id": v, "amount_cents": 3_001, "method": "giftcard", "other_tender": true, "reason": "x"}), Conflict, &["except to a gift card"]);
}

#[test]
fn a_retried_checkout_shows_its_cards_codes_again_to_the_seller_only() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.facial]);
    let args = json!({"visit_id": v, "request_id": "r", "giftcards": [{"amount_cents": 2_500}, {"amount_cents": 1_000}], "payments": [{"method": "card", "amount_cents": 4_545 + 3_500}]});
    let first = c.run(&cashier, "visit.checkout", args.clone());
    assert_eq!(first["retried"], false);
    let cards = first["giftcards"].as_array().expect("cards").clone();
    assert_eq!(cards.len(), 2);
    assert_eq!(
        (&cards[0]["amount_cents"], &cards[1]["amount_cents"]),
        (&json!(2_500), &json!(1_000))
    );
    let codes = codes_in(&first);
    assert_eq!(codes.len(), 2, "{first}");
    assert_ne!(codes[0], codes[1]);
    for (card, code) in cards.iter().zip(&codes) {
        let id = card["id"].as_u64().expect("id");
        let stored = &c.f.state.till.giftcards[&id];
        assert_eq!(
            stored.code_hash,
            giftcode::hash(code),
            "the card keeps the code's hash"
        );
        assert_eq!(card["hint"].as_str(), Some(giftcode::hint(code).as_str()));
    }
    // The code is in the ack only: not in any event, not in the state's
    // records (what the store writes), not in what a monitor is answered.
    let seq = c.f.state.seq();
    let log = format!("{:?} {:?}", c.f.log, c.f.state.records());
    assert!(codes.iter().all(|code| !log.contains(code.as_str())));
    // The ack was lost; the tablet sends the same command again: nothing new
    // happens and the cashier sees the same codes.
    let again = c.run(&cashier, "visit.checkout", args.clone());
    assert_eq!(
        (again["retried"].as_bool(), c.f.state.seq()),
        (Some(true), seq)
    );
    assert_eq!(codes_in(&again), codes);
    assert_eq!(again["receipt"], first["receipt"]);
    // Another cashier who learnt the request id sees the receipt, no codes.
    let other = c.f.add_staff("Otis", Role::Cashier, &[]);
    let other = staff_actor(other, Role::Cashier);
    let theirs = c.run(&other, "visit.checkout", args.clone());
    assert_eq!(theirs["retried"], true);
    assert!(
        codes_in(&theirs).is_empty() && theirs["code"].is_null(),
        "{theirs}"
    );
    // Nor does a monitor's view of the same answer carry them.
    let paid = crate::domain::decide::Reply::VisitPaid {
        visit_id: v,
        retried: true,
        codes: vec![(1, codes[0].clone())],
    };
    let seen = paid
        .render_for(crate::domain::views::Viewer::Monitor, &c.f.state, c.f.now)
        .to_string();
    assert!(!seen.contains(codes[0].as_str()), "{seen}");
    // The re-shown code pays.
    c.run(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.oil, "qty": 1}], "payments": [{"method": "giftcard", "amount_cents": 1_299, "code": codes_in(&again)[0]}]}));
    assert_eq!(c.balance(&codes[0]), 2_500 - 1_299);
    // A sale's retry: the same for the seller, nothing for another cashier.
    let sale = json!({"request_id": "s2", "giftcards": [{"amount_cents": 700}], "payments": [{"method": "cash", "amount_cents": 700}]});
    let sold = c.run(&cashier, "sale.checkout", sale.clone());
    let code = sold["code"]
        .as_str()
        .expect("one card: its code")
        .to_string();
    assert_eq!(sold["giftcard"]["issued_cents"], 700);
    let again = c.run(&cashier, "sale.checkout", sale.clone());
    assert_eq!(
        (again["retried"].as_bool(), again["code"].as_str()),
        (Some(true), Some(code.as_str()))
    );
    let theirs = c.run(&other, "sale.checkout", sale);
    assert!(
        theirs["retried"] == true && theirs["code"].is_null() && codes_in(&theirs).is_empty(),
        "{theirs}"
    );
}

#[test]
fn a_card_whose_code_the_key_did_not_make_is_not_shown_again_and_still_pays() {
    // Cards from before derived codes (random) or from a box with another
    // secret (a restore onto a new box): their hash matches no derivation.
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    c.f.rules.giftcard_key = Some(giftcode::CodeKey::new(&[1; 32]));
    let sale = json!({"request_id": "g", "giftcards": [{"amount_cents": 2_000}], "payments": [{"method": "card", "amount_cents": 2_000}]});
    let code = c.run(&cashier, "sale.checkout", sale.clone())["code"]
        .as_str()
        .expect("code")
        .to_string();
    c.f.rules.giftcard_key = Some(giftcode::CodeKey::new(&[2; 32]));
    let again = c.run(&cashier, "sale.checkout", sale);
    assert_eq!(again["retried"], true);
    assert!(
        again["code"].is_null() && codes_in(&again).is_empty(),
        "no wrong code: {again}"
    );
    assert_eq!(again["giftcards"][0]["amount_cents"], 2_000);
    c.run(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.oil, "qty": 1}], "payments": [{"method": "giftcard", "amount_cents": 1_299, "code": code}]}));
    assert_eq!(c.balance(&code), 701);
    // A card sold now gets a code from the new key.
    let v = c.served(&[c.facial]);
    let paid = c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "giftcards": [{"amount_cents": 100}], "payments": [{"method": "card", "amount_cents": 4_645}]}));
    let id = paid["giftcards"][0]["id"].as_u64().expect("id");
    let card = &c.f.state.till.giftcards[&id];
    assert_eq!(
        paid["code"].as_str(),
        giftcode::shown(c.f.rules.giftcard_key.as_ref(), card).as_deref()
    );
    // Without a secret no card is sold (and nothing changes).
    c.f.rules.giftcard_key = None;
    c.refuse(&cashier, "sale.checkout", json!({"request_id": "g2", "giftcards": [{"amount_cents": 2_000}], "payments": [{"method": "card", "amount_cents": 2_000}]}), ErrorCode::Internal, &["gift card secret"]);
}

#[test]
fn gift_cards_sold_on_a_visit_checkout_and_cancelled_by_line() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.facial]);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "giftcards": [{"amount_cents": 2_500}], "payments": [{"method": "card", "amount_cents": 4_545 + 2_500}]}));
    let r = c.receipt(v);
    check_receipt_adds_up(&r);
    // The card is outside tax: only the facial is in the rows.
    assert_eq!(
        r.tax_rows().iter().map(|x| x.gross_cents).sum::<i64>(),
        4_545
    );
    let card = c.code(1);
    assert_eq!(c.balance(&card), 2_500);
    // Half spent, the card's line cannot be refunded whole.
    c.run(&cashier, "sale.checkout", json!({"request_id": "s", "items": [{"product_id": c.oil, "qty": 1}], "payments": [{"method": "giftcard", "amount_cents": 1_299, "code": card}]}));
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1}], "method": "card", "reason": "x"}),
        Conflict,
        &["1201", "spent"],
    );
    // An amount refund never touches the card's line.
    c.run(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 4_545, "method": "card", "reason": "x"}),
    );
    assert_eq!(c.balance(&card), 1_201);
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 1, "method": "card", "reason": "x"}),
        Invalid,
        &["left to refund (0 cents)"],
    );
}

#[test]
fn refunds_per_line_restock_and_never_exceed_a_line() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.massage]);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "items": [{"product_id": c.oil, "qty": 3}], "payments": [{"method": "card", "amount_cents": 6_999 + 3_897}]}));
    assert_eq!(c.stock(c.oil), 7);
    // Line 1 is the oil: one bottle back into stock, two left on the line.
    let one = c.run(&ADMIN, "visit.refund", json!({"visit_id": v, "lines": [{"line": 1, "qty": 1}], "restock": true, "reason": "leaking"}));
    assert_eq!(one["receipt"]["number"], "R-000002");
    assert_eq!(one["receipt"]["kind"], "refund");
    assert_eq!(one["receipt"]["total_cents"], 1_299);
    assert_eq!(c.stock(c.oil), 8);
    let sale = c.receipt(v);
    assert_eq!(sale.refunded[1].qty, 1);
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1, "qty": 3}], "reason": "x"}),
        Invalid,
        &["2 left"],
    );
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 7}], "reason": "x"}),
        Invalid,
        &["no line 7"],
    );
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1}, {"line": 1}], "reason": "x"}),
        Invalid,
        &["twice"],
    );
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "reason": "x"}),
        Invalid,
        &["amount_cents", "lines", "full"],
    );
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "full": true, "amount_cents": 5, "reason": "x"}),
        Invalid,
        &["one of"],
    );
    // Not restocked: the bottles stay off the shelf.
    c.run(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1}], "reason": "gone off"}),
    );
    assert_eq!(c.stock(c.oil), 8);
    // The rest in full: the sale's tax comes back exactly.
    c.run(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "full": true, "reason": "complaint"}),
    );
    let sale = c.receipt(v);
    for (i, l) in sale.lines.iter().enumerate() {
        assert_eq!(sale.refunded[i].taxed, l.taxed, "line {i}");
    }
    c.refuse(
        &ADMIN,
        "visit.refund",
        json!({"visit_id": v, "full": true, "reason": "x"}),
        Conflict,
        &["nothing is left"],
    );
    let refunds: Vec<&Receipt> = c.f.state.till.refunds_of(sale.id).collect();
    assert_eq!(refunds.len(), 3);
    for r in refunds {
        check_receipt_adds_up(r);
    }
    assert_eq!(c.f.visit(v).refundable_cents(), 0);
}

#[test]
fn a_cashier_corrects_only_with_an_admins_approval() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.facial]);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "tip_cents": 500, "payments": [{"method": "cash", "amount_cents": 5_045}]}));
    let refund = json!({"visit_id": v, "amount_cents": 1_000, "reason": "too cold"});
    c.refuse(
        &cashier,
        "visit.refund",
        refund.clone(),
        Forbidden,
        &["needs an admin", "PIN"],
    );
    let approved = |by: Id| {
        let mut r = cmd("visit.refund", refund.clone());
        if let Command::VisitRefund(a) = &mut r {
            a.approved_by = Some(by);
        }
        r
    };
    // Another cashier's "approval" is none.
    let other = c.f.add_staff("Cole", Role::Cashier, &[]);
    c.f.refuse(
        &cashier,
        approved(other),
        Forbidden,
        &["not an active admin"],
    );
    let cash = c.cash();
    let done = c.f.run(&cashier, approved(c.admin_id));
    assert_eq!(c.cash(), cash - 1_000, "cash leaves the cashier's drawer");
    assert_eq!(done.reply["receipt"]["approved_by"], c.admin_id);
    // A re-split and a void the same way; the approval is on the record.
    let tess = c.f.visit(v).therapist.expect("therapist");
    let mut retip = cmd(
        "visit.retip",
        json!({"visit_id": v, "tip_split": [{"therapist_id": tess, "amount_cents": 500}], "reason": "check"}),
    );
    c.f.refuse(&cashier, retip.clone(), Forbidden, &["tip re-split"]);
    if let Command::VisitRetip(a) = &mut retip {
        a.approved_by = Some(c.admin_id);
    }
    let d = c.f.run(&cashier, retip);
    assert!(
        matches!(d.events.last(), Some(Event::CorrectionApproved { action, .. }) if action == "visit.retip")
    );
    let w = c.f.add_visit("Walk-out", &[c.facial]);
    let mut void = void(w, "duplicate ticket");
    c.f.refuse(&cashier, void.clone(), Forbidden, &["void"]);
    if let Command::VisitVoid(a) = &mut void {
        a.approved_by = Some(c.admin_id);
    }
    c.f.run(&cashier, void);
    // An admin needs nobody; a therapist may not at all.
    let admin = c.admin.clone();
    c.run(&admin, "visit.refund", json!({"visit_id": v, "amount_cents": 100, "method": "card", "reason": "x", "other_tender": true}));
    let t = staff_actor(tess, Role::Therapist);
    c.refuse(
        &t,
        "visit.refund",
        json!({"visit_id": v, "amount_cents": 100, "reason": "x"}),
        Forbidden,
        &["therapist"],
    );
}

#[test]
fn sales_refund_into_the_drawer_and_receipt_numbers_run_on() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let s = c.run(&cashier, "sale.checkout", json!({"request_id": "s1", "items": [{"product_id": c.oil, "qty": 2}], "payments": [{"method": "cash", "amount_cents": 3_000}]}));
    let sale = s["sale_id"].as_u64().expect("sale id");
    assert_eq!(s["receipt"]["change_cents"], 402);
    assert_eq!(c.cash(), 10_000 + 2_598);
    // Retried: the same receipt, nothing new.
    let again = c.run(&cashier, "sale.checkout", json!({"request_id": "s1", "items": [{"product_id": c.oil, "qty": 2}], "payments": [{"method": "cash", "amount_cents": 3_000}]}));
    assert_eq!(
        (again["sale_id"].as_u64(), &again["retried"]),
        (Some(sale), &json!(true))
    );
    assert_eq!(c.stock(c.oil), 8);
    c.refuse(
        &cashier,
        "sale.refund",
        json!({"sale_id": 999, "full": true, "reason": "x"}),
        NotFound,
        &["999"],
    );
    c.refuse(
        &cashier,
        "sale.refund",
        json!({"full": true, "reason": "x"}),
        Invalid,
        &["sale_id"],
    );
    c.run(&ADMIN, "drawer.open", json!({"float_cents": 0}));
    let admin = ADMIN;
    c.refuse(
        &admin,
        "sale.refund",
        json!({"sale_id": sale, "full": true, "reason": "x"}),
        Conflict,
        &["0 cents in cash"],
    );
    let mut r = cmd(
        "sale.refund",
        json!({"sale_id": sale, "lines": [{"line": 0, "qty": 1}], "restock": true, "reason": "changed mind"}),
    );
    if let Command::SaleRefund(a) = &mut r {
        a.approved_by = Some(c.admin_id);
    }
    let done = c.f.run(&cashier, r);
    assert_eq!(done.reply["receipt"]["number"], "R-000002");
    assert_eq!(c.cash(), 10_000 + 2_598 - 1_299);
    assert_eq!(c.stock(c.oil), 9);
    // A refund receipt is not a sale.
    let refund_id = done.reply["receipt"]["id"].as_u64().expect("id");
    c.refuse(
        &admin,
        "sale.refund",
        json!({"sale_id": refund_id, "full": true, "reason": "x"}),
        NotFound,
        &[],
    );
    // Numbers run on across visits, sales and refunds.
    let v = c.served(&[c.facial]);
    let paid = c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "v", "payments": [{"method": "card", "amount_cents": 4_545}]}));
    assert_eq!(paid["receipt"]["sale"]["number"], "R-000003");
}

#[test]
fn a_visit_paid_before_receipts_refunds_by_amount_and_reports_at_rate_zero() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    let v = c.served(&[c.facial]);
    // As a pre-#17 hub wrote it: the checkout alone, no receipt.
    let done = c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "payments": [{"method": "card", "amount_cents": 4_545}]}));
    assert!(done["receipt"]["sale"].is_object());
    let mut legacy = Floor::new();
    legacy.check_touched = true;
    for r in &c.f.log {
        if matches!(r.event, Event::Sold { .. }) {
            continue;
        }
        legacy.push(&r.actor, r.event.clone());
    }
    legacy.now = c.f.now;
    let before = legacy.state.visits[&v].refundable_cents();
    legacy.refuse(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v, "full": true, "reason": "x"}),
        ),
        Conflict,
        &["before receipts"],
    );
    legacy.run(
        &ADMIN,
        cmd(
            "visit.refund",
            json!({"visit_id": v, "amount_cents": 45, "reason": "x"}),
        ),
    );
    assert_eq!(legacy.state.visits[&v].refundable_cents(), before - 45);
    let r = day_report(legacy.log.clone(), DAY1, |_| DAY1);
    assert_eq!(r.counter.taxes.len(), 1);
    assert_eq!(
        (
            r.counter.taxes[0].rate_bp,
            r.counter.taxes[0].gross_cents,
            r.counter.taxes[0].tax_cents
        ),
        (0, 4_545, 0)
    );
}

#[test]
fn the_day_report_shows_tax_per_rate_products_and_gift_cards() {
    let mut c = counter(true);
    let cashier = c.cashier.clone();
    c.run(&cashier, "giftcard.issue", json!({"request_id": "g", "amount_cents": 10_000, "payments": [{"method": "card", "amount_cents": 10_000}]}));
    let v = c.served(&[c.massage, c.facial]);
    let card = c.code(1);
    c.run(&cashier, "visit.checkout", json!({"visit_id": v, "request_id": "r", "items": [{"product_id": c.oil, "qty": 2}], "tip_cents": 1_000,
        "payments": [{"method": "giftcard", "amount_cents": 10_000, "code": card}, {"method": "card", "amount_cents": 5_000}, {"method": "cash", "amount_cents": 142}]}));
    c.run(&ADMIN, "visit.refund", json!({"visit_id": v, "lines": [{"line": 2, "qty": 1}], "method": "card", "restock": true, "reason": "spare"}));
    let r = day_report(c.f.log.clone(), DAY1, |_| DAY1);
    let k = &r.counter;
    assert_eq!(
        (k.giftcards.sold.count, k.giftcards.sold.cents),
        (1, 10_000)
    );
    assert_eq!(
        (k.giftcards.redeemed.count, k.giftcards.redeemed.cents),
        (1, 10_000)
    );
    assert_eq!(k.giftcards.liability_change_cents, 0);
    assert_eq!(k.products_sold.len(), 1);
    assert_eq!(
        (
            k.products_sold[0].sold,
            k.products_sold[0].returned,
            k.products_sold[0].gross_cents
        ),
        (2, 1, 1_299)
    );
    assert_eq!(k.taxes_total.gross_cents, 6_999 + 4_545 + 1_299);
    assert_eq!(
        k.taxes_total.net_cents + k.taxes_total.tax_cents,
        k.taxes_total.gross_cents
    );
    assert_eq!(k.receipts, 3);
    // Money taken: the card sale (10 000 card) and the visit's cash and
    // card; not the gift card redemption (no money came in).
    assert_eq!(r.revenue_by_method.card, 10_000 + 5_000);
    assert_eq!(r.revenue_by_method.cash, 142);
    assert_eq!(r.refunds.cents, 1_299);
    super::books::check_csv_matches_json(&r);
}
