//! Seeded random business days — price changes, role changes, renames,
//! removals, re-splits across midnight, zero totals, refunds in every
//! tender — with every day's report and every drawer checked after every
//! step against recomputations from the event log that share no code with
//! the report, and the JSON and CSV reports compared at the end.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::books::{check_csv_matches_json, cmd, Days};
use super::harness::*;
use crate::domain::command::ServiceCreate;
use crate::domain::event::Event;
use crate::domain::money::{Method, PerMethod};
use crate::domain::report::DayReport;
use crate::domain::rotation::Turns;
use crate::domain::state::VisitState;
use crate::domain::{Actor, Command, ErrorCode, EventRecord, Id, Role};

/// The report's numbers recomputed from the log with none of its code: no
/// `State`, just the events.
#[derive(Debug, Default, PartialEq)]
struct Recount {
    revenue: PerMethod,
    refunds: PerMethod,
    services_cents: i64,
    discounts_cents: i64,
    tips_cents: i64,
    sold: BTreeMap<Id, (u64, i64)>,
    tips_by: BTreeMap<Id, i64>,
    turns_by: BTreeMap<Id, Turns>,
    sessions_by: BTreeMap<Id, u64>,
}

fn recount(log: &[EventRecord], day: u32, day_of: impl Fn(i64) -> u32) -> Recount {
    let mut price: BTreeMap<Id, i64> = BTreeMap::new();
    let mut lines: BTreeMap<Id, Vec<(Id, i64)>> = BTreeMap::new();
    let mut tips_now: BTreeMap<Id, Vec<(Id, i64)>> = BTreeMap::new();
    // Visit → (therapist, turn, call day, currently called?)
    let mut calls: BTreeMap<Id, (Id, Turns, u32, bool)> = BTreeMap::new();
    let mut serving: BTreeMap<Id, Id> = BTreeMap::new();
    let mut out = Recount::default();
    for r in log {
        let d = day_of(r.at);
        if d > day {
            break;
        }
        let today = d == day;
        match &r.event {
            Event::ServiceCreated { service } | Event::ServiceUpdated { service } => {
                price.insert(service.id, service.price_cents);
            }
            Event::VisitCreated { visit } => {
                let l = visit.service_ids.iter().map(|s| (*s, price[s])).collect();
                lines.insert(visit.id, l);
            }
            Event::VisitCalled {
                visit_id,
                therapist_id,
                turn,
                day: call_day,
                ..
            } => {
                calls.insert(*visit_id, (*therapist_id, *turn, *call_day, true));
                serving.insert(*visit_id, *therapist_id);
                if today && *call_day == day {
                    let t = out.turns_by.entry(*therapist_id).or_default();
                    *t = t.saturating_add(*turn);
                }
            }
            Event::VisitStarted { visit_id, .. } => {
                if let Some(c) = calls.get_mut(visit_id) {
                    c.3 = false;
                }
            }
            Event::VisitStartUndone { visit_id } => {
                if let Some(c) = calls.get_mut(visit_id) {
                    c.3 = true;
                }
            }
            Event::VisitCallUndone { visit_id }
            | Event::VisitLeft { visit_id, .. }
            | Event::VisitVoided { visit_id, .. } => {
                if let Some((t, turn, call_day, true)) = calls.remove(visit_id) {
                    if today && call_day == day {
                        let x = out.turns_by.entry(t).or_default();
                        *x = x.saturating_sub(turn);
                    }
                }
                serving.remove(visit_id);
            }
            Event::VisitFinished { visit_id, .. } => {
                calls.remove(visit_id);
                if let (true, Some(t)) = (today, serving.get(visit_id)) {
                    *out.sessions_by.entry(*t).or_default() += 1;
                }
            }
            Event::VisitCheckedOut { visit_id, checkout } => {
                let shares: Vec<(Id, i64)> = checkout
                    .tips
                    .iter()
                    .map(|t| (t.therapist_id, t.amount_cents))
                    .collect();
                if today {
                    for p in &checkout.payments {
                        out.revenue.add(p.method, p.amount_cents);
                    }
                    out.revenue.add(Method::Cash, -checkout.change_cents);
                    out.services_cents += checkout.services_cents;
                    out.discounts_cents += checkout.discount_cents;
                    out.tips_cents += checkout.tip_cents;
                    for (t, a) in &shares {
                        *out.tips_by.entry(*t).or_default() += a;
                    }
                    for (s, p) in &lines[visit_id] {
                        let e = out.sold.entry(*s).or_default();
                        e.0 += 1;
                        e.1 += p;
                    }
                }
                tips_now.insert(*visit_id, shares);
            }
            Event::VisitRetipped { visit_id, tips, .. } => {
                let new: Vec<(Id, i64)> = tips
                    .iter()
                    .map(|t| (t.therapist_id, t.amount_cents))
                    .collect();
                if today {
                    for (t, a) in tips_now.get(visit_id).into_iter().flatten() {
                        *out.tips_by.entry(*t).or_default() -= a;
                    }
                    for (t, a) in &new {
                        *out.tips_by.entry(*t).or_default() += a;
                    }
                }
                tips_now.insert(*visit_id, new);
            }
            Event::VisitRefunded { refund, .. } if today => {
                out.refunds.add(refund.method, refund.amount_cents);
            }
            _ => {}
        }
    }
    out.tips_by.retain(|_, v| *v != 0);
    out.turns_by.retain(|_, v| *v != Turns::ZERO);
    out
}

/// Each drawer's expected amounts per method, summed from the log alone.
fn drawer_sums(log: &[EventRecord]) -> BTreeMap<Id, PerMethod> {
    let mut out: BTreeMap<Id, PerMethod> = BTreeMap::new();
    for r in log {
        match &r.event {
            Event::DrawerOpened { drawer } => {
                out.entry(drawer.id)
                    .or_default()
                    .add(Method::Cash, drawer.float_cents);
            }
            Event::VisitCheckedOut { checkout, .. } => {
                let d = out.entry(checkout.drawer_id).or_default();
                for p in &checkout.payments {
                    d.add(p.method, p.amount_cents);
                }
                d.add(Method::Cash, -checkout.change_cents);
            }
            Event::VisitRefunded { refund, .. } => {
                if let Some(id) = refund.drawer_id {
                    out.entry(id)
                        .or_default()
                        .add(refund.method, -refund.amount_cents);
                }
            }
            Event::DrawerMoved {
                drawer_id,
                movement,
            } => {
                out.entry(*drawer_id)
                    .or_default()
                    .add(Method::Cash, movement.kind.sign() * movement.amount_cents);
            }
            _ => {}
        }
    }
    out
}

fn check_books(f: &Floor, days: &Days, ctx: &str) {
    for (id, sums) in drawer_sums(&f.log) {
        let d = &f.state.drawers[&id];
        assert_eq!(d.expected(), sums, "{ctx}: drawer {id}");
        assert!(d.expected().cash >= 0, "{ctx}: drawer {id} below zero cash");
    }
    for v in f.state.visits.values() {
        for m in Method::ALL {
            assert!(v.refundable_in(m) >= 0);
        }
        assert!(
            v.refundable_cents() >= 0,
            "{ctx}: {} over-refunded",
            v.number
        );
    }
    for day in days.all() {
        let r = days.report(&f.log, day);
        let ctx = format!("{ctx}, day {day}");
        assert_eq!(
            r.therapists.iter().map(|t| t.tips_cents).sum::<i64>(),
            r.tips.cents,
            "{ctx}: per-therapist tips"
        );
        assert_eq!(
            r.services_sold.iter().map(|s| s.revenue_cents).sum::<i64>(),
            r.services_cents,
            "{ctx}: services sold vs services charged"
        );
        let ids: BTreeSet<Id> = r.therapists.iter().map(|t| t.therapist_id).collect();
        assert_eq!(ids.len(), r.therapists.len(), "{ctx}: a therapist twice");
        let mine = Recount {
            revenue: r.revenue_by_method,
            refunds: r.refunds_by_method,
            services_cents: r.services_cents,
            discounts_cents: r.discounts.cents,
            tips_cents: r.tips.cents,
            sold: r
                .services_sold
                .iter()
                .map(|s| (s.service_id, (s.count, s.revenue_cents)))
                .collect(),
            tips_by: r
                .therapists
                .iter()
                .filter(|t| t.tips_cents != 0)
                .map(|t| (t.therapist_id, t.tips_cents))
                .collect(),
            turns_by: r
                .therapists
                .iter()
                .filter(|t| t.turns != Turns::ZERO)
                .map(|t| (t.therapist_id, t.turns))
                .collect(),
            sessions_by: r
                .therapists
                .iter()
                .filter(|t| t.sessions != 0)
                .map(|t| (t.therapist_id, t.sessions))
                .collect(),
        };
        assert_eq!(
            mine,
            recount(&f.log, day, |ms| days.day_of(ms)),
            "{ctx}: report vs recount"
        );
    }
}

struct Day {
    f: Floor,
    days: Days,
    rng: SeededRng,
    cashier: Actor,
    accepted: BTreeMap<&'static str, usize>,
    n: u64,
}

impl Day {
    fn new(seed: u64) -> Day {
        let mut f = Floor::new();
        let cass = f.add_staff("Cass", Role::Cashier, &[]);
        for i in 0..4 {
            f.add_therapist(&format!("T{i}"), &[]);
        }
        for i in 0..3 {
            f.add_room(&format!("Room {i}"), 1);
        }
        for (i, (price, weight)) in [(0, 0.1), (4_999, 0.2), (10_000, 0.3), (12_345, 1.0)]
            .into_iter()
            .enumerate()
        {
            f.add_service_with(ServiceCreate {
                price_cents: price,
                turn_weight: weight,
                ..new_service(&format!("S{i}"), 30, 0)
            });
        }
        let cashier = staff_actor(cass, Role::Cashier);
        f.run(&cashier, cmd("drawer.open", json!({"float_cents": 10_000})));
        f.run(&ADMIN, cmd("drawer.open", json!({"float_cents": 5_000})));
        let days = Days::start(&f);
        Day {
            f,
            days,
            rng: SeededRng::new(seed),
            cashier,
            accepted: BTreeMap::new(),
            n: 0,
        }
    }

    fn visits(&self, state: VisitState) -> Vec<Id> {
        let s = &self.f.state;
        s.visits
            .values()
            .filter(|v| v.state == state)
            .map(|v| v.id)
            .collect()
    }
    fn therapists(&self, active: bool) -> Vec<Id> {
        let s = &self.f.state;
        s.staff
            .values()
            .filter(|t| t.role == Role::Therapist && t.active == active)
            .map(|t| t.id)
            .collect()
    }
    fn services(&self) -> Vec<Id> {
        let s = &self.f.state;
        s.services
            .values()
            .filter(|x| x.active)
            .map(|x| x.id)
            .collect()
    }

    fn checkout(&mut self, v: Id) -> (Actor, Command) {
        let services = self.f.state.visits.get(&v).map_or(0, |x| x.services_cents);
        let admin = self.rng.chance(25);
        let discount = match self.rng.below(6) {
            0 => services * self.rng.below(21) as i64 / 100,
            1 | 2 if admin => services,
            _ => 0,
        };
        let tip = if self.rng.chance(50) {
            self.rng.below(3_000) as i64
        } else {
            0
        };
        let total = services - discount + tip;
        let methods = ["cash", "card", "voucher", "other"];
        let m = methods[self.rng.below(4) as usize];
        let payments = if total == 0 {
            json!([])
        } else if self.rng.chance(30) && total > 1 {
            let first = 1 + self.rng.below(total as u64 - 1) as i64;
            json!([{"method": "cash", "amount_cents": first}, {"method": m, "amount_cents": total - first}])
        } else if m == "cash" && self.rng.chance(40) {
            json!([{"method": "cash", "amount_cents": total + self.rng.below(2_000) as i64}])
        } else {
            json!([{"method": m, "amount_cents": total}])
        };
        let mut args = json!({"visit_id": v, "request_id": format!("r{}", self.n), "payments": payments, "tip_cents": tip});
        if discount > 0 {
            args["discount"] = json!({"amount_cents": discount, "reason": "seeded"});
        }
        if tip > 0 && self.rng.chance(30) {
            let ts = self.therapists(true);
            if let Some(t) = self.rng.pick(&ts) {
                args["tip_split"] = json!([{"therapist_id": t, "amount_cents": tip}]);
            }
        }
        let actor = if admin { ADMIN } else { self.cashier.clone() };
        (actor, cmd("visit.checkout", args))
    }

    fn refund(&mut self, v: Id) -> Command {
        let Some(visit) = self.f.state.visits.get(&v).cloned() else {
            return cmd(
                "visit.refund",
                json!({"visit_id": v, "amount_cents": 1, "method": "card", "reason": "x"}),
            );
        };
        let methods: Vec<Method> = Method::ALL
            .into_iter()
            .filter(|m| visit.refundable_in(*m) > 0)
            .collect();
        let other = self.rng.chance(15);
        let method = if other {
            Method::ALL[self.rng.below(4) as usize]
        } else {
            self.rng.pick(&methods).unwrap_or(Method::Card)
        };
        let cap = if other {
            visit.refundable_cents()
        } else {
            visit.refundable_in(method)
        };
        let amount = 1 + self.rng.below(cap.max(1) as u64 + 50) as i64;
        let mut args = json!({"visit_id": v, "amount_cents": amount, "reason": "seeded"});
        if other || methods.len() > 1 || self.rng.chance(50) {
            args["method"] = json!(method.as_str());
        }
        if other {
            args["other_tender"] = json!(true);
        }
        cmd("visit.refund", args)
    }

    fn command(&mut self) -> (Actor, Command) {
        self.n += 1;
        let office = self.cashier.clone();
        let roll = self.rng.below(100);
        match roll {
            0..=14 => {
                let svcs = self.services();
                let k = 1 + self.rng.below(2);
                let ids: Vec<Id> = (0..k).filter_map(|_| self.rng.pick(&svcs)).collect();
                let mut create = self.f.new_visit(&format!("Guest {}", self.n), &ids);
                if self.rng.chance(10) {
                    create.requested_therapist_id = self.rng.pick(&self.therapists(true));
                }
                (office, Command::VisitCreate(create))
            }
            15..=29 => {
                let v = self.rng.pick(&self.visits(VisitState::Waiting));
                (office, call_with(v, None, None))
            }
            30..=39 => {
                let v = self.rng.pick(&self.visits(VisitState::Called)).unwrap_or(0);
                (
                    ADMIN,
                    if self.rng.chance(15) {
                        undo(v)
                    } else {
                        start(v)
                    },
                )
            }
            40..=49 => {
                let v = self
                    .rng
                    .pick(&self.visits(VisitState::InService))
                    .unwrap_or(0);
                (
                    ADMIN,
                    if self.rng.chance(5) {
                        undo(v)
                    } else {
                        finish(v)
                    },
                )
            }
            50..=64 => {
                let v = self
                    .rng
                    .pick(&self.visits(VisitState::AwaitingPayment))
                    .unwrap_or(0);
                self.checkout(v)
            }
            65..=71 => {
                let v = self.rng.pick(&self.visits(VisitState::Closed)).unwrap_or(0);
                (ADMIN, self.refund(v))
            }
            72..=77 => {
                let v = self.rng.pick(&self.visits(VisitState::Closed)).unwrap_or(0);
                let tip = self
                    .f
                    .state
                    .visits
                    .get(&v)
                    .and_then(|v| v.checkout.as_ref())
                    .map_or(0, |c| c.tip_cents);
                let mut ts = self.therapists(true);
                ts.extend(self.therapists(false));
                let a = self.rng.pick(&ts).unwrap_or(0);
                let b = self.rng.pick(&ts).unwrap_or(0);
                let x = self.rng.below(tip as u64 + 1) as i64;
                let split = if a == b {
                    json!([{"therapist_id": a, "amount_cents": tip}])
                } else {
                    json!([{"therapist_id": a, "amount_cents": x}, {"therapist_id": b, "amount_cents": tip - x}])
                };
                (
                    ADMIN,
                    cmd(
                        "visit.retip",
                        json!({"visit_id": v, "reason": "seeded", "tip_split": split}),
                    ),
                )
            }
            78..=80 => {
                let s = self.rng.pick(&self.services()).unwrap_or(0);
                let price = if self.rng.chance(20) {
                    0
                } else {
                    self.rng.below(20_000) as i64
                };
                (
                    ADMIN,
                    cmd(
                        "service.update",
                        json!({"service_id": s, "price_cents": price}),
                    ),
                )
            }
            81..=83 => {
                // Rename, or a role change, or off and back on the floor.
                let t = self.rng.pick(&self.therapists(true)).unwrap_or(0);
                let c = match self.rng.below(4) {
                    0 => cmd(
                        "staff.update",
                        json!({"staff_id": t, "name": format!("N{}", self.n)}),
                    ),
                    1 => clock_out(t),
                    2 => clock_in(t),
                    _ => cmd("staff.update", json!({"staff_id": t, "role": "cashier"})),
                };
                (ADMIN, c)
            }
            84 => {
                // A cashier who was a therapist becomes one again.
                let s = &self.f.state;
                let back: Vec<Id> = s
                    .staff
                    .values()
                    .filter(|x| {
                        x.role == Role::Cashier
                            && x.active
                            && x.id != self.cashier.staff_id().unwrap_or(0)
                    })
                    .map(|x| x.id)
                    .collect();
                let t = self.rng.pick(&back).unwrap_or(0);
                (
                    ADMIN,
                    cmd("staff.update", json!({"staff_id": t, "role": "therapist"})),
                )
            }
            85 => {
                let s = &self.f.state;
                let off: Vec<Id> = self
                    .therapists(true)
                    .into_iter()
                    .filter(|t| s.staff[t].presence == crate::domain::state::Presence::Off)
                    .collect();
                let t = self.rng.pick(&off).unwrap_or(0);
                (ADMIN, cmd("staff.deactivate", json!({"staff_id": t})))
            }
            86 => (
                ADMIN,
                staff_create(&format!("T{}", self.rng.below(4)), Role::Therapist, &[]),
            ),
            87..=88 => {
                let s = &self.f.state;
                let rooms: Vec<Id> = s.rooms.keys().copied().collect();
                if rooms.len() > 2 && self.rng.chance(50) {
                    let r = self.rng.pick(&rooms).unwrap_or(0);
                    (ADMIN, cmd("room.remove", json!({"room_id": r})))
                } else {
                    (ADMIN, room_create(&format!("Room {}", self.n), 1, None))
                }
            }
            89..=90 => {
                let v = self
                    .rng
                    .pick(&self.visits(VisitState::Waiting))
                    .unwrap_or(0);
                (office, leave(v, "seeded"))
            }
            91 => {
                let v = self
                    .rng
                    .pick(&self.visits(VisitState::AwaitingPayment))
                    .unwrap_or(0);
                (ADMIN, void(v, "seeded"))
            }
            92..=95 => {
                let kind =
                    ["pay_in", "pay_out", "tip_payout", "safe_drop"][self.rng.below(4) as usize];
                let amount = 1 + self.rng.below(4_000) as i64;
                (
                    office,
                    cmd(
                        "drawer.move",
                        json!({"kind": kind, "amount_cents": amount, "note": ""}),
                    ),
                )
            }
            _ => {
                let t = self.rng.pick(&self.therapists(true)).unwrap_or(0);
                (ADMIN, clock_in(t))
            }
        }
    }

    fn step(&mut self, i: usize) {
        let (actor, command) = self.command();
        let before = self.f.log.len();
        match self.f.try_run(&actor, &command) {
            Ok(_) => *self.accepted.entry(command.name()).or_default() += 1,
            Err(e) => {
                assert_eq!(self.f.log.len(), before, "a refusal changed nothing");
                assert_ne!(e.code, ErrorCode::Internal, "{e}");
            }
        }
        check_books(
            &self.f,
            &self.days,
            &format!("step {i} ({})", command.name()),
        );
    }
}

fn business_days(seed: u64, steps: usize) {
    let mut d = Day::new(seed);
    for i in 0..steps {
        d.f.advance_ms(d.rng.below(300_000) as i64);
        if i == steps / 3 || i == 2 * steps / 3 {
            let (days, f) = (&mut d.days, &mut d.f);
            days.next_day(f);
        }
        d.step(i);
    }
    for name in [
        "visit.checkout",
        "visit.refund",
        "visit.retip",
        "service.update",
        "staff.update",
        "room.remove",
        "staff.deactivate",
        "visit.undo",
    ] {
        assert!(
            d.accepted.get(name).copied().unwrap_or(0) > 0,
            "seed {seed}: no {name} accepted ({:?})",
            d.accepted
        );
    }
    // Some zero totals, some refunds in each tender, some retips that
    // crossed a midnight.
    let s = &d.f.state;
    let paid: Vec<_> = s
        .visits
        .values()
        .filter_map(|v| v.checkout.as_ref())
        .collect();
    assert!(
        paid.iter().any(|c| c.payments.is_empty()),
        "seed {seed}: no zero total"
    );
    let tenders: BTreeSet<Method> = s
        .visits
        .values()
        .flat_map(|v| v.refunds.iter().map(|r| r.method))
        .collect();
    assert!(
        tenders.len() >= 3,
        "seed {seed}: refunds only in {tenders:?}"
    );
    let reports: Vec<DayReport> = d
        .days
        .all()
        .into_iter()
        .map(|day| d.days.report(&d.f.log, day))
        .collect();
    assert!(
        reports
            .iter()
            .skip(1)
            .any(|r| !r.tip_corrections.is_empty()),
        "seed {seed}: no retip after the first midnight"
    );
    for r in &reports {
        check_csv_matches_json(r);
    }
}

#[test]
fn the_books_balance_through_random_business_days_seed_1() {
    business_days(1, 1_200);
}

#[test]
fn the_books_balance_through_random_business_days_seed_2() {
    business_days(0xB00C5, 1_200);
}

#[test]
fn the_books_balance_through_random_business_days_seed_3() {
    business_days(20261206, 1_200);
}
