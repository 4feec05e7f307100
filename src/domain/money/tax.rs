//! Tax per line: a rate in basis points (0 to 10 000, 7.25% is 725), prices
//! that include tax or not (one setting per spa), the tax of each line
//! rounded half away from zero to the minor unit, and the sums per rate
//! that receipts and reports show. Every line has `gross = net + tax`
//! exactly, so the sums per rate add up exactly too.

use serde::{Deserialize, Serialize};

use super::super::{invalid, DomainError};

/// 100% in basis points: the highest rate accepted.
pub const MAX_RATE_BP: u32 = 10_000;

/// Checks a rate given for `field`.
pub fn rate(field: &str, bp: i64) -> Result<u32, DomainError> {
    u32::try_from(bp)
        .ok()
        .filter(|r| *r <= MAX_RATE_BP)
        .ok_or_else(|| {
            invalid(format!(
                "`{field}` must be 0 to {MAX_RATE_BP} basis points (0% to 100%; 7.25% is 725)"
            ))
        })
}

/// `n / d` rounded half away from zero (`d > 0`).
pub fn div_round(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d {
        q + n.signum()
    } else {
        q
    }
}

/// One line's amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxed {
    pub net_cents: i64,
    pub tax_cents: i64,
    pub gross_cents: i64,
}

/// The tax of a line priced at `amount` (after its discount): with prices
/// including tax the amount is the gross, otherwise the net.
pub fn line(amount: i64, rate_bp: u32, prices_include_tax: bool) -> Taxed {
    let a = i128::from(amount);
    let r = i128::from(rate_bp);
    let tax = if prices_include_tax {
        div_round(a * r, 10_000 + r)
    } else {
        div_round(a * r, 10_000)
    };
    // |tax| ≤ |amount| (inclusive) or ≤ |amount| (rate ≤ 100%): fits.
    let tax = i64::try_from(tax).unwrap_or(0);
    if prices_include_tax {
        Taxed {
            net_cents: amount.saturating_sub(tax),
            tax_cents: tax,
            gross_cents: amount,
        }
    } else {
        Taxed {
            net_cents: amount,
            tax_cents: tax,
            gross_cents: amount.saturating_add(tax),
        }
    }
}

/// Net, tax and gross of all lines at one rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRow {
    pub rate_bp: u32,
    pub net_cents: i64,
    pub tax_cents: i64,
    pub gross_cents: i64,
}

/// Adds `t` at `rate_bp` into `rows` (kept sorted by rate), with `sign`
/// +1 for a sale and −1 for a refund.
pub fn add_row(rows: &mut Vec<RateRow>, rate_bp: u32, t: Taxed, sign: i64) {
    let i = match rows.binary_search_by_key(&rate_bp, |r| r.rate_bp) {
        Ok(i) => i,
        Err(i) => {
            rows.insert(
                i,
                RateRow {
                    rate_bp,
                    ..RateRow::default()
                },
            );
            i
        }
    };
    let r = &mut rows[i];
    r.net_cents = r.net_cents.saturating_add(sign.saturating_mul(t.net_cents));
    r.tax_cents = r.tax_cents.saturating_add(sign.saturating_mul(t.tax_cents));
    r.gross_cents = r
        .gross_cents
        .saturating_add(sign.saturating_mul(t.gross_cents));
}

/// A rate as people write it: `7.25%`, `19%`.
pub fn percent_words(bp: u32) -> String {
    if bp % 100 == 0 {
        format!("{}%", bp / 100)
    } else {
        let s = format!("{}.{:02}", bp / 100, bp % 100);
        format!("{}%", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(15, 10), 2);
        assert_eq!(div_round(-15, 10), -2);
        assert_eq!(div_round(14, 10), 1);
    }

    #[test]
    fn lines_split_exactly() {
        // 7.25% on a net 10.00: 0.725 → 0.73.
        assert_eq!(
            line(1000, 725, false),
            Taxed {
                net_cents: 1000,
                tax_cents: 73,
                gross_cents: 1073
            }
        );
        // 19% included in 9.99: 9.99 × 19 / 119 = 1.595… → 1.60.
        assert_eq!(
            line(999, 1900, true),
            Taxed {
                net_cents: 839,
                tax_cents: 160,
                gross_cents: 999
            }
        );
        // 19% on a net 0.50: 0.095 → 0.10 (half away from zero).
        assert_eq!(line(50, 1900, false).tax_cents, 10);
        assert_eq!(line(1234, 0, true).tax_cents, 0);
        for amount in [0, 1, 7, 99, 1999, 123_457] {
            for rate in [0, 500, 725, 1900, 10_000] {
                for inc in [true, false] {
                    let t = line(amount, rate, inc);
                    assert_eq!(t.net_cents + t.tax_cents, t.gross_cents);
                }
            }
        }
    }

    #[test]
    fn rows_stay_sorted_and_signed() {
        let mut rows = Vec::new();
        add_row(&mut rows, 1900, line(999, 1900, true), 1);
        add_row(&mut rows, 725, line(1000, 725, false), 1);
        add_row(&mut rows, 1900, line(999, 1900, true), -1);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].rate_bp, 725);
        assert_eq!(rows[1].gross_cents, 0);
        assert_eq!(percent_words(725), "7.25%");
        assert_eq!(percent_words(1900), "19%");
        assert_eq!(percent_words(750), "7.5%");
        assert!(rate("tax_rate_bp", 10_001).is_err());
        assert!(rate("tax_rate_bp", -1).is_err());
    }
}
