//! `sale.checkout` (products and gift cards without a visit, idempotent by
//! `request_id`), `giftcard.issue` (a sale of one gift card), refunds of
//! any receipt (`sale.refund`, and `visit.refund` for a visit with a
//! receipt), and who may correct: an admin, or a cashier with an admin's
//! PIN entered at the counter.

use serde_json::json;

use super::bill::{self, BillArgs};
use super::receipt::Receipt;
use crate::domain::command::{GiftcardArg, GiftcardIssue, RefundArgs, SaleCheckout};
use crate::domain::decide::{Decided, Reply};
use crate::domain::event::Event;
use crate::domain::money::Refund;
use crate::domain::state::State;
use crate::domain::{
    conflict, forbidden, invalid, not_found, Actor, DomainError, Id, Now, Role, Rules,
};

/// A correction (void, refund, re-split) by `actor`: an admin may; a
/// cashier only with an admin's approval (the shell checked the PIN and
/// named the admin in `approved_by`). Returns the approving admin.
pub fn correction_allowed(
    state: &State,
    actor: &Actor,
    approved_by: Option<Id>,
    what: &str,
) -> Result<Option<Id>, DomainError> {
    match actor.role() {
        Some(Role::Admin) => Ok(approved_by),
        Some(Role::Cashier) => {
            let Some(id) = approved_by else {
                return Err(forbidden(format!(
                    "a {what} needs an admin: ask one to enter their PIN at the counter (`approval`)"
                )));
            };
            match state.staff.get(&id) {
                Some(s) if s.active && s.role == Role::Admin => Ok(Some(id)),
                _ => Err(forbidden(format!("staff {id} is not an active admin"))),
            }
        }
        _ => Err(forbidden(format!("a {what} needs an admin"))),
    }
}

fn request_id(value: &str) -> Result<String, DomainError> {
    let r = value.trim();
    if r.is_empty() || r.len() > 64 {
        return Err(invalid(
            "`request_id` must be 1 to 64 characters, new for each checkout",
        ));
    }
    Ok(r.to_string())
}

/// The receipt a retried `request_id` already made, if any.
fn retried(state: &State, request_id: &str) -> Option<Id> {
    state.till.receipt_by_request(request_id)
}

pub fn sale_checkout(
    state: &State,
    actor: &Actor,
    a: &SaleCheckout,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let request_id = request_id(&a.request_id)?;
    if let Some(id) = retried(state, &request_id) {
        let codes = state
            .till
            .receipts
            .get(&id)
            .map(|r| codes_again(state, actor, r, rules))
            .unwrap_or_default();
        return Ok(Decided {
            events: Vec::new(),
            reply: Reply::Receipt {
                id,
                retried: true,
                codes,
            },
        });
    }
    if a.items.is_empty() && a.giftcards.is_empty() {
        return Err(invalid("a sale needs `items` or `giftcards`"));
    }
    let drawer = crate::domain::checkout::open_drawer(state, actor, None)?;
    let first_id = state.counters.next_id.max(1);
    let b = bill::bill(
        state,
        actor,
        &BillArgs {
            services: Vec::new(),
            items: &a.items,
            giftcards: &a.giftcards,
            discount: a.discount.as_ref(),
            tip_cents: 0,
            payments: &a.payments,
        },
        now,
        rules,
        first_id + 1,
    )?;
    let mut receipt = b.receipt;
    receipt.id = first_id;
    receipt.number = state.till.counter.last + 1;
    receipt.drawer_id = Some(drawer.id);
    receipt.request_id = Some(request_id);
    Ok(Decided {
        events: vec![Event::Sold {
            receipt,
            issued: b.issued,
        }],
        reply: Reply::Receipt {
            id: first_id,
            retried: false,
            codes: b.codes,
        },
    })
}

pub fn giftcard_issue(
    state: &State,
    actor: &Actor,
    a: &GiftcardIssue,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    sale_checkout(
        state,
        actor,
        &SaleCheckout {
            request_id: a.request_id.clone(),
            items: Vec::new(),
            giftcards: vec![GiftcardArg {
                amount_cents: a.amount_cents,
            }],
            payments: a.payments.clone(),
            discount: None,
        },
        now,
        rules,
    )
}

/// A refund of `sale` (a sale's or a visit's receipt). For a visit, the
/// floor's own `VisitRefunded` goes first, so the visit's refunds and the
/// drawer count stay where they always were.
pub fn refund_receipt(
    state: &State,
    actor: &Actor,
    sale: &Receipt,
    a: &RefundArgs,
    now: Now,
) -> Result<Decided, DomainError> {
    let approved_by = correction_allowed(state, actor, a.approved_by, "refund")?;
    let plan = bill::plan_refund(
        state,
        actor,
        sale,
        &RefundArgs {
            approved_by,
            ..a.clone()
        },
        now,
    )?;
    let id = state.counters.next_id.max(1);
    let mut receipt = plan.receipt;
    receipt.id = id;
    receipt.number = state.till.counter.last + 1;
    let (reason, drawer_id) = (
        receipt.reason.clone().unwrap_or_default(),
        receipt.drawer_id,
    );
    // The receipt first: a visit's refund stays the batch's last event, so
    // its ack names the `VisitRefunded` seq as it always did.
    let visit_id = sale.visit_id;
    let mut events = vec![Event::Refunded { receipt }];
    if let Some(visit_id) = visit_id {
        events.push(Event::VisitRefunded {
            visit_id,
            refund: Refund {
                at: now.ms,
                amount_cents: plan.total_cents,
                method: plan.method,
                reason: reason.clone(),
                drawer_id,
                by: actor.staff_id(),
            },
        });
    }
    Ok(Decided {
        events,
        reply: Reply::Receipt {
            id,
            retried: false,
            codes: Vec::new(),
        },
    })
}

pub fn sale_refund(
    state: &State,
    actor: &Actor,
    a: &RefundArgs,
    now: Now,
) -> Result<Decided, DomainError> {
    let Some(sale_id) = a.sale_id else {
        return Err(invalid("`sale_id` is required"));
    };
    if a.visit_id.is_some() {
        return Err(invalid("`visit_id` is for visit.refund"));
    }
    let sale = state
        .till
        .receipts
        .get(&sale_id)
        .filter(|r| r.kind == super::receipt::ReceiptKind::Sale && r.visit_id.is_none())
        .ok_or_else(|| not_found(format!("there is no sale {sale_id}")))?;
    refund_receipt(state, actor, sale, a, now)
}

/// The codes of the gift cards `sale` sold, to show again on a retried
/// checkout — to whoever made the sale (the same staff member, or the admin
/// token again), never to another cashier who learnt its `request_id`; and
/// only codes the box's key made (a card from before derived codes, or
/// from before a restore onto a box with another secret, has none).
pub fn codes_again(
    state: &State,
    actor: &Actor,
    sale: &Receipt,
    rules: &Rules,
) -> Vec<(Id, String)> {
    if sale.cashier != actor.staff_id() {
        return Vec::new();
    }
    sold_cards(state, sale)
        .filter_map(|c| {
            super::giftcode::shown(rules.giftcard_key.as_ref(), c).map(|code| (c.id, code))
        })
        .collect()
}

/// The gift cards a sale's lines sold, in line order.
fn sold_cards<'a>(
    state: &'a State,
    sale: &'a Receipt,
) -> impl Iterator<Item = &'a super::retail::GiftCard> + 'a {
    sale.lines.iter().filter_map(|l| match l.item {
        super::receipt::Item::Giftcard { giftcard_id } => state.till.giftcards.get(&giftcard_id),
        _ => None,
    })
}

/// The cards a checkout sold, for its ack: each card (`id`, `hint`,
/// `amount_cents`, `balance_cents`) with its `code` when `codes` has it;
/// with one card also `giftcard` (the card) and `code` at the top, as
/// `giftcard.issue` answers.
pub fn sold_reply(
    state: &State,
    sale: &Receipt,
    codes: &[(Id, String)],
    map: &mut serde_json::Map<String, serde_json::Value>,
) {
    let code_of = |id: Id| codes.iter().find(|(c, _)| *c == id).map(|(_, code)| code);
    let cards: Vec<&super::retail::GiftCard> = sold_cards(state, sale).collect();
    let list: Vec<serde_json::Value> = cards
        .iter()
        .map(|c| {
            let mut card = json!({
                "id": c.id, "hint": c.hint, "amount_cents": c.issued_cents, "balance_cents": c.balance_cents,
            });
            if let (Some(code), serde_json::Value::Object(m)) = (code_of(c.id), &mut card) {
                m.insert("code".into(), json!(code));
            }
            card
        })
        .collect();
    if let (super::receipt::ReceiptKind::Sale, [one]) = (sale.kind, cards.as_slice()) {
        map.insert("giftcard".into(), super::retail::card_view(one));
        if let Some(code) = code_of(one.id) {
            map.insert("code".into(), json!(code));
        }
    }
    map.insert("giftcards".into(), serde_json::Value::Array(list));
}

/// The ack of a receipt: the receipt as the office sees it, the cards it
/// sold (with the codes to show), and whether this answers a retry.
pub fn receipt_reply(
    state: &State,
    id: Id,
    retried: bool,
    codes: &[(Id, String)],
) -> serde_json::Value {
    match state.till.receipts.get(&id) {
        Some(r) => {
            let mut map = serde_json::Map::new();
            map.insert(
                "sale_id".into(),
                json!(if r.visit_id.is_none() && r.refund_of.is_none() {
                    Some(r.id)
                } else {
                    None
                }),
            );
            map.insert("receipt".into(), crate::domain::views::receipt_of(state, r));
            sold_reply(state, r, codes, &mut map);
            map.insert("retried".into(), json!(retried));
            serde_json::Value::Object(map)
        }
        None => serde_json::Value::Null,
    }
}

/// A sale of nothing but a conflict: kept for the message's wording.
pub fn no_receipt(number: &str) -> DomainError {
    conflict(format!(
        "{number} was paid before receipts existed: refund it by amount (its receipt has no lines)"
    ))
}
