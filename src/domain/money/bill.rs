//! The bill: from a checkout's services, products, gift cards sold,
//! discount, tip and payments to a [`Receipt`] whose lines carry net, tax
//! and gross each, and whose payments cover its total exactly (cash may be
//! over-tendered). Also the other way: a refund (full, by amount or per
//! line) as a refund receipt that gives back exactly what is left of each
//! line, never more.
//!
//! Rules the issue left open, chosen here:
//! - a discount applies to the goods (services and products), never to gift
//!   cards or the tip, and is spread over the goods lines in proportion to
//!   their amounts (largest remainder), so each line's tax is on what was
//!   really charged; the admin threshold is a percentage of the goods;
//! - gift cards sold and the tip are outside tax (rate 0, not in the rows
//!   per rate): a gift card's value is taxed when it pays for goods;
//! - a refund by amount is spread over what is left of the taxable lines and
//!   the tip in proportion (gift cards sold are refunded only by line); the
//!   tax given back is the line's tax in the same proportion, and the last
//!   refund of a line gives back exactly what is left, so sales minus
//!   refunds per rate stay exact.

use super::super::command::{
    DiscountArg, GiftcardArg, ItemArg, LineRefundArg, PaymentArg, RefundArgs,
};
use super::super::decide::reason_text;
use super::super::state::State;
use super::super::{conflict, invalid, Actor, DomainError, ErrorCode, Id, Now, Role, Rules};
use super::giftcode;
use super::receipt::{CardUse, Item, Line, Receipt, ReceiptKind, Refunded};
use super::retail::GiftCard;
use super::tax::{self, div_round, Taxed};
use super::{checked_sum, split_proportionally, Method, Payment};

const MAX_PAYMENTS: usize = 8;
const MAX_ITEMS: usize = 50;
const MAX_CARDS: usize = 10;
const MAX_QTY: u32 = 1_000;
/// No single amount above 10^9 minor units: a typo guard far above any spa
/// bill, and far below any overflow.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

pub fn amount(field: &str, cents: i64, allow_zero: bool) -> Result<i64, DomainError> {
    if cents < 0 || (!allow_zero && cents == 0) {
        return Err(invalid(format!(
            "`{field}` must be {} (in minor units)",
            if allow_zero {
                "0 or more"
            } else {
                "more than 0"
            }
        )));
    }
    if cents > MAX_AMOUNT_CENTS {
        return Err(invalid(format!(
            "`{field}` is larger than {MAX_AMOUNT_CENTS} minor units"
        )));
    }
    Ok(cents)
}

/// A service line of a visit, priced as the visit captured it.
pub struct ServiceLine {
    pub service_id: Id,
    pub name: String,
    pub cents: i64,
}

/// What a checkout asks for, visit or not.
pub struct BillArgs<'a> {
    pub services: Vec<ServiceLine>,
    pub items: &'a [ItemArg],
    pub giftcards: &'a [GiftcardArg],
    pub discount: Option<&'a DiscountArg>,
    pub tip_cents: i64,
    pub payments: &'a [PaymentArg],
}

/// A decided bill: the receipt (without its id, number and time) and the
/// gift cards it issues.
pub struct Bill {
    pub receipt: Receipt,
    pub issued: Vec<GiftCard>,
    /// The codes of the cards sold (for the seller's ack only: the cards
    /// keep their hash).
    pub codes: Vec<(Id, String)>,
    pub goods_cents: i64,
    pub discount_cents: i64,
}

/// The visit's services as lines: `services_cents` (captured when the
/// visit was made) spread over its services by their current prices.
pub fn service_lines(state: &State, service_ids: &[Id], services_cents: i64) -> Vec<ServiceLine> {
    let weights: Vec<(Id, i64)> = service_ids
        .iter()
        .map(|id| (*id, state.services.get(id).map_or(0, |s| s.price_cents)))
        .collect();
    let parts = split_proportionally(services_cents, &weights).unwrap_or_default();
    parts
        .into_iter()
        .map(|p| ServiceLine {
            service_id: p.therapist_id,
            name: state
                .services
                .get(&p.therapist_id)
                .map_or_else(|| format!("service {}", p.therapist_id), |s| s.name.clone()),
            cents: p.amount_cents,
        })
        .collect()
}

fn untaxed(cents: i64) -> Taxed {
    Taxed {
        net_cents: cents,
        tax_cents: 0,
        gross_cents: cents,
    }
}

/// The discount asked for, in minor units of `goods`.
fn discount_of(
    d: &DiscountArg,
    goods: i64,
    actor: &Actor,
    rules: &Rules,
) -> Result<(i64, String), DomainError> {
    let reason = reason_text(&d.reason).map_err(|_| invalid("`discount.reason` is required"))?;
    let cents = match (d.amount_cents, d.percent) {
        (Some(c), None) => amount("discount.amount_cents", c, true)?,
        (None, Some(p)) if p <= 100 => {
            // Rounded half up (15% of 9.99 is 1.50), as tax is: half away
            // from zero on amounts that are ≥ 0.
            let exact = (i128::from(goods) * i128::from(p) + 50) / 100;
            i64::try_from(exact)
                .map_err(|_| invalid("`discount.percent` gives too large an amount"))?
        }
        (None, Some(_)) => return Err(invalid("`discount.percent` must be 0 to 100")),
        _ => {
            return Err(invalid(
                "`discount` needs either `amount_cents` or `percent`",
            ))
        }
    };
    if cents > goods {
        return Err(invalid(format!(
            "`discount.amount_cents` {cents} is more than the services and products ({goods})"
        )));
    }
    let over =
        i128::from(cents) * 100 > i128::from(goods) * i128::from(rules.discount_approval_percent);
    if over && actor.role() != Some(Role::Admin) {
        return Err(super::super::forbidden(format!(
            "a discount above {}% needs an admin",
            rules.discount_approval_percent
        )));
    }
    Ok((cents, reason))
}

/// Decides a bill. `first_id` is the first free entity id (gift cards sold
/// take the ids after it, in order).
pub fn bill(
    state: &State,
    actor: &Actor,
    a: &BillArgs<'_>,
    now: Now,
    rules: &Rules,
    first_id: Id,
) -> Result<Bill, DomainError> {
    if a.items.len() > MAX_ITEMS {
        return Err(invalid(format!(
            "`items` lists more than {MAX_ITEMS} products"
        )));
    }
    if a.giftcards.len() > MAX_CARDS {
        return Err(invalid(format!(
            "`giftcards` lists more than {MAX_CARDS} cards"
        )));
    }
    // Goods before the discount: (item, name, qty, unit, rate, amount).
    let mut goods: Vec<(Item, String, u32, i64, u32, i64)> = Vec::new();
    for s in &a.services {
        goods.push((
            Item::Service {
                service_id: s.service_id,
            },
            s.name.clone(),
            1,
            s.cents,
            state.till.service_rate(s.service_id),
            s.cents,
        ));
    }
    for (i, it) in a.items.iter().enumerate() {
        if it.qty == 0 || it.qty > MAX_QTY {
            return Err(invalid(format!("`items.{i}.qty` must be 1 to {MAX_QTY}")));
        }
        let p = state.till.products.get(&it.product_id).ok_or_else(|| {
            invalid(format!(
                "`items.{i}.product_id`: there is no product {}",
                it.product_id
            ))
        })?;
        if !p.active {
            return Err(conflict(format!("{} is no longer sold", p.name)));
        }
        if a.items[..i].iter().any(|o| o.product_id == it.product_id) {
            return Err(invalid(format!(
                "`items.{i}`: {} is listed twice; give one line with the whole quantity",
                p.name
            )));
        }
        if i64::from(it.qty) > p.stock {
            return Err(conflict(format!(
                "{} has {} in stock; {} cannot be sold",
                p.name, p.stock, it.qty
            )));
        }
        let line_cents = p.price_cents.saturating_mul(i64::from(it.qty));
        amount(&format!("items.{i}"), line_cents, true)?;
        goods.push((
            Item::Product { product_id: p.id },
            p.name.clone(),
            it.qty,
            p.price_cents,
            p.tax_rate_bp,
            line_cents,
        ));
    }
    let goods_cents = checked_sum("items", goods.iter().map(|g| g.5))?;
    let (discount_cents, discount_reason) = match a.discount {
        None => (0, None),
        Some(d) => {
            let (c, r) = discount_of(d, goods_cents, actor, rules)?;
            (c, Some(r))
        }
    };
    let shares = split_proportionally(
        discount_cents,
        &goods
            .iter()
            .enumerate()
            .map(|(i, g)| (i as Id, g.5))
            .collect::<Vec<_>>(),
    )?;
    let mut lines: Vec<Line> = Vec::with_capacity(goods.len() + a.giftcards.len() + 1);
    for ((item, name, qty, unit, rate, cents), share) in goods.into_iter().zip(&shares) {
        let charged = cents - share.amount_cents;
        lines.push(Line {
            item,
            name,
            qty,
            unit_cents: unit,
            discount_cents: share.amount_cents,
            rate_bp: rate,
            taxed: tax::line(charged, rate, rules.prices_include_tax),
        });
    }
    let mut issued = Vec::with_capacity(a.giftcards.len());
    let mut codes = Vec::with_capacity(a.giftcards.len());
    for (i, g) in a.giftcards.iter().enumerate() {
        let cents = amount(
            &format!("giftcards.{i}.amount_cents"),
            g.amount_cents,
            false,
        )?;
        let Some(key) = &rules.giftcard_key else {
            return Err(DomainError::new(
                ErrorCode::Internal,
                "this hub has no gift card secret: it cannot sell gift cards",
            ));
        };
        let id = first_id + i as Id;
        // Derived, not random: a retried checkout shows the same code again.
        let code = giftcode::derive(key, id, now.ms);
        let hint = giftcode::hint(&code);
        issued.push(GiftCard {
            id,
            code_hash: giftcode::hash(&code),
            hint: hint.clone(),
            issued_cents: cents,
            balance_cents: cents,
            issued_at: now.ms,
            expires: None,
            receipt_id: 0,
        });
        lines.push(Line {
            item: Item::Giftcard { giftcard_id: id },
            name: format!("Gift card …{hint}"),
            qty: 1,
            unit_cents: cents,
            discount_cents: 0,
            rate_bp: 0,
            taxed: untaxed(cents),
        });
        codes.push((id, code));
    }
    let tip_cents = amount("tip_cents", a.tip_cents, true)?;
    if tip_cents > 0 {
        lines.push(Line {
            item: Item::Tip,
            name: "Tip".into(),
            qty: 1,
            unit_cents: tip_cents,
            discount_cents: 0,
            rate_bp: 0,
            taxed: untaxed(tip_cents),
        });
    }
    let total = checked_sum("payments", lines.iter().map(|l| l.taxed.gross_cents))?;
    if total > MAX_AMOUNT_CENTS {
        return Err(invalid("the bill's total is larger than the hub accepts"));
    }

    // Payments: any tender, a gift card up to its balance.
    if (total > 0 && a.payments.is_empty()) || a.payments.len() > MAX_PAYMENTS {
        return Err(invalid(format!(
            "`payments` must list 1 to {MAX_PAYMENTS} payments (none only when the total is 0)"
        )));
    }
    let mut payments = Vec::with_capacity(a.payments.len());
    let mut cards: Vec<CardUse> = Vec::new();
    for (i, p) in a.payments.iter().enumerate() {
        let reference = match p.reference.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r) if r.chars().count() <= 64 && !r.chars().any(char::is_control) => {
                Some(r.to_string())
            }
            Some(_) => {
                return Err(invalid(
                    "`payments.reference` must be at most 64 characters",
                ))
            }
        };
        let cents = amount("payments.amount_cents", p.amount_cents, false)?;
        if p.method == Method::Giftcard {
            let hash = p.code_hash.as_deref().unwrap_or("");
            if hash.is_empty() {
                return Err(invalid(format!(
                    "`payments.{i}.code`: a gift card payment needs the card's code"
                )));
            }
            let card = super::retail::card_by_code(state, hash)?;
            if card.expires.is_some_and(|e| e <= now.ms) {
                return Err(conflict(format!("gift card …{} has expired", card.hint)));
            }
            let used = cards
                .iter()
                .filter(|c| c.giftcard_id == card.id)
                .fold(0i64, |t, c| t + c.amount_cents);
            if used + cents > card.balance_cents {
                return Err(conflict(format!(
                    "gift card …{} holds {} (minor units); {} cannot be paid with it",
                    card.hint,
                    card.balance_cents - used,
                    cents
                )));
            }
            cards.push(CardUse {
                giftcard_id: card.id,
                amount_cents: cents,
            });
        } else if p.code.is_some() || p.code_hash.is_some() {
            return Err(invalid(format!(
                "`payments.{i}.code` is for a gift card payment only"
            )));
        }
        payments.push(Payment {
            method: p.method,
            amount_cents: cents,
            reference,
        });
    }
    let paid = checked_sum("payments", payments.iter().map(|p| p.amount_cents))?;
    let cash = checked_sum(
        "payments",
        payments
            .iter()
            .filter(|p| p.method == Method::Cash)
            .map(|p| p.amount_cents),
    )?;
    let change_cents = if paid == total {
        0
    } else if paid > total && paid - total <= cash {
        paid - total
    } else {
        return Err(invalid(format!(
            "`payments` add up to {paid} but the total is {total} (services and products {goods_cents} − discount {discount_cents}{} + gift cards + tip {tip_cents}); only cash may be over-tendered",
            if rules.prices_include_tax { "" } else { " + tax" }
        )));
    };
    let n = lines.len();
    Ok(Bill {
        receipt: Receipt {
            id: 0,
            number: 0,
            kind: ReceiptKind::Sale,
            at: now.ms,
            visit_id: None,
            refund_of: None,
            drawer_id: None,
            cashier: actor.staff_id(),
            approved_by: None,
            reason: None,
            currency: rules.currency.code.clone(),
            minor_units: rules.currency.minor_units,
            prices_include_tax: rules.prices_include_tax,
            lines,
            discount_reason,
            payments,
            cards,
            change_cents,
            refunded: vec![Refunded::default(); n],
            lines_of: Vec::new(),
            restocked: false,
            request_id: None,
        },
        issued,
        codes,
        goods_cents,
        discount_cents,
    })
}

/// What is given back of one line.
fn part_of(left_qty: u32, left: Taxed, qty: u32) -> Taxed {
    if qty >= left_qty {
        return left;
    }
    let gross = div_round(
        i128::from(left.gross_cents) * i128::from(qty),
        i128::from(left_qty),
    );
    let gross = i64::try_from(gross).unwrap_or(left.gross_cents);
    portion(left, gross)
}

/// `gross` of what is left, with the tax in the same proportion.
fn portion(left: Taxed, gross: i64) -> Taxed {
    if gross >= left.gross_cents || left.gross_cents == 0 {
        return left;
    }
    let tax = div_round(
        i128::from(left.tax_cents) * i128::from(gross),
        i128::from(left.gross_cents),
    );
    let tax = i64::try_from(tax).unwrap_or(0);
    Taxed {
        net_cents: gross - tax,
        tax_cents: tax,
        gross_cents: gross,
    }
}

/// A decided refund of a sale receipt: the refund receipt (without id,
/// number and time) and the gift card balances to give back.
pub struct RefundPlan {
    pub receipt: Receipt,
    pub total_cents: i64,
    pub method: Method,
}

/// Paid in `method` on `sale`, less what its refunds gave back in it.
pub fn left_in(state: &State, sale: &Receipt, method: Method) -> i64 {
    let paid = sale
        .payments
        .iter()
        .filter(|p| p.method == method)
        .fold(0i64, |t, p| t + p.amount_cents);
    let change = if method == Method::Cash {
        sale.change_cents
    } else {
        0
    };
    let back = state
        .till
        .refunds_of(sale.id)
        .flat_map(|r| r.payments.iter())
        .filter(|p| p.method == method)
        .fold(0i64, |t, p| t + p.amount_cents);
    (paid - change - back).max(0)
}

pub fn plan_refund(
    state: &State,
    actor: &Actor,
    sale: &Receipt,
    a: &RefundArgs,
    now: Now,
) -> Result<RefundPlan, DomainError> {
    let reason = reason_text(&a.reason)?;
    let chosen = [a.amount_cents.is_some(), a.lines.is_some(), a.full]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen != 1 {
        return Err(invalid(
            "give one of `amount_cents`, `lines` (per line) or `full: true`",
        ));
    }
    let n = sale.lines.len();
    let mut back: Vec<(usize, u32, Taxed)> = Vec::new();
    if a.full {
        for i in 0..n {
            if let Some((q, left)) = sale.left_of(i) {
                if left.gross_cents > 0 || q > 0 {
                    back.push((i, q, left));
                }
            }
        }
    } else if let Some(lines) = &a.lines {
        if lines.is_empty() || lines.len() > n {
            return Err(invalid(
                "`lines` must name 1 or more of the receipt's lines",
            ));
        }
        for (k, LineRefundArg { line, qty }) in lines.iter().enumerate() {
            let (left_qty, left) = sale.left_of(*line).ok_or_else(|| {
                invalid(format!("`lines.{k}.line`: the receipt has no line {line}"))
            })?;
            if lines[..k].iter().any(|o| o.line == *line) {
                return Err(invalid(format!("`lines.{k}`: line {line} is named twice")));
            }
            let l = &sale.lines[*line];
            let qty = qty.unwrap_or(left_qty.max(1));
            if qty == 0 {
                return Err(invalid(format!("`lines.{k}.qty` must be 1 or more")));
            }
            if left.gross_cents <= 0 {
                return Err(conflict(format!(
                    "line {line} ({}) is refunded already",
                    l.name
                )));
            }
            if qty > left_qty.max(1) {
                return Err(invalid(format!(
                    "`lines.{k}.qty` {qty} is more than the {left_qty} left on line {line} ({})",
                    l.name
                )));
            }
            back.push((
                *line,
                qty.min(left_qty),
                part_of(left_qty.max(1), left, qty),
            ));
        }
    } else if let Some(cents) = a.amount_cents {
        let cents = amount("amount_cents", cents, false)?;
        let weights: Vec<(Id, i64)> = (0..n)
            .filter(|i| !matches!(sale.lines[*i].item, Item::Giftcard { .. }))
            .filter_map(|i| {
                sale.left_of(i)
                    .map(|(_, l)| (i as Id, l.gross_cents.max(0)))
            })
            .collect();
        let left: i64 = weights.iter().map(|w| w.1).sum();
        if cents > left {
            return Err(invalid(format!(
                "`amount_cents` {cents} is more than what is left to refund ({left} cents)"
            )));
        }
        for part in split_proportionally(cents, &weights)? {
            if part.amount_cents > 0 {
                let i = part.therapist_id as usize;
                if let Some((_, l)) = sale.left_of(i) {
                    back.push((i, 0, portion(l, part.amount_cents)));
                }
            }
        }
    }
    let total = checked_sum("amount_cents", back.iter().map(|b| b.2.gross_cents))?;
    if total <= 0 {
        return Err(conflict("nothing is left to refund on this receipt"));
    }
    // A sold gift card comes back only from what is left on it.
    for (i, _, t) in &back {
        if let Item::Giftcard { giftcard_id } = sale.lines[*i].item {
            let bal = state
                .till
                .giftcards
                .get(&giftcard_id)
                .map_or(0, |c| c.balance_cents);
            if bal < t.gross_cents {
                return Err(conflict(format!(
                    "gift card …{} holds only {bal} of its {}: the rest was spent",
                    state
                        .till
                        .giftcards
                        .get(&giftcard_id)
                        .map_or("", |c| c.hint.as_str()),
                    t.gross_cents
                )));
            }
        }
    }
    // The tender: the one the sale was paid with, unless named.
    let method = match a.method {
        Some(m) => m,
        None => {
            let paid_in: Vec<Method> = Method::TENDERS
                .into_iter()
                .filter(|m| left_in(state, sale, *m) > 0)
                .collect();
            match paid_in.as_slice() {
                [one] => *one,
                _ => {
                    return Err(invalid(format!(
                        "`method` is required: the sale was paid in {}",
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
    let left_in_method = left_in(state, sale, method);
    if total > left_in_method && !(a.other_tender && method != Method::Giftcard) {
        return Err(conflict(format!(
            "{}{left_in_method} cents paid by {} left to refund; a refund goes back in the tender it was paid with (an admin may say `other_tender: true`, except to a gift card)",
            sale.visit_id
                .and_then(|v| state.visits.get(&v))
                .map_or_else(|| format!("{} has ", sale.number_words()), |v| format!("{} has ", v.number)),
            method.as_str()
        )));
    }
    // Back onto the gift cards that paid, in the order they paid.
    let mut cards = Vec::new();
    if method == Method::Giftcard {
        let mut need = total;
        for used in &sale.cards {
            let restored: i64 = state
                .till
                .refunds_of(sale.id)
                .flat_map(|r| r.cards.iter())
                .filter(|c| c.giftcard_id == used.giftcard_id)
                .map(|c| c.amount_cents)
                .sum();
            let already: i64 = cards
                .iter()
                .filter(|c: &&CardUse| c.giftcard_id == used.giftcard_id)
                .map(|c| c.amount_cents)
                .sum();
            let room = (used.amount_cents - restored - already).max(0);
            let take = room.min(need);
            if take > 0 {
                cards.push(CardUse {
                    giftcard_id: used.giftcard_id,
                    amount_cents: take,
                });
                need -= take;
            }
        }
    }
    let drawer_id = if method == Method::Cash {
        let d = super::super::checkout::open_drawer(state, actor, None)
            .map_err(|_| conflict("a cash refund needs your open drawer (drawer.open)"))?;
        let holds = d.expected().cash;
        if total > holds {
            return Err(conflict(format!(
                "your drawer should hold {holds} cents in cash; {total} cents cannot come out"
            )));
        }
        Some(d.id)
    } else {
        None
    };
    back.sort_by_key(|b| b.0);
    let lines = back
        .iter()
        .map(|(i, qty, t)| {
            let l = &sale.lines[*i];
            Line {
                item: l.item,
                name: l.name.clone(),
                qty: *qty,
                unit_cents: l.unit_cents,
                discount_cents: 0,
                rate_bp: l.rate_bp,
                taxed: *t,
            }
        })
        .collect();
    let restock = a.restock
        && back
            .iter()
            .any(|(i, q, _)| *q > 0 && matches!(sale.lines[*i].item, Item::Product { .. }));
    Ok(RefundPlan {
        receipt: Receipt {
            id: 0,
            number: 0,
            kind: ReceiptKind::Refund,
            at: now.ms,
            visit_id: sale.visit_id,
            refund_of: Some(sale.id),
            drawer_id,
            cashier: actor.staff_id(),
            approved_by: a.approved_by,
            reason: Some(reason),
            currency: sale.currency.clone(),
            minor_units: sale.minor_units,
            prices_include_tax: sale.prices_include_tax,
            lines,
            discount_reason: None,
            payments: vec![Payment {
                method,
                amount_cents: total,
                reference: None,
            }],
            cards,
            change_cents: 0,
            refunded: Vec::new(),
            lines_of: back.iter().map(|b| b.0 as u32).collect(),
            restocked: restock,
            request_id: None,
        },
        total_cents: total,
        method,
    })
}
