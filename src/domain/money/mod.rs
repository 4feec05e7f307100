//! Money on the floor: payments, tips, refunds and cash drawers, all in
//! integer minor units of the spa's currency ("cents" in names, whatever
//! the currency's minor unit is) with checked arithmetic (an overflow is a
//! refusal, never a wrap or a panic), and the pure sums the Z report and
//! the books use.
//!
//! The counter (#17) lives in the submodules: the currency, tax per line,
//! products and gift cards, the receipt every checkout, sale and refund
//! gets, and the bill that turns a checkout's lines into a receipt.

mod apply;
pub mod bill;
pub mod currency;
pub mod giftcode;
pub mod receipt;
pub mod report;
pub mod retail;
pub mod sale;
pub mod tax;
pub mod view;

use serde::{Deserialize, Serialize};

use super::{invalid, DomainError, Id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Cash,
    Card,
    Voucher,
    Other,
    /// A gift card's balance (#17; appended: postcard numbers variants by
    /// position). It never touches a drawer: `PerMethod` has no slot for it.
    Giftcard,
}

impl Method {
    /// The tenders a drawer counts (the Z report, the report's money taken).
    pub const ALL: [Method; 4] = [Method::Cash, Method::Card, Method::Voucher, Method::Other];
    /// Every way a bill may be paid.
    pub const TENDERS: [Method; 5] = [
        Method::Cash,
        Method::Card,
        Method::Voucher,
        Method::Other,
        Method::Giftcard,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Cash => "cash",
            Method::Card => "card",
            Method::Voucher => "voucher",
            Method::Other => "other",
            Method::Giftcard => "giftcard",
        }
    }
}

/// An amount per payment method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerMethod {
    #[serde(default)]
    pub cash: i64,
    #[serde(default)]
    pub card: i64,
    #[serde(default)]
    pub voucher: i64,
    #[serde(default)]
    pub other: i64,
}

impl PerMethod {
    pub fn get(&self, m: Method) -> i64 {
        match m {
            Method::Cash => self.cash,
            Method::Card => self.card,
            Method::Voucher => self.voucher,
            Method::Other => self.other,
            Method::Giftcard => 0,
        }
    }

    fn slot(&mut self, m: Method) -> Option<&mut i64> {
        match m {
            Method::Cash => Some(&mut self.cash),
            Method::Card => Some(&mut self.card),
            Method::Voucher => Some(&mut self.voucher),
            Method::Other => Some(&mut self.other),
            // Gift card money was taken when the card was sold.
            Method::Giftcard => None,
        }
    }

    /// Adds (saturating: inputs were checked by `decide`); a gift card
    /// amount is not money in a drawer and is not counted here.
    pub fn add(&mut self, m: Method, cents: i64) {
        if let Some(s) = self.slot(m) {
            *s = s.saturating_add(cents);
        }
    }

    pub fn checked_add(&self, other: &PerMethod) -> Option<PerMethod> {
        Some(PerMethod {
            cash: self.cash.checked_add(other.cash)?,
            card: self.card.checked_add(other.card)?,
            voucher: self.voucher.checked_add(other.voucher)?,
            other: self.other.checked_add(other.other)?,
        })
    }

    pub fn minus(&self, other: &PerMethod) -> PerMethod {
        PerMethod {
            cash: self.cash.saturating_sub(other.cash),
            card: self.card.saturating_sub(other.card),
            voucher: self.voucher.saturating_sub(other.voucher),
            other: self.other.saturating_sub(other.other),
        }
    }

    pub fn total(&self) -> i64 {
        Method::ALL
            .iter()
            .fold(0i64, |t, m| t.saturating_add(self.get(*m)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: Method,
    pub amount_cents: i64,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipShare {
    pub therapist_id: Id,
    pub amount_cents: i64,
}

/// What a visit's checkout recorded. Never edited afterwards, except the
/// tip split (`visit.retip`, its own event with a reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub request_id: String,
    /// The seq of the checkout event (a retried request is answered with it).
    pub seq: u64,
    pub at: i64,
    pub drawer_id: Id,
    /// The staff member who took the payment (`None`: the admin token).
    pub cashier: Option<Id>,
    pub services_cents: i64,
    pub discount_cents: i64,
    pub discount_reason: Option<String>,
    pub tip_cents: i64,
    pub tips: Vec<TipShare>,
    pub payments: Vec<Payment>,
    pub change_cents: i64,
}

impl Checkout {
    /// services − discount + tip.
    pub fn total_cents(&self) -> i64 {
        self.services_cents
            .saturating_sub(self.discount_cents)
            .saturating_add(self.tip_cents)
    }
    pub fn paid_cents(&self) -> i64 {
        self.payments
            .iter()
            .fold(0i64, |t, p| t.saturating_add(p.amount_cents))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub at: i64,
    pub amount_cents: i64,
    pub method: Method,
    pub reason: String,
    pub drawer_id: Option<Id>,
    pub by: Option<Id>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    PayIn,
    PayOut,
    TipPayout,
    SafeDrop,
}

impl MoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveKind::PayIn => "pay_in",
            MoveKind::PayOut => "pay_out",
            MoveKind::TipPayout => "tip_payout",
            MoveKind::SafeDrop => "safe_drop",
        }
    }
    /// Cash into the drawer (+1) or out of it (−1).
    pub fn sign(self) -> i64 {
        match self {
            MoveKind::PayIn => 1,
            _ => -1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawerMove {
    pub at: i64,
    pub kind: MoveKind,
    pub amount_cents: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZReport {
    pub expected: PerMethod,
    pub counted: PerMethod,
    pub variance: PerMethod,
}

/// One cash drawer session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drawer {
    pub id: Id,
    /// The staff member whose drawer it is (`None`: the admin token).
    pub owner: Option<Id>,
    pub opened_at: i64,
    pub float_cents: i64,
    pub moves: Vec<DrawerMove>,
    /// Payments taken into this drawer, per method.
    pub taken: PerMethod,
    /// Change handed back from this drawer (cash).
    pub change_cents: i64,
    /// Refunds paid out of this drawer, per method.
    pub refunded: PerMethod,
    pub closed_at: Option<i64>,
    pub z_report: Option<ZReport>,
    pub forced: bool,
}

impl Drawer {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// What should be in the drawer now, per method.
    pub fn expected(&self) -> PerMethod {
        let mut e = self.taken.minus(&self.refunded);
        e.cash = e
            .cash
            .saturating_add(self.float_cents)
            .saturating_sub(self.change_cents);
        for m in &self.moves {
            e.cash = e
                .cash
                .saturating_add(m.kind.sign().saturating_mul(m.amount_cents));
        }
        e
    }
}

/// Largest-remainder split of `total` over `weights` (all ≥ 0): the parts
/// add up to `total` exactly; with all weights zero, equal parts.
pub fn split_proportionally(
    total: i64,
    weights: &[(Id, i64)],
) -> Result<Vec<TipShare>, DomainError> {
    if weights.is_empty() {
        return Ok(Vec::new());
    }
    let sum: i128 = weights.iter().map(|(_, w)| i128::from((*w).max(0))).sum();
    let n = weights.len() as i128;
    let mut parts: Vec<(Id, i128, i128)> = weights
        .iter()
        .map(|(id, w)| {
            let (num, den) = if sum == 0 {
                (1, n)
            } else {
                (i128::from((*w).max(0)), sum)
            };
            let exact = i128::from(total) * num;
            (*id, exact / den, exact % den)
        })
        .collect();
    let given: i128 = parts.iter().map(|(_, p, _)| *p).sum();
    let mut left = i128::from(total) - given;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order {
        if left <= 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|(id, p, _)| {
            i64::try_from(p)
                .map(|amount_cents| TipShare {
                    therapist_id: id,
                    amount_cents,
                })
                .map_err(|_| invalid("`tip_cents` is too large"))
        })
        .collect()
}

/// Sums amounts with overflow as a refusal naming `field`.
pub fn checked_sum(
    field: &str,
    amounts: impl IntoIterator<Item = i64>,
) -> Result<i64, DomainError> {
    amounts.into_iter().try_fold(0i64, |t, a| {
        t.checked_add(a).ok_or_else(|| {
            invalid(format!(
                "`{field}`: the amounts add up to more than the hub can count"
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_split_adds_up_exactly() {
        let parts = split_proportionally(100, &[(1, 1), (2, 1), (3, 1)]).expect("split");
        assert_eq!(parts.iter().map(|p| p.amount_cents).sum::<i64>(), 100);
        assert_eq!(parts[0].amount_cents, 34);
        let parts = split_proportionally(1001, &[(1, 30_000), (2, 70_000)]).expect("split");
        assert_eq!(
            parts.iter().map(|p| p.amount_cents).collect::<Vec<_>>(),
            vec![300, 701]
        );
        let parts = split_proportionally(5, &[(1, 0), (2, 0)]).expect("split");
        assert_eq!(parts.iter().map(|p| p.amount_cents).sum::<i64>(), 5);
        assert!(split_proportionally(7, &[]).expect("split").is_empty());
    }

    #[test]
    fn expected_cash_follows_every_movement() {
        let mut d = Drawer {
            id: 1,
            owner: None,
            opened_at: 0,
            float_cents: 10_000,
            moves: vec![],
            taken: PerMethod::default(),
            change_cents: 0,
            refunded: PerMethod::default(),
            closed_at: None,
            z_report: None,
            forced: false,
        };
        d.taken.add(Method::Cash, 5_000);
        d.taken.add(Method::Card, 7_000);
        d.change_cents = 500;
        d.refunded.add(Method::Cash, 1_000);
        d.moves.push(DrawerMove {
            at: 0,
            kind: MoveKind::PayIn,
            amount_cents: 200,
            note: String::new(),
        });
        d.moves.push(DrawerMove {
            at: 0,
            kind: MoveKind::TipPayout,
            amount_cents: 300,
            note: String::new(),
        });
        d.moves.push(DrawerMove {
            at: 0,
            kind: MoveKind::SafeDrop,
            amount_cents: 4_000,
            note: String::new(),
        });
        let e = d.expected();
        assert_eq!(e.cash, 10_000 + 5_000 - 500 - 1_000 + 200 - 300 - 4_000);
        assert_eq!(e.card, 7_000);
    }

    #[test]
    fn sums_refuse_overflow() {
        assert!(checked_sum("payments", [i64::MAX, 1]).is_err());
        assert_eq!(checked_sum("payments", [1, 2, 3]).expect("sum"), 6);
    }
}
