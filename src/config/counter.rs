//! The counter's keys (#17): `SPA_CURRENCY`, `SPA_PRICES_INCLUDE_TAX` and
//! `SPA_RECEIPT_PRINTER`. Same rules as the rest of the configuration: a
//! bad value is one [`ConfigError`] naming the key (exit 78).

use super::{boolean, err, ConfigError, Source};
use crate::domain::money::currency::Currency;

pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "SPA_CURRENCY",
        "USD",
        "ISO 4217 code; amounts are its minor units (JPY 0, USD 2, KWD 3 digits)",
    ),
    (
        "SPA_PRICES_INCLUDE_TAX",
        "true",
        "whether prices include tax (false: tax is added at the checkout)",
    ),
    (
        "SPA_RECEIPT_PRINTER",
        "",
        "host:port of an ESC/POS network receipt printer (usually port 9100)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSettings {
    pub currency: Currency,
    pub prices_include_tax: bool,
    /// `host:port`, resolved when printing (a printer may come up later).
    pub receipt_printer: Option<String>,
}

impl CounterSettings {
    pub fn from(src: &Source) -> Result<CounterSettings, ConfigError> {
        let currency = match src.get("SPA_CURRENCY") {
            None => Currency::default(),
            Some(raw) => Currency::from_code(raw.trim()).ok_or_else(|| {
                err(
                    "SPA_CURRENCY",
                    raw,
                    "an ISO 4217 currency code in capitals, such as USD, EUR, JPY or KWD",
                )
            })?,
        };
        let receipt_printer = match src.get("SPA_RECEIPT_PRINTER").map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(printer_addr(raw).ok_or_else(|| {
                err(
                    "SPA_RECEIPT_PRINTER",
                    raw,
                    "host:port of the printer, such as 192.168.1.50:9100 or printer.local:9100",
                )
            })?),
        };
        Ok(CounterSettings {
            currency,
            prices_include_tax: boolean(src, "SPA_PRICES_INCLUDE_TAX", true)?,
            receipt_printer,
        })
    }

    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("SPA_CURRENCY".into(), self.currency.code.clone()),
            (
                "SPA_PRICES_INCLUDE_TAX".into(),
                self.prices_include_tax.to_string(),
            ),
            (
                "SPA_RECEIPT_PRINTER".into(),
                self.receipt_printer.clone().unwrap_or_default(),
            ),
        ]
    }
}

/// `host:port` with a port from 1 to 65535 and a host without spaces.
fn printer_addr(raw: &str) -> Option<String> {
    let (host, port) = raw.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    Some(format!(
        "{}:{port}",
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_addresses() {
        assert_eq!(
            printer_addr("10.0.0.5:9100").as_deref(),
            Some("10.0.0.5:9100")
        );
        assert_eq!(
            printer_addr("printer.local:9100").as_deref(),
            Some("printer.local:9100")
        );
        assert_eq!(printer_addr("[::1]:9100").as_deref(), Some("[::1]:9100"));
        for bad in [
            "10.0.0.5",
            ":9100",
            "host:0",
            "host:99999",
            "a b:9100",
            "http://x:9100",
        ] {
            assert_eq!(printer_addr(bad), None, "{bad}");
        }
    }
}
