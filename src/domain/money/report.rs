//! The counter's part of the day report (#17): net, tax and gross per rate
//! (sales less refunds, from the receipts), products sold and given back,
//! gift cards sold and redeemed, and sales without a visit.
//!
//! How gift cards count: selling one takes money (it is in
//! `revenue_by_method`, the money taken) but earns nothing yet — the spa
//! owes that value, so it is a liability, shown as `giftcards.sold` and
//! kept out of the tax rows. Redeeming one takes no money (it is not in
//! `revenue_by_method`) but pays for services and products, which are in
//! the tax rows like any other sale. So the tax rows' gross is what the
//! day earned, whatever paid for it; `revenue_by_method` is what came in.
//!
//! A checkout from before receipts existed has no `Sold` event before it: its
//! services less discount count at rate 0, so past days keep their figures
//! and gain rows that add up.

use std::collections::BTreeMap;

use serde::Serialize;

use super::receipt::{Item, ReceiptKind};
use super::tax::{add_row, RateRow};
use crate::domain::event::{Event, EventRecord};
use crate::domain::state::State;
use crate::domain::Id;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Count {
    pub count: u64,
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductLine {
    pub product_id: Id,
    pub name: String,
    pub sold: u64,
    pub returned: u64,
    /// Gross of the sales less the refunds of that day.
    pub gross_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GiftcardFigures {
    /// Cards sold (money taken, owed as services later: a liability).
    pub sold: Count,
    /// Balances spent as payment.
    pub redeemed: Count,
    /// Refunds paid back onto cards.
    pub refunded_to_cards: Count,
    /// Sold cards refunded (their value taken off them).
    pub cancelled: Count,
    /// `sold − redeemed + refunded_to_cards − cancelled`: what the day
    /// added to what the spa owes on gift cards.
    pub liability_change_cents: i64,
}

/// The counter's figures of a day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CounterReport {
    /// Sales less refunds per tax rate (services and products).
    pub taxes: Vec<RateRow>,
    /// The sums of `taxes`.
    pub taxes_total: RateRow,
    pub products_sold: Vec<ProductLine>,
    pub giftcards: GiftcardFigures,
    /// Checkouts without a visit (`sale.checkout`, `giftcard.issue`).
    pub sales: Count,
    /// Receipts issued that day (sales and refunds).
    pub receipts: u64,
}

#[derive(Default)]
pub struct CounterTally {
    taxes: Vec<RateRow>,
    products: BTreeMap<Id, (u64, u64, i64)>,
    giftcards: GiftcardFigures,
    sales: Count,
    receipts: u64,
    /// Visits checked out that day without a receipt: their goods.
    legacy: BTreeMap<Id, i64>,
    /// Visits whose receipt came (just before their checkout).
    receipted: std::collections::BTreeSet<Id>,
}

impl CounterTally {
    /// Adds one event of the day (the state as it was before it).
    pub fn add(&mut self, record: &EventRecord) {
        match &record.event {
            Event::VisitCheckedOut { visit_id, checkout } => {
                if self.receipted.remove(visit_id) {
                    return;
                }
                self.legacy
                    .insert(*visit_id, checkout.services_cents - checkout.discount_cents);
            }
            Event::Sold { receipt, .. } | Event::Refunded { receipt } => {
                let sign = if receipt.kind == ReceiptKind::Sale {
                    1
                } else {
                    -1
                };
                self.receipts += 1;
                if let (Some(v), ReceiptKind::Sale) = (receipt.visit_id, receipt.kind) {
                    self.receipted.insert(v);
                }
                if receipt.kind == ReceiptKind::Sale && receipt.visit_id.is_none() {
                    self.sales.count += 1;
                    self.sales.cents += receipt.paid_cents() - receipt.change_cents;
                }
                for l in &receipt.lines {
                    if l.is_taxable() {
                        add_row(&mut self.taxes, l.rate_bp, l.taxed, sign);
                    }
                    match l.item {
                        Item::Product { product_id } => {
                            let e = self.products.entry(product_id).or_default();
                            if sign > 0 {
                                e.0 += u64::from(l.qty);
                            } else {
                                e.1 += u64::from(l.qty);
                            }
                            e.2 += sign * l.taxed.gross_cents;
                        }
                        Item::Giftcard { .. } if sign > 0 => {
                            self.giftcards.sold.count += 1;
                            self.giftcards.sold.cents += l.taxed.gross_cents;
                        }
                        Item::Giftcard { .. } => {
                            self.giftcards.cancelled.count += 1;
                            self.giftcards.cancelled.cents += l.taxed.gross_cents;
                        }
                        _ => {}
                    }
                }
                for c in &receipt.cards {
                    let f = if sign > 0 {
                        &mut self.giftcards.redeemed
                    } else {
                        &mut self.giftcards.refunded_to_cards
                    };
                    f.count += 1;
                    f.cents += c.amount_cents;
                }
            }
            _ => {}
        }
    }

    pub fn finish(mut self, state: &State) -> CounterReport {
        for goods in std::mem::take(&mut self.legacy).into_values() {
            add_row(
                &mut self.taxes,
                0,
                super::tax::Taxed {
                    net_cents: goods,
                    tax_cents: 0,
                    gross_cents: goods,
                },
                1,
            );
        }
        let mut total = RateRow::default();
        for r in &self.taxes {
            total.net_cents += r.net_cents;
            total.tax_cents += r.tax_cents;
            total.gross_cents += r.gross_cents;
        }
        let g = &mut self.giftcards;
        g.liability_change_cents =
            g.sold.cents - g.redeemed.cents + g.refunded_to_cards.cents - g.cancelled.cents;
        CounterReport {
            taxes: self.taxes,
            taxes_total: total,
            products_sold: self
                .products
                .into_iter()
                .map(|(id, (sold, returned, gross))| ProductLine {
                    product_id: id,
                    name: state
                        .till
                        .products
                        .get(&id)
                        .map_or_else(|| format!("product {id}"), |p| p.name.clone()),
                    sold,
                    returned,
                    gross_cents: gross,
                })
                .collect(),
            giftcards: self.giftcards,
            sales: self.sales,
            receipts: self.receipts,
        }
    }
}

/// The counter's CSV rows (`section,key,name,value`), after the rest.
pub fn csv_rows(c: &CounterReport, row: &mut dyn FnMut(&str, String, &str, String)) {
    for t in c.taxes.iter().chain(std::iter::once(&c.taxes_total)) {
        let key = if std::ptr::eq(t, &c.taxes_total) {
            "total".to_string()
        } else {
            t.rate_bp.to_string()
        };
        row("tax_net_cents", key.clone(), "", t.net_cents.to_string());
        row("tax_cents", key.clone(), "", t.tax_cents.to_string());
        row("tax_gross_cents", key, "", t.gross_cents.to_string());
    }
    for p in &c.products_sold {
        let id = p.product_id.to_string();
        row("products_sold", id.clone(), &p.name, p.sold.to_string());
        row(
            "products_returned",
            id.clone(),
            &p.name,
            p.returned.to_string(),
        );
        row(
            "products_gross_cents",
            id,
            &p.name,
            p.gross_cents.to_string(),
        );
    }
    let g = &c.giftcards;
    for (key, x) in [
        ("sold", &g.sold),
        ("redeemed", &g.redeemed),
        ("refunded_to_cards", &g.refunded_to_cards),
        ("cancelled", &g.cancelled),
    ] {
        row("giftcards_count", key.into(), "", x.count.to_string());
        row("giftcards_cents", key.into(), "", x.cents.to_string());
    }
    row(
        "giftcards_cents",
        "liability_change".into(),
        "",
        g.liability_change_cents.to_string(),
    );
    row("sales", "count".into(), "", c.sales.count.to_string());
    row("sales", "cents".into(), "", c.sales.cents.to_string());
    row("receipts", "count".into(), "", c.receipts.to_string());
}
