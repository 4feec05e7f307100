//! `apply` and `touched` for the counter's events (#17), beside the rest of
//! the counter rather than in state.rs. Like all of `apply`, it never fails
//! and never decides: the event carries every value.

use super::receipt::{Item, Receipt, ReceiptKind};
use super::retail::{ServiceTax, Till};
use super::tax::Taxed;
use crate::domain::event::Event;
use crate::domain::state::{Record, RecordKey, State};

impl Till {
    /// Every record of the counter, for a full save.
    pub fn records(&self) -> Vec<(RecordKey, Record)> {
        let mut out = vec![(
            RecordKey::ReceiptCounter,
            Record::ReceiptCounter(self.counter),
        )];
        out.extend(
            self.products
                .values()
                .map(|p| (RecordKey::Product(p.id), Record::Product(p.clone()))),
        );
        out.extend(
            self.giftcards
                .values()
                .map(|g| (RecordKey::Giftcard(g.id), Record::Giftcard(g.clone()))),
        );
        out.extend(
            self.receipts
                .values()
                .map(|r| (RecordKey::Receipt(r.id), Record::Receipt(r.clone()))),
        );
        out.extend(self.service_tax.iter().map(|(id, rate)| {
            (
                RecordKey::ServiceTax(*id),
                Record::ServiceTax(ServiceTax {
                    service_id: *id,
                    rate_bp: *rate,
                }),
            )
        }));
        out
    }
}

fn plus(a: Taxed, b: Taxed) -> Taxed {
    Taxed {
        net_cents: a.net_cents.saturating_add(b.net_cents),
        tax_cents: a.tax_cents.saturating_add(b.tax_cents),
        gross_cents: a.gross_cents.saturating_add(b.gross_cents),
    }
}

impl State {
    pub(crate) fn apply_till(&mut self, event: &Event, at: i64) {
        match event {
            Event::ServiceTaxSet {
                service_id,
                rate_bp,
            } => {
                self.till.service_tax.insert(*service_id, *rate_bp);
            }
            Event::ProductCreated { product } | Event::ProductUpdated { product } => {
                self.bump_id(product.id);
                self.till.products.insert(product.id, product.clone());
            }
            Event::ProductStockChanged {
                product_id, stock, ..
            } => {
                if let Some(p) = self.till.products.get_mut(product_id) {
                    p.stock = *stock;
                }
            }
            Event::Sold { receipt, issued } => {
                let mut receipt = receipt.clone();
                receipt.at = at;
                for card in issued {
                    self.bump_id(card.id);
                    let mut card = card.clone();
                    card.issued_at = at;
                    card.receipt_id = receipt.id;
                    self.till.put_card(card);
                }
                self.take_stock(&receipt, -1);
                for used in &receipt.cards {
                    if let Some(c) = self.till.giftcards.get_mut(&used.giftcard_id) {
                        c.balance_cents = c.balance_cents.saturating_sub(used.amount_cents);
                    }
                }
                if receipt.visit_id.is_none() {
                    if let Some(d) = receipt.drawer_id.and_then(|id| self.drawers.get_mut(&id)) {
                        for p in &receipt.payments {
                            d.taken.add(p.method, p.amount_cents);
                        }
                        d.change_cents = d.change_cents.saturating_add(receipt.change_cents);
                    }
                }
                self.put_new_receipt(receipt);
            }
            Event::Refunded { receipt } => {
                let mut receipt = receipt.clone();
                receipt.at = at;
                if let Some(sale) = receipt
                    .refund_of
                    .and_then(|id| self.till.receipts.get_mut(&id))
                {
                    for (line, of) in receipt.lines.iter().zip(&receipt.lines_of) {
                        if let Some(r) = sale.refunded.get_mut(*of as usize) {
                            r.qty = r.qty.saturating_add(line.qty);
                            r.taxed = plus(r.taxed, line.taxed);
                        }
                    }
                }
                // A sold gift card refunded: its value leaves it.
                for line in &receipt.lines {
                    if let Item::Giftcard { giftcard_id } = line.item {
                        if let Some(c) = self.till.giftcards.get_mut(&giftcard_id) {
                            c.balance_cents =
                                c.balance_cents.saturating_sub(line.taxed.gross_cents);
                        }
                    }
                }
                if receipt.restocked {
                    self.take_stock(&receipt, 1);
                }
                for back in &receipt.cards {
                    if let Some(c) = self.till.giftcards.get_mut(&back.giftcard_id) {
                        c.balance_cents = c.balance_cents.saturating_add(back.amount_cents);
                    }
                }
                if receipt.visit_id.is_none() {
                    if let Some(d) = receipt.drawer_id.and_then(|id| self.drawers.get_mut(&id)) {
                        for p in &receipt.payments {
                            d.refunded.add(p.method, p.amount_cents);
                        }
                    }
                }
                self.put_new_receipt(receipt);
            }
            _ => {}
        }
    }

    /// Product lines on (+1) or off (−1) the shelf.
    fn take_stock(&mut self, receipt: &Receipt, sign: i64) {
        for l in &receipt.lines {
            if let Item::Product { product_id } = l.item {
                if let Some(p) = self.till.products.get_mut(&product_id) {
                    p.stock = p.stock.saturating_add(sign * i64::from(l.qty));
                }
            }
        }
    }

    fn put_new_receipt(&mut self, receipt: Receipt) {
        self.bump_id(receipt.id);
        self.till.counter.last = self.till.counter.last.max(receipt.number);
        self.till.put_receipt(receipt);
    }

    pub(crate) fn touched_till(&self, event: &Event, keys: &mut Vec<RecordKey>) {
        let mut receipt_keys = |r: &Receipt| {
            keys.push(RecordKey::ReceiptCounter);
            keys.push(RecordKey::Receipt(r.id));
            keys.extend(r.refund_of.map(RecordKey::Receipt));
            for l in &r.lines {
                match l.item {
                    Item::Product { product_id } if r.kind == ReceiptKind::Sale || r.restocked => {
                        keys.push(RecordKey::Product(product_id))
                    }
                    Item::Giftcard { giftcard_id } => keys.push(RecordKey::Giftcard(giftcard_id)),
                    _ => {}
                }
            }
            keys.extend(r.cards.iter().map(|c| RecordKey::Giftcard(c.giftcard_id)));
            if r.visit_id.is_none() {
                keys.extend(r.drawer_id.map(RecordKey::Drawer));
            }
        };
        match event {
            Event::ServiceTaxSet { service_id, .. } => {
                keys.push(RecordKey::ServiceTax(*service_id))
            }
            Event::ProductCreated { product } | Event::ProductUpdated { product } => {
                keys.push(RecordKey::Product(product.id))
            }
            Event::ProductStockChanged { product_id, .. } => {
                keys.push(RecordKey::Product(*product_id))
            }
            Event::Sold { receipt, .. } | Event::Refunded { receipt } => receipt_keys(receipt),
            _ => {}
        }
    }
}
