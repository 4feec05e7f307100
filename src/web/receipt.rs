//! `GET /receipt/{id}` (#17): a printable receipt for a visit id, a sale id
//! or a refund's receipt id, for an admin or a cashier
//! (`Authorization: Bearer …`; the cashier's page fetches it with its token
//! and opens it for printing, so no token ever sits in a URL). One HTML
//! page without script (its CSP allows only the hub's stylesheets), laid
//! out for 80 mm receipt paper (`assets/receipt.css`, `?paper=80mm`, the
//! default) or A4 (`?paper=a4` adds `assets/receipt-a4.css`), well under
//! 30 KB with its CSS.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::domain::money::currency::Currency;
use crate::hub::Hub;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The receipt's JSON (`views::receipt_of`) as a page.
pub fn html(r: &Value, paper_a4: bool, tz: &jiff::tz::TimeZone) -> String {
    let cur = Currency {
        code: r["currency"].as_str().unwrap_or("USD").to_string(),
        minor_units: r["minor_units"].as_u64().unwrap_or(2) as u8,
    };
    let money = |v: &Value| esc(&cur.format(int(v)));
    let refund = r["kind"] == "refund";
    let when = jiff::Timestamp::from_millisecond(int(&r["at"]))
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default();
    let mut h = String::with_capacity(4096);
    // Stylesheets from the hub (its pages' CSP allows no inline style), by
    // absolute path: the cashier's page prints a copy with a <base>.
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Receipt {}</title>\
<link rel=\"stylesheet\" href=\"/assets/receipt.css\">{}</head><body><main>",
        esc(r["number"].as_str().unwrap_or("")),
        if paper_a4 {
            "<link rel=\"stylesheet\" href=\"/assets/receipt-a4.css\">"
        } else {
            ""
        }
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"c\">{} · {}</p>",
        if refund { "REFUND" } else { "RECEIPT" },
        esc(r["number"].as_str().unwrap_or("")),
        esc(&when)
    );
    if let Some(n) = r["visit_number"].as_str() {
        let _ = write!(h, "<p class=\"c\">Ticket {}</p>", esc(n));
    }
    if let Some(n) = r["refund_of_number"].as_str() {
        let _ = write!(h, "<p class=\"c\">Refund of {}</p>", esc(n));
    }
    if let Some(reason) = r["reason"].as_str() {
        let _ = write!(h, "<p>Reason: {}</p>", esc(reason));
    }
    h.push_str(
        "<hr><table><tr><th>Item</th><th class=\"n\">Qty</th><th class=\"n\">Amount</th></tr>",
    );
    for l in r["lines"].as_array().into_iter().flatten() {
        let rate = if l["taxable"] == true {
            format!(
                " <span class=\"small\">({})</span>",
                esc(&crate::domain::money::tax::percent_words(
                    int(&l["tax_rate_bp"]) as u32
                ))
            )
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><td>{}{rate}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(l["name"].as_str().unwrap_or("")),
            int(&l["qty"]),
            money(&l["gross_cents"])
        );
        if int(&l["discount_cents"]) > 0 {
            let _ = write!(
                h,
                "<tr class=\"small\"><td>  discount</td><td></td><td class=\"n\">-{}</td></tr>",
                money(&l["discount_cents"])
            );
        }
    }
    let _ = write!(
        h,
        "<tr class=\"sum\"><td>{}</td><td></td><td class=\"n\">{}</td></tr></table>",
        if refund { "Refunded" } else { "Total" },
        money(&r["total_cents"])
    );
    if let Some(d) = r["discount_reason"].as_str() {
        let _ = write!(h, "<p class=\"small\">Discount: {}</p>", esc(d));
    }
    h.push_str("<hr><table class=\"small\"><tr><th>Tax rate</th><th class=\"n\">Net</th><th class=\"n\">Tax</th><th class=\"n\">Gross</th></tr>");
    for t in r["taxes"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(t["rate"].as_str().unwrap_or("")),
            money(&t["net_cents"]),
            money(&t["tax_cents"]),
            money(&t["gross_cents"])
        );
    }
    let _ = write!(
        h,
        "</table><p class=\"small\">Prices {} tax.</p><hr><table>",
        if r["prices_include_tax"] == true {
            "include"
        } else {
            "exclude"
        }
    );
    for p in r["payments"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><td>{} {}</td><td class=\"n\">{}</td></tr>",
            if refund { "Back to" } else { "Paid" },
            esc(p["method"].as_str().unwrap_or("")),
            money(&p["amount_cents"])
        );
    }
    for c in r["giftcards_used"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr class=\"small\"><td>  gift card …{}</td><td class=\"n\">{}</td></tr>",
            esc(c["hint"].as_str().unwrap_or("")),
            money(&c["amount_cents"])
        );
    }
    if int(&r["change_cents"]) > 0 {
        let _ = write!(
            h,
            "<tr><td>Change</td><td class=\"n\">{}</td></tr>",
            money(&r["change_cents"])
        );
    }
    h.push_str("</table>");
    for x in r["refunds"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<p class=\"small\">Refunded {} on {}</p>",
            money(&x["total_cents"]),
            esc(x["number"].as_str().unwrap_or(""))
        );
    }
    h.push_str("<hr><p class=\"c small\">Thank you</p></main></body></html>");
    h
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

/// A receipt that left memory (older than the days kept): read from the
/// store's archive off the runtime's threads, with its refunds or its sale
/// and its visit's number, then rendered with what memory still holds
/// (gift card hints).
async fn archived(hub: &Hub, id: u64) -> Option<Value> {
    use crate::domain::money::receipt::ReceiptKind;
    use crate::domain::money::view::FromArchive;
    let archive = hub.log.archive();
    let read = tokio::task::spawn_blocking(move || {
        let receipt = match archive.receipt(id)? {
            Some(r) => Some(r),
            None => archive
                .receipts_of_visit(id)?
                .into_iter()
                .find(|r| r.kind == ReceiptKind::Sale),
        };
        let Some(r) = receipt else {
            return Ok(None);
        };
        let mut more = FromArchive::default();
        if r.kind == ReceiptKind::Sale {
            more.receipts = archive.refunds_of(r.id)?;
        }
        if let Some(sale) = r.refund_of {
            more.receipts.extend(archive.receipt(sale)?);
        }
        if let Some(v) = r.visit_id {
            more.visit_number = archive.visit(v)?.map(|v| v.number);
        }
        Ok::<_, crate::store::StoreError>(Some((r, more)))
    })
    .await;
    let (r, more) = match read {
        Ok(Ok(found)) => found?,
        Ok(Err(e)) => {
            log::error!("reading the archive for receipt {id}: {e}");
            return None;
        }
        Err(e) => {
            log::error!("reading the archive for receipt {id}: {e}");
            return None;
        }
    };
    hub.writer
        .read(move |state, _| crate::domain::money::view::receipt_with(state, &r, &more))
        .await
        .ok()
}

/// `GET /receipt/{id}?paper=80mm|a4`.
pub async fn page(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = crate::http::bearer(&headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an admin or cashier token as Authorization: Bearer …",
        );
    };
    let Some(identity) = hub.identify(token).await else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown or expired token",
        );
    };
    if !crate::domain::permissions::allowed(identity.role, "sale.checkout") {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin or a cashier may print receipts",
        );
    }
    let Ok(id) = id.parse::<u64>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the receipt's address is /receipt/<visit or sale id>",
        );
    };
    let a4 = match query.get("paper").map(String::as_str) {
        None | Some("80mm") => false,
        Some("a4") | Some("A4") => true,
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid",
                "`paper` must be 80mm or a4",
            )
        }
    };
    let found = hub
        .writer
        .read(move |state, _| {
            state
                .till
                .receipt_for(id)
                .map(|r| crate::domain::views::receipt_of(state, r))
        })
        .await
        .ok()
        .flatten();
    let found = match found {
        Some(r) => Some(r),
        None => archived(&hub, id).await,
    };
    let Some(receipt) = found else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "no receipt for that visit or sale",
        );
    };
    let body = html(&receipt, a4, &hub.config.time_zone());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_long_receipt_stays_small_and_escapes_names() {
        let lines: Vec<Value> = (0..50)
            .map(|i| json!({"name": format!("<b>Oil {i}</b> & co"), "qty": 2, "gross_cents": 2598, "taxable": true, "tax_rate_bp": 725, "discount_cents": 10}))
            .collect();
        let r = json!({"number": "R-000042", "kind": "sale", "at": 1_795_680_000_000i64, "currency": "KWD", "minor_units": 3,
            "lines": lines, "total_cents": 129_900, "taxes": [{"rate": "7.25%", "net_cents": 1, "tax_cents": 2, "gross_cents": 3}],
            "payments": [{"method": "cash", "amount_cents": 130_000}], "change_cents": 100, "prices_include_tax": true,
            "giftcards_used": [], "refunds": []});
        for a4 in [false, true] {
            let h = html(&r, a4, &jiff::tz::TimeZone::UTC);
            assert!(h.len() < 30 * 1024, "{} bytes", h.len());
            assert!(h.contains("&lt;b&gt;Oil 7&lt;/b&gt; &amp; co"));
            assert!(!h.contains("<b>Oil"));
            assert!(h.contains("129.900 KWD"));
            assert_eq!(h.contains("receipt-a4.css"), a4);
            assert!(!h.contains("<script"));
        }
    }
}
