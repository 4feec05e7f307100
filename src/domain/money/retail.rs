//! The counter's own things: products on the shelf (with stock that never
//! goes below zero), gift cards (their code stored only as a hash), the
//! tax rate of each service, the receipts and their counter. [`Till`] holds
//! them in the state; `product.*` and `giftcard.balance` are decided here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::receipt::{Receipt, ReceiptCounter};
use super::tax;
use crate::domain::command::{GiftcardBalance, ProductCreate, ProductStock, ProductUpdate};
use crate::domain::decide::{reason_text, text, Decided, Reply, MAX_NAME};
use crate::domain::event::Event;
use crate::domain::state::State;
use crate::domain::{conflict, invalid, not_found, DomainError, Id};

/// No product above ten million major units' worth of minor units, and no
/// stock above a million: typo guards.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: Id,
    pub name: String,
    pub sku: String,
    pub price_cents: i64,
    pub tax_rate_bp: u32,
    pub stock: i64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftCard {
    pub id: Id,
    /// SHA-256 of the code (the code itself was shown once, on its sale).
    pub code_hash: String,
    /// The code's last four characters, to tell cards apart on a receipt.
    pub hint: String,
    pub issued_cents: i64,
    pub balance_cents: i64,
    pub issued_at: i64,
    pub expires: Option<i64>,
    /// The receipt that sold it.
    pub receipt_id: Id,
}

/// A service's tax rate (its own record: `Service` keeps its shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTax {
    pub service_id: Id,
    pub rate_bp: u32,
}

/// The counter's part of the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Till {
    pub products: BTreeMap<Id, Product>,
    pub giftcards: BTreeMap<Id, GiftCard>,
    pub receipts: BTreeMap<Id, Receipt>,
    /// Services without an entry are taxed at 0 (everything before #17).
    pub service_tax: BTreeMap<Id, u32>,
    pub counter: ReceiptCounter,
    /// Derived (never persisted): gift cards by code hash.
    pub card_by_hash: BTreeMap<String, Id>,
    /// Derived: a visit's sale receipt.
    pub receipt_of_visit: BTreeMap<Id, Id>,
    /// Derived: a sale's receipt by its `request_id` (retries).
    pub receipt_by_request: BTreeMap<String, Id>,
    /// Derived: a sale receipt's refund receipts, oldest first.
    pub refunds_by_sale: BTreeMap<Id, Vec<Id>>,
}

impl Till {
    pub fn service_rate(&self, service_id: Id) -> u32 {
        self.service_tax.get(&service_id).copied().unwrap_or(0)
    }

    pub fn card_by_code_hash(&self, hash: &str) -> Option<&GiftCard> {
        self.card_by_hash
            .get(hash)
            .and_then(|id| self.giftcards.get(id))
    }

    pub fn put_card(&mut self, card: GiftCard) {
        self.card_by_hash.insert(card.code_hash.clone(), card.id);
        self.giftcards.insert(card.id, card);
    }

    pub fn put_receipt(&mut self, receipt: Receipt) {
        if let (Some(v), super::receipt::ReceiptKind::Sale) = (receipt.visit_id, receipt.kind) {
            self.receipt_of_visit.insert(v, receipt.id);
        }
        if let Some(r) = &receipt.request_id {
            self.receipt_by_request.insert(r.clone(), receipt.id);
        }
        if let Some(sale) = receipt.refund_of {
            let refunds = self.refunds_by_sale.entry(sale).or_default();
            if let Err(at) = refunds.binary_search(&receipt.id) {
                refunds.insert(at, receipt.id);
            }
        }
        self.receipts.insert(receipt.id, receipt);
    }

    pub fn receipt_by_request(&self, request_id: &str) -> Option<Id> {
        self.receipt_by_request.get(request_id).copied()
    }

    /// The receipt of a visit or a sale id (the receipt page's address).
    pub fn receipt_for(&self, id: Id) -> Option<&Receipt> {
        self.receipt_of_visit
            .get(&id)
            .and_then(|r| self.receipts.get(r))
            .or_else(|| self.receipts.get(&id))
    }

    /// The refunds of a sale receipt, oldest first.
    pub fn refunds_of(&self, sale: Id) -> impl Iterator<Item = &Receipt> {
        self.refunds_by_sale
            .get(&sale)
            .into_iter()
            .flatten()
            .filter_map(|id| self.receipts.get(id))
    }
}

fn price(field: &str, cents: i64) -> Result<i64, DomainError> {
    if !(0..=MAX_PRICE_CENTS).contains(&cents) {
        return Err(invalid(format!(
            "`{field}` must be 0 to {MAX_PRICE_CENTS} in minor units"
        )));
    }
    Ok(cents)
}

fn sku(state: &State, value: &str, id: Option<Id>) -> Result<String, DomainError> {
    let sku = text("sku", value, 32)?;
    if let Some(other) = state
        .till
        .products
        .values()
        .find(|p| p.sku.eq_ignore_ascii_case(&sku) && Some(p.id) != id)
    {
        return Err(conflict(format!(
            "SKU {sku} is already {} (product {})",
            other.name, other.id
        )));
    }
    Ok(sku)
}

pub fn product_ref(state: &State, id: Id) -> Result<&Product, DomainError> {
    state
        .till
        .products
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no product {id}")))
}

pub fn product_create(state: &State, a: &ProductCreate) -> Result<Decided, DomainError> {
    let name = text("name", &a.name, MAX_NAME)?;
    let sku = sku(state, &a.sku, None)?;
    let price_cents = price("price_cents", a.price_cents)?;
    let tax_rate_bp = tax::rate("tax_rate_bp", a.tax_rate_bp)?;
    if !(0..=MAX_STOCK).contains(&a.stock) {
        return Err(invalid(format!("`stock` must be 0 to {MAX_STOCK}")));
    }
    let id = state.counters.next_id.max(1);
    Ok(Decided {
        events: vec![Event::ProductCreated {
            product: Product {
                id,
                name,
                sku,
                price_cents,
                tax_rate_bp,
                stock: a.stock,
                active: true,
            },
        }],
        reply: Reply::Product(id),
    })
}

pub fn product_update(state: &State, a: &ProductUpdate) -> Result<Decided, DomainError> {
    let p = product_ref(state, a.product_id)?;
    let mut after = p.clone();
    if let Some(n) = &a.name {
        after.name = text("name", n, MAX_NAME)?;
    }
    if let Some(s) = &a.sku {
        after.sku = sku(state, s, Some(p.id))?;
    }
    if let Some(c) = a.price_cents {
        after.price_cents = price("price_cents", c)?;
    }
    if let Some(r) = a.tax_rate_bp {
        after.tax_rate_bp = tax::rate("tax_rate_bp", r)?;
    }
    if let Some(active) = a.active {
        after.active = active;
    }
    if after == *p {
        return Err(invalid(
            "nothing to change: name, sku, price_cents, tax_rate_bp or active",
        ));
    }
    Ok(Decided {
        events: vec![Event::ProductUpdated { product: after }],
        reply: Reply::Product(p.id),
    })
}

pub fn product_stock(state: &State, a: &ProductStock) -> Result<Decided, DomainError> {
    let p = product_ref(state, a.product_id)?;
    let reason = reason_text(&a.reason)?;
    if a.delta == 0 || a.delta.abs() > MAX_STOCK {
        return Err(invalid(format!(
            "`delta` must be a non-zero count of at most {MAX_STOCK} either way"
        )));
    }
    let stock = p.stock + a.delta;
    if stock < 0 {
        return Err(conflict(format!(
            "{} has {} in stock: {} cannot come off",
            p.name, p.stock, -a.delta
        )));
    }
    if stock > MAX_STOCK {
        return Err(invalid(format!("`delta`: stock would pass {MAX_STOCK}")));
    }
    Ok(Decided {
        events: vec![Event::ProductStockChanged {
            product_id: p.id,
            delta: a.delta,
            stock,
            reason,
        }],
        reply: Reply::Product(p.id),
    })
}

/// A gift card by the hash of the code a customer gives, or `conflict`
/// (an unknown code is not told apart from a spent one by kind: both are
/// the desk's problem to sort out with the customer).
pub fn card_by_code<'a>(state: &'a State, code_hash: &str) -> Result<&'a GiftCard, DomainError> {
    state
        .till
        .card_by_code_hash(code_hash)
        .ok_or_else(|| conflict("no gift card has that code: check it letter by letter"))
}

pub fn giftcard_balance(state: &State, a: &GiftcardBalance) -> Result<Decided, DomainError> {
    if a.code_hash.is_empty() {
        return Err(invalid("`code` is required"));
    }
    let card = card_by_code(state, &a.code_hash)?;
    Ok(Decided {
        events: Vec::new(),
        reply: Reply::Json(json!({
            "giftcard": card_view(card),
            "balance_cents": card.balance_cents,
        })),
    })
}

/// A gift card as the office sees it (never its code or hash).
pub fn card_view(card: &GiftCard) -> serde_json::Value {
    json!({
        "id": card.id,
        "hint": card.hint,
        "issued_cents": card.issued_cents,
        "balance_cents": card.balance_cents,
        "issued_at": card.issued_at,
        "expires": card.expires,
    })
}
