//! The receipt: what every checkout, sale and refund leaves behind, with
//! its number, its lines (each with net, tax and gross), the tax per rate,
//! the payments, the change and the tip. It is the record the receipt page
//! and the printer show, and what the day report's tax lines add up.
//!
//! A receipt is persisted with postcard as its own record, so it is plain
//! data; a sale's receipt is updated only by its refunds (`refunded` per
//! line), never otherwise.

use serde::{Deserialize, Serialize};

use super::tax::{add_row, RateRow, Taxed};
use super::Payment;
use crate::domain::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// A visit's checkout or a sale without a visit.
    Sale,
    /// Money (and maybe goods) going back to the customer.
    Refund,
}

/// What a line sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Service {
        service_id: Id,
    },
    Product {
        product_id: Id,
    },
    /// A gift card sold: money in advance, a liability, never taxed here
    /// (its tax comes with what it later pays for).
    Giftcard {
        giftcard_id: Id,
    },
    /// The tip: the therapists' money, outside tax.
    Tip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub item: Item,
    /// The name as it was sold.
    pub name: String,
    pub qty: u32,
    pub unit_cents: i64,
    /// This line's share of the bill's discount.
    pub discount_cents: i64,
    pub rate_bp: u32,
    pub taxed: Taxed,
}

/// A gift card's part in a receipt: redeemed on a sale, given back on a
/// refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardUse {
    pub giftcard_id: Id,
    pub amount_cents: i64,
}

/// How much of one line refunds have given back so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    pub qty: u32,
    pub taxed: Taxed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: Id,
    /// Consecutive over the spa's whole life, sales and refunds alike.
    pub number: u64,
    pub kind: ReceiptKind,
    pub at: i64,
    pub visit_id: Option<Id>,
    /// A refund's sale receipt.
    pub refund_of: Option<Id>,
    pub drawer_id: Option<Id>,
    /// The staff member at the counter (`None`: the admin token).
    pub cashier: Option<Id>,
    /// The admin whose PIN approved a cashier's correction.
    pub approved_by: Option<Id>,
    pub reason: Option<String>,
    pub currency: String,
    pub minor_units: u8,
    pub prices_include_tax: bool,
    pub lines: Vec<Line>,
    pub discount_reason: Option<String>,
    pub payments: Vec<Payment>,
    pub cards: Vec<CardUse>,
    pub change_cents: i64,
    /// A sale's lines as refunds have given them back (same order as
    /// `lines`; empty on a refund receipt).
    pub refunded: Vec<Refunded>,
    /// A refund: the sale's line each of its lines gives back.
    pub lines_of: Vec<u32>,
    /// A refund: whether its product lines went back into stock.
    pub restocked: bool,
    /// The `request_id` of a sale without a visit (its retry answer).
    pub request_id: Option<String>,
}

impl Receipt {
    /// The sum of the lines' gross amounts (tip included): what the
    /// payments cover.
    pub fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .fold(0i64, |t, l| t.saturating_add(l.taxed.gross_cents))
    }

    pub fn paid_cents(&self) -> i64 {
        self.payments
            .iter()
            .fold(0i64, |t, p| t.saturating_add(p.amount_cents))
    }

    /// Net, tax and gross per rate of the taxable lines (gift cards and the
    /// tip are outside tax and not in these rows).
    pub fn tax_rows(&self) -> Vec<RateRow> {
        let mut rows = Vec::new();
        for l in self.lines.iter().filter(|l| l.is_taxable()) {
            add_row(&mut rows, l.rate_bp, l.taxed, 1);
        }
        rows
    }

    /// What is left to refund of line `i`.
    pub fn left_of(&self, i: usize) -> Option<(u32, Taxed)> {
        let l = self.lines.get(i)?;
        let r = self.refunded.get(i).copied().unwrap_or_default();
        Some((
            l.qty.saturating_sub(r.qty),
            Taxed {
                net_cents: l.taxed.net_cents - r.taxed.net_cents,
                tax_cents: l.taxed.tax_cents - r.taxed.tax_cents,
                gross_cents: l.taxed.gross_cents - r.taxed.gross_cents,
            },
        ))
    }

    /// The gross still refundable over all lines.
    pub fn refundable_cents(&self) -> i64 {
        (0..self.lines.len())
            .filter_map(|i| self.left_of(i))
            .fold(0i64, |t, (_, x)| t.saturating_add(x.gross_cents))
    }

    /// The receipt's number as printed: `R-000042`.
    pub fn number_words(&self) -> String {
        format!("R-{:06}", self.number)
    }
}

impl Line {
    pub fn is_taxable(&self) -> bool {
        matches!(self.item, Item::Service { .. } | Item::Product { .. })
    }
}

/// The receipt counter (its own record: the floor's `Counters` are
/// positional and keep their shape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCounter {
    pub last: u64,
}
