//! `spa-hub bench core`, the counter's part (#17): a visit's checkout with
//! 10 lines (a service, 8 products, a gift card sold), 3 payments (a gift
//! card redeemed, card, cash) decided and applied as the writer does,
//! timed one by one on the busy bench floor for p50/p99 (target: p99 ≤
//! 50 µs), and the same for a sale without a visit.

use std::time::Instant;

use serde_json::json;

use crate::bench::run_as_admin;
use crate::domain::command::VisitRef;
use crate::domain::{Command, Now, Rules, State};

fn wire(name: &str, args: serde_json::Value) -> Option<Command> {
    Command::decode(name, args).ok()
}

use crate::bench::percentile;

/// Decides and applies `cmd` as the admin token (as `run_as_admin` does);
/// the time in µs and whether it was accepted (every command timed here
/// makes events when it is).
fn timed(state: &mut State, cmd: &Command, now: Now, rules: &Rules) -> (f64, bool) {
    let started = Instant::now();
    let accepted = !run_as_admin(state, cmd, now, rules).is_empty();
    (started.elapsed().as_secs_f64() * 1e6, accepted)
}

pub(crate) fn checkout(state: &mut State, mut now: Now, rules: &Rules, iterations: u32) {
    let mut products = Vec::new();
    for i in 0..8 {
        let cmd = wire(
            "product.create",
            json!({"name": format!("Oil {i}"), "sku": format!("OIL-{i}"), "price_cents": 1_299 + i, "tax_rate_bp": if i % 2 == 0 { 725 } else { 1_900 }, "stock": 1_000_000}),
        );
        if let Some(cmd) = cmd {
            run_as_admin(state, &cmd, now, rules);
            products.push(state.counters.next_id - 1);
        }
    }
    let opened = wire("drawer.open", json!({"float_cents": 0}));
    if let Some(cmd) = opened {
        run_as_admin(state, &cmd, now, rules);
    }
    // A card with plenty on it; payments name its hash, as the shell would.
    if let Some(issue) = wire(
        "giftcard.issue",
        json!({"request_id": "bench-card", "amount_cents": 1_000_000_000, "payments": [{"method": "card", "amount_cents": 1_000_000_000}]}),
    ) {
        run_as_admin(state, &issue, now, rules);
    }
    let card_hash = state
        .till
        .giftcards
        .values()
        .next_back()
        .map(|c| c.code_hash.clone());
    let items: Vec<serde_json::Value> = products
        .iter()
        .map(|p| json!({"product_id": p, "qty": 1}))
        .collect();
    let goods: i64 = (0..8).map(|i| 1_299 + i).sum();
    let waiting: Vec<u64> = state.waiting().map(|v| v.id).collect();
    let mut visit_times = Vec::with_capacity(iterations as usize);
    let mut sale_times = Vec::with_capacity(iterations as usize);
    let mut refused = 0u32;
    for (k, visit_id) in waiting.iter().cycle().take(iterations as usize).enumerate() {
        now.ms += 1_000;
        // Serve a visit (untimed), or make a new one when the queue ran dry.
        let visit_id = if state
            .visits
            .get(visit_id)
            .is_some_and(|v| v.state.is_terminal())
        {
            let fresh = wire(
                "visit.create",
                json!({"customer_name": format!("Guest {k}"), "service_ids": [state.services.keys().next().copied().unwrap_or(0)]}),
            );
            match fresh {
                Some(Command::VisitCreate(mut c)) => {
                    c.token_hash = format!("bench-{k}");
                    run_as_admin(state, &Command::VisitCreate(c), now, rules);
                    state.counters.next_id - 1
                }
                _ => continue,
            }
        } else {
            *visit_id
        };
        let call = wire("visit.call", json!({"visit_id": visit_id}));
        if let Some(call) = call {
            run_as_admin(state, &call, now, rules);
        }
        for step in [
            Command::VisitStart(VisitRef { visit_id }),
            Command::VisitFinish(VisitRef { visit_id }),
        ] {
            run_as_admin(state, &step, now, rules);
        }
        // The room is tapped ready (the bench floor has 30 of them).
        let room = state.visits.get(&visit_id).and_then(|v| v.room);
        if let Some(ready) = room.and_then(|r| {
            wire(
                "room.set_status",
                json!({"room_id": r, "status": "available"}),
            )
        }) {
            run_as_admin(state, &ready, now, rules);
        }
        let services = state.visits.get(&visit_id).map_or(0, |v| v.services_cents);
        let total = services + goods + 2_500 + 500;
        let mut cmd = match wire(
            "visit.checkout",
            json!({"visit_id": visit_id, "request_id": format!("bench-{k}"), "tip_cents": 500,
                   "items": items, "giftcards": [{"amount_cents": 2_500}],
                   "payments": [{"method": "giftcard", "amount_cents": 3_000}, {"method": "card", "amount_cents": total - 4_000}, {"method": "cash", "amount_cents": 1_000}]}),
        ) {
            Some(c) => c,
            None => continue,
        };
        if let Command::VisitCheckout(a) = &mut cmd {
            a.payments[0].code_hash = card_hash.clone();
        }
        let (us, ok) = timed(state, &cmd, now, rules);
        if ok {
            visit_times.push(us);
        } else {
            refused += 1;
        }
        let mut sale = match wire(
            "sale.checkout",
            json!({"request_id": format!("bench-sale-{k}"), "items": items, "giftcards": [{"amount_cents": 2_500}],
                   "payments": [{"method": "giftcard", "amount_cents": 3_000}, {"method": "card", "amount_cents": goods + 2_500 - 4_000}, {"method": "cash", "amount_cents": 1_000}]}),
        ) {
            Some(c) => c,
            None => continue,
        };
        if let Command::SaleCheckout(a) = &mut sale {
            a.payments[0].code_hash = card_hash.clone();
        }
        let (us, ok) = timed(state, &sale, now, rules);
        if ok {
            sale_times.push(us);
        } else {
            refused += 1;
        }
    }
    for (what, times) in [
        ("visit.checkout (1 service, 8 products, 1 gift card sold, tip; gift card + card + cash)", &mut visit_times),
        ("sale.checkout (8 products, 1 gift card sold; gift card + card + cash)", &mut sale_times),
    ] {
        times.sort_by(f64::total_cmp);
        println!(
            "{what}: decide+apply p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} (target p99 ≤ 50 µs)",
            percentile(times, 0.5),
            percentile(times, 0.99),
            times.last().copied().unwrap_or(0.0),
            times.len()
        );
    }
    println!(
        "counter: {} receipts, {} gift cards in memory; {refused} checkouts refused (expected 0)",
        state.till.receipts.len(),
        state.till.giftcards.len()
    );
}
