//! The spa's one currency (`SPA_CURRENCY`, ISO 4217) and how many minor
//! units its major unit has (JPY 0, USD 2, KWD 3). Every amount in the hub
//! is an integer count of minor units; this is only for reading the code
//! at start-up and for showing amounts to people.

use serde::{Deserialize, Serialize};

/// ISO 4217 codes with a minor-unit exponent other than 2 (the ISO table's
/// 0- and 3-decimal currencies, and the 4-decimal accounting units).
const EXPONENT_NOT_2: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

/// The active ISO 4217 codes whose minor unit is 1/100.
const EXPONENT_2: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV \
BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB \
EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT \
LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR \
NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC \
SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD YER ZAR ZMW ZWL";

/// A currency: its code and the number of digits after the decimal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency {
    pub code: String,
    pub minor_units: u8,
}

impl Default for Currency {
    fn default() -> Self {
        Currency {
            code: "USD".into(),
            minor_units: 2,
        }
    }
}

impl Currency {
    /// The currency of an ISO 4217 code (upper case, as the standard
    /// writes it), or `None` for a code the table does not know.
    pub fn from_code(code: &str) -> Option<Currency> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let minor_units = match EXPONENT_NOT_2.iter().find(|(c, _)| *c == code) {
            Some((_, e)) => *e,
            None if EXPONENT_2.split_whitespace().any(|c| c == code) => 2,
            None => return None,
        };
        Some(Currency {
            code: code.to_string(),
            minor_units,
        })
    }

    /// An amount in minor units as a person reads it: `12.50 USD`,
    /// `1250 JPY`, `-0.125 KWD`.
    pub fn format(&self, minor: i64) -> String {
        format!("{} {}", self.number(minor), self.code)
    }

    /// The number alone (`12.50`), for a receipt's columns.
    pub fn number(&self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        if self.minor_units == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(u32::from(self.minor_units));
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = usize::from(self.minor_units)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_the_code() {
        assert_eq!(Currency::from_code("JPY").map(|c| c.minor_units), Some(0));
        assert_eq!(Currency::from_code("USD").map(|c| c.minor_units), Some(2));
        assert_eq!(Currency::from_code("EUR").map(|c| c.minor_units), Some(2));
        assert_eq!(Currency::from_code("KWD").map(|c| c.minor_units), Some(3));
        for bad in ["usd", "US", "XYZ", "", "EURO", "U$D"] {
            assert_eq!(Currency::from_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_read_as_people_write_them() {
        let usd = Currency::default();
        assert_eq!(usd.format(1250), "12.50 USD");
        assert_eq!(usd.format(5), "0.05 USD");
        assert_eq!(usd.format(-1999), "-19.99 USD");
        let jpy = Currency::from_code("JPY").expect("jpy");
        assert_eq!(jpy.format(1250), "1250 JPY");
        let kwd = Currency::from_code("KWD").expect("kwd");
        assert_eq!(kwd.format(-125), "-0.125 KWD");
        assert_eq!(kwd.number(i64::MIN).len(), 21);
    }
}
