//! How the counter's things look in JSON (acks, broadcasts, the receipt
//! page's data). Who may see them is `views`' and `fanout`'s business:
//! products go to staff, receipts to the office (and a customer their own),
//! a gift card's code hash never leaves the hub.

use serde_json::{json, Value};

use super::receipt::{Item, Receipt, ReceiptKind};
use super::retail::Product;
use super::tax::percent_words;
use crate::domain::state::State;

pub fn product(p: &Product) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "sku": p.sku,
        "price_cents": p.price_cents,
        "tax_rate_bp": p.tax_rate_bp,
        "stock": p.stock,
        "active": p.active,
    })
}

fn item(i: &Item) -> Value {
    match i {
        Item::Service { service_id } => json!({"kind": "service", "service_id": service_id}),
        Item::Product { product_id } => json!({"kind": "product", "product_id": product_id}),
        Item::Giftcard { giftcard_id } => json!({"kind": "giftcard", "giftcard_id": giftcard_id}),
        Item::Tip => json!({"kind": "tip"}),
    }
}

/// What the store's archive adds to a receipt shown after it left memory
/// (see `archive`): its sale or its refunds, and its visit's number.
#[derive(Debug, Default)]
pub struct FromArchive {
    pub receipts: Vec<Receipt>,
    pub visit_number: Option<String>,
}

/// A receipt with its lines, tax per rate, payments and refunds.
pub fn receipt_of(state: &State, r: &Receipt) -> Value {
    receipt_with(state, r, &FromArchive::default())
}

/// `receipt_of`, with what memory lacks taken from `more`.
pub fn receipt_with(state: &State, r: &Receipt, more: &FromArchive) -> Value {
    let receipt = |id: crate::domain::Id| {
        state
            .till
            .receipts
            .get(&id)
            .or_else(|| more.receipts.iter().find(|x| x.id == id))
    };
    let lines: Vec<Value> = r
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = item(&l.item);
            if let Value::Object(m) = &mut v {
                m.insert("line".into(), json!(i));
                m.insert("name".into(), json!(l.name));
                m.insert("qty".into(), json!(l.qty));
                m.insert("unit_cents".into(), json!(l.unit_cents));
                m.insert("discount_cents".into(), json!(l.discount_cents));
                m.insert("tax_rate_bp".into(), json!(l.rate_bp));
                m.insert("taxable".into(), json!(l.is_taxable()));
                m.insert("net_cents".into(), json!(l.taxed.net_cents));
                m.insert("tax_cents".into(), json!(l.taxed.tax_cents));
                m.insert("gross_cents".into(), json!(l.taxed.gross_cents));
                if let Some(x) = r.refunded.get(i) {
                    m.insert("refunded_qty".into(), json!(x.qty));
                    m.insert("refunded_cents".into(), json!(x.taxed.gross_cents));
                }
                if let Some(of) = r.lines_of.get(i) {
                    m.insert("of_line".into(), json!(of));
                }
            }
            v
        })
        .collect();
    let taxes: Vec<Value> = r
        .tax_rows()
        .iter()
        .map(|t| {
            json!({
                "rate_bp": t.rate_bp,
                "rate": percent_words(t.rate_bp),
                "net_cents": t.net_cents,
                "tax_cents": t.tax_cents,
                "gross_cents": t.gross_cents,
            })
        })
        .collect();
    let refunds: Vec<Value> = if r.kind == ReceiptKind::Sale {
        let mut refunds: Vec<&Receipt> = state
            .till
            .refunds_of(r.id)
            .chain(more.receipts.iter().filter(|x| x.refund_of == Some(r.id)))
            .collect();
        refunds.sort_by_key(|x| x.id);
        refunds.dedup_by_key(|x| x.id);
        refunds
            .into_iter()
            .map(|x| {
                json!({
                    "id": x.id,
                    "number": x.number_words(),
                    "total_cents": x.total_cents(),
                    "reason": x.reason,
                    "at": x.at,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let visit_number = r
        .visit_id
        .and_then(|v| state.visits.get(&v))
        .map(|v| v.number.clone())
        .or_else(|| more.visit_number.clone());
    json!({
        "id": r.id,
        "number": r.number_words(),
        "kind": r.kind,
        "at": r.at,
        "visit_id": r.visit_id,
        "visit_number": visit_number,
        "refund_of": r.refund_of,
        "refund_of_number": r.refund_of.and_then(receipt).map(Receipt::number_words),
        "drawer_id": r.drawer_id,
        "cashier_id": r.cashier,
        "approved_by": r.approved_by,
        "reason": r.reason,
        "currency": r.currency,
        "minor_units": r.minor_units,
        "prices_include_tax": r.prices_include_tax,
        "lines": lines,
        "taxes": taxes,
        "discount_reason": r.discount_reason,
        "total_cents": r.total_cents(),
        "paid_cents": r.paid_cents(),
        "change_cents": r.change_cents,
        "payments": r.payments.iter().map(|p| json!({
            "method": p.method.as_str(),
            "amount_cents": p.amount_cents,
            "reference": p.reference,
        })).collect::<Vec<_>>(),
        "giftcards_used": r.cards.iter().map(|c| json!({
            "giftcard_id": c.giftcard_id,
            "hint": state.till.giftcards.get(&c.giftcard_id).map(|g| g.hint.clone()),
            "amount_cents": c.amount_cents,
        })).collect::<Vec<_>>(),
        "restocked": r.restocked,
        "refunds": refunds,
    })
}
