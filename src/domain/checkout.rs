//! Checkout and the drawer: `visit.checkout` (split tender, tips, discount,
//! idempotent by `request_id`), the corrections that never edit the past
//! (`visit.refund`, `visit.retip`; `visit.void` is in visits.rs), and the
//! cash drawer (`drawer.open`, `drawer.move`, `drawer.close` → Z report).

use super::command::{
    DrawerClose, DrawerMoveArg, DrawerOpen, TipShareArg, VisitCheckout, VisitRefund, VisitRetip,
};
use super::decide::{reason_text, visit_ref, Decided, Reply};
use super::event::Event;
use super::money::{
    checked_sum, split_proportionally, Checkout, Drawer, DrawerMove, Method, PerMethod, Refund,
    TipShare, ZReport,
};
use super::state::{State, VisitState};
use super::{conflict, forbidden, invalid, Actor, DomainError, Id, Now, Role, Rules};

use super::money::bill::amount;

fn owner(actor: &Actor) -> Option<Id> {
    actor.staff_id()
}

/// The acting cashier's open drawer (an admin may name any open drawer).
pub(crate) fn open_drawer<'a>(
    state: &'a State,
    actor: &Actor,
    named: Option<Id>,
) -> Result<&'a Drawer, DomainError> {
    match named {
        Some(id) => {
            let d = state
                .drawers
                .get(&id)
                .ok_or_else(|| super::not_found(format!("there is no drawer {id}")))?;
            if d.owner != owner(actor) && actor.role() != Some(Role::Admin) {
                return Err(forbidden("this is another cashier's drawer"));
            }
            if !d.is_open() {
                return Err(conflict(format!("drawer {id} is closed")));
            }
            Ok(d)
        }
        None => state
            .drawers
            .values()
            .find(|d| d.is_open() && d.owner == owner(actor))
            .ok_or_else(|| conflict("your drawer is not open: open it first (drawer.open)")),
    }
}

fn tip_split(
    state: &State,
    field: &str,
    split: &[TipShareArg],
    tip_cents: i64,
) -> Result<Vec<TipShare>, DomainError> {
    let mut shares: Vec<TipShare> = Vec::with_capacity(split.len());
    for s in split {
        let t = state
            .staff
            .get(&s.therapist_id)
            .filter(|t| t.role == Role::Therapist)
            .ok_or_else(|| invalid(format!("`{field}`: {} is not a therapist", s.therapist_id)))?;
        amount(field, s.amount_cents, true)?;
        if shares.iter().any(|x| x.therapist_id == t.id) {
            return Err(invalid(format!("`{field}` names {} twice", t.name)));
        }
        shares.push(TipShare {
            therapist_id: t.id,
            amount_cents: s.amount_cents,
        });
    }
    let sum = checked_sum(field, shares.iter().map(|s| s.amount_cents))?;
    if sum != tip_cents {
        return Err(invalid(format!(
            "`{field}` adds up to {sum} cents but the tip is {tip_cents} cents"
        )));
    }
    Ok(shares)
}

pub fn checkout(
    state: &State,
    actor: &Actor,
    a: &VisitCheckout,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let v = visit_ref(state, a.visit_id)?;
    let request_id = a.request_id.trim();
    if request_id.is_empty() || request_id.len() > 64 {
        return Err(invalid(
            "`request_id` must be 1 to 64 characters, new for each checkout",
        ));
    }
    if let Some(done) = &v.checkout {
        // A double tap or a retry after a lost ack: the first answer again,
        // with the codes of the cards it sold for the one who sold them.
        if done.request_id == request_id {
            let codes = state
                .till
                .receipt_of_visit
                .get(&v.id)
                .and_then(|r| state.till.receipts.get(r))
                .map(|sale| super::money::sale::codes_again(state, actor, sale, rules))
                .unwrap_or_default();
            return Ok(Decided {
                events: Vec::new(),
                reply: Reply::VisitPaid {
                    visit_id: v.id,
                    retried: true,
                    codes,
                },
            });
        }
        return Err(conflict(format!("{} is already paid", v.number)));
    }
    if v.state != VisitState::AwaitingPayment {
        return Err(conflict(format!(
            "{} is {}; only a finished visit awaiting payment can be checked out",
            v.number,
            v.state.as_str().replace('_', " ")
        )));
    }
    let drawer = open_drawer(state, actor, None)?;

    let services = v.services_cents;
    let receipt_id = state.counters.next_id.max(1);
    let b = super::money::bill::bill(
        state,
        actor,
        &super::money::bill::BillArgs {
            services: super::money::bill::service_lines(state, &v.service_ids, services),
            items: &a.items,
            giftcards: &a.giftcards,
            discount: a.discount.as_ref(),
            tip_cents: a.tip_cents,
            payments: &a.payments,
        },
        now,
        rules,
        receipt_id + 1,
    )?;
    let tip_cents = a.tip_cents;
    let discount_cents = b.discount_cents;
    let discount_reason = b.receipt.discount_reason.clone();
    let payments = b.receipt.payments.clone();
    let change_cents = b.receipt.change_cents;

    let tips = match &a.tip_split {
        Some(split) => tip_split(state, "tip_split", split, tip_cents)?,
        None => {
            let weights: Vec<(Id, i64)> = v
                .therapist
                .map(|t| (t, services.max(1)))
                .into_iter()
                .collect();
            if weights.is_empty() && tip_cents > 0 {
                return Err(invalid(
                    "`tip_split` is required: the visit has no therapist",
                ));
            }
            split_proportionally(tip_cents, &weights)?
        }
    };

    let codes = b.codes;
    let mut receipt = b.receipt;
    receipt.id = receipt_id;
    receipt.number = state.till.counter.last + 1;
    receipt.visit_id = Some(v.id);
    receipt.drawer_id = Some(drawer.id);
    Ok(Decided {
        // The receipt first: the checkout is the batch's last event, so its
        // seq is the batch's (a retried request answers with it).
        events: vec![
            Event::Sold {
                receipt,
                issued: b.issued,
            },
            Event::VisitCheckedOut {
                visit_id: v.id,
                checkout: Checkout {
                    request_id: request_id.to_string(),
                    seq: 0,
                    at: now.ms,
                    drawer_id: drawer.id,
                    cashier: owner(actor),
                    services_cents: services,
                    discount_cents,
                    discount_reason,
                    tip_cents,
                    tips,
                    payments,
                    change_cents,
                },
            },
        ],
        reply: Reply::VisitPaid {
            visit_id: v.id,
            retried: false,
            codes,
        },
    })
}

pub fn refund(
    state: &State,
    actor: &Actor,
    a: &VisitRefund,
    now: Now,
) -> Result<Decided, DomainError> {
    let Some(visit_id) = a.visit_id else {
        return Err(invalid("`visit_id` is required"));
    };
    if a.sale_id.is_some() {
        return Err(invalid("`sale_id` is for sale.refund"));
    }
    let v = visit_ref(state, visit_id)?;
    let reason = reason_text(&a.reason)?;
    if v.state != VisitState::Closed || v.checkout.is_none() {
        return Err(conflict(format!(
            "{} is not paid: a refund follows a payment (void an unpaid visit instead)",
            v.number
        )));
    }
    if let Some(sale) = state
        .till
        .receipt_of_visit
        .get(&v.id)
        .and_then(|r| state.till.receipts.get(r))
    {
        return super::money::sale::refund_receipt(state, actor, sale, a, now);
    }
    // Paid before receipts existed (#17): by amount only, as it always was.
    super::money::sale::correction_allowed(state, actor, a.approved_by, "refund")?;
    let Some(cents) = a.amount_cents.filter(|_| a.lines.is_none() && !a.full) else {
        return Err(super::money::sale::no_receipt(&v.number));
    };
    let cents = amount("amount_cents", cents, false)?;
    let left = v.refundable_cents();
    if cents > left {
        return Err(invalid(format!(
            "`amount_cents` {cents} is more than what is left to refund ({left} cents)"
        )));
    }
    // A refund goes back in the tender it was paid with, unless the admin
    // says otherwise (`other_tender`).
    let method = match a.method {
        Some(m) => m,
        None => {
            let paid_in: Vec<Method> = Method::ALL
                .into_iter()
                .filter(|m| v.refundable_in(*m) > 0)
                .collect();
            match paid_in.as_slice() {
                [one] => *one,
                _ => {
                    return Err(invalid(format!(
                        "`method` is required: {} was paid in {}",
                        v.number,
                        paid_in
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )))
                }
            }
        }
    };
    let left_in = v.refundable_in(method);
    if cents > left_in && !a.other_tender {
        return Err(conflict(format!(
            "{} has {left_in} cents paid by {} left to refund; a refund goes back in the tender it was paid with (an admin may say `other_tender: true`)",
            v.number,
            method.as_str()
        )));
    }
    // Cash leaves the refunding admin's own open drawer, and never more than
    // it holds; other tenders never touch a drawer's count.
    let drawer_id = if method == Method::Cash {
        let d = open_drawer(state, actor, None)
            .map_err(|_| conflict("a cash refund needs your open drawer (drawer.open)"))?;
        let holds = d.expected().cash;
        if cents > holds {
            return Err(conflict(format!(
                "your drawer should hold {holds} cents in cash; {cents} cents cannot come out"
            )));
        }
        Some(d.id)
    } else {
        None
    };
    Ok(Decided {
        events: vec![Event::VisitRefunded {
            visit_id: v.id,
            refund: Refund {
                at: now.ms,
                amount_cents: cents,
                method,
                reason,
                drawer_id,
                by: owner(actor),
            },
        }],
        reply: Reply::Checkout(v.id),
    })
}

pub fn retip(state: &State, actor: &Actor, a: &VisitRetip) -> Result<Decided, DomainError> {
    let v = visit_ref(state, a.visit_id)?;
    let reason = reason_text(&a.reason)?;
    let approved =
        super::money::sale::correction_allowed(state, actor, a.approved_by, "tip re-split")?;
    let Some(c) = &v.checkout else {
        return Err(conflict(format!(
            "{} is not paid: there is no tip to split",
            v.number
        )));
    };
    let tips = tip_split(state, "tip_split", &a.tip_split, c.tip_cents)?;
    let mut events = vec![Event::VisitRetipped {
        visit_id: v.id,
        tips,
        reason,
    }];
    events.extend(approved.map(|admin_id| Event::CorrectionApproved {
        admin_id,
        action: "visit.retip".into(),
        visit_id: v.id,
    }));
    Ok(Decided {
        events,
        reply: Reply::Checkout(v.id),
    })
}

pub fn drawer_open(
    state: &State,
    actor: &Actor,
    a: &DrawerOpen,
    now: Now,
) -> Result<Decided, DomainError> {
    let float_cents = amount("float_cents", a.float_cents, true)?;
    if state
        .drawers
        .values()
        .any(|d| d.is_open() && d.owner == owner(actor))
    {
        return Err(conflict("your drawer is already open: close it first"));
    }
    let id = state.counters.next_id.max(1);
    Ok(Decided {
        events: vec![Event::DrawerOpened {
            drawer: Drawer {
                id,
                owner: owner(actor),
                opened_at: now.ms,
                float_cents,
                moves: Vec::new(),
                taken: PerMethod::default(),
                change_cents: 0,
                refunded: PerMethod::default(),
                closed_at: None,
                z_report: None,
                forced: false,
            },
        }],
        reply: Reply::Drawer(id),
    })
}

pub fn drawer_move(
    state: &State,
    actor: &Actor,
    a: &DrawerMoveArg,
    now: Now,
) -> Result<Decided, DomainError> {
    let d = open_drawer(state, actor, a.drawer_id)?;
    let cents = amount("amount_cents", a.amount_cents, false)?;
    let note = a.note.trim();
    if note.chars().count() > 200 || note.chars().any(char::is_control) {
        return Err(invalid("`note` must be at most 200 characters"));
    }
    if a.kind.sign() < 0 && cents > d.expected().cash {
        return Err(conflict(format!(
            "the drawer should hold {} cents in cash; {} cents cannot come out",
            d.expected().cash,
            cents
        )));
    }
    Ok(Decided {
        events: vec![Event::DrawerMoved {
            drawer_id: d.id,
            movement: DrawerMove {
                at: now.ms,
                kind: a.kind,
                amount_cents: cents,
                note: note.to_string(),
            },
        }],
        reply: Reply::Drawer(d.id),
    })
}

pub fn drawer_close(state: &State, actor: &Actor, a: &DrawerClose) -> Result<Decided, DomainError> {
    let d = open_drawer(state, actor, a.drawer_id)?;
    for m in Method::ALL {
        amount(&format!("counted.{}", m.as_str()), a.counted.get(m), true)?;
    }
    let waiting: Vec<&str> = state
        .visits
        .values()
        .filter(|v| v.state == VisitState::AwaitingPayment)
        .map(|v| v.number.as_str())
        .collect();
    if !waiting.is_empty() {
        if !a.force {
            return Err(conflict(format!(
                "{} await payment ({}); check them out first, or an admin may force the close",
                waiting.len(),
                waiting.join(", ")
            )));
        }
        if actor.role() != Some(Role::Admin) {
            return Err(forbidden(
                "only an admin may force a drawer closed while visits await payment",
            ));
        }
    }
    let expected = d.expected();
    let variance = a.counted.minus(&expected);
    Ok(Decided {
        events: vec![Event::DrawerClosed {
            drawer_id: d.id,
            z_report: ZReport {
                expected,
                counted: a.counted,
                variance,
            },
            forced: !waiting.is_empty(),
        }],
        reply: Reply::Drawer(d.id),
    })
}
