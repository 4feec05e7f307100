//! The web pages served by the hub: the lobby monitor, the therapist's
//! tablet, the cashier's station, the admin page, the customer's ticket and
//! the login page. Plain HTML, CSS and JavaScript embedded in the binary at
//! build time (no build step, nothing fetched from the internet at run
//! time); the pages speak the hub's own Socket.IO protocol with the official
//! browser client vendored in `vendor/` (see `vendor/README.md`).
//!
//! Routes: `/`, `/monitor`, `/therapist`, `/cashier`, `/admin`,
//! `/t/{token}` (the customer's ticket; the token is read by the page's
//! script from the path), `/b/{token}` (the customer's booking, the same way) and `/assets/{name}`. Every response carries an
//! `ETag` and `Cache-Control: no-cache`, so a browser revalidates cheaply and
//! never keeps an asset of an older binary.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::hub::Hub;

pub mod receipt;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub mime: &'static str,
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

macro_rules! embed {
    ($name:literal, $path:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!($path),
        }
    };
}

/// Files under `/assets/`.
pub static ASSETS: &[Asset] = &[
    embed!("app.css", "assets/app.css", CSS),
    embed!("monitor.css", "assets/monitor.css", CSS),
    embed!("receipt.css", "assets/receipt.css", CSS),
    embed!("receipt-a4.css", "assets/receipt-a4.css", CSS),
    embed!("common.js", "assets/common.js", JS),
    embed!("index.js", "assets/index.js", JS),
    embed!("monitor.js", "assets/monitor.js", JS),
    embed!("therapist.js", "assets/therapist.js", JS),
    embed!("cashier.js", "assets/cashier.js", JS),
    embed!("book.js", "assets/book.js", JS),
    embed!("customers.js", "assets/customers.js", JS),
    embed!("counter.js", "assets/counter.js", JS),
    embed!("shifts.js", "assets/shifts.js", JS),
    embed!("admin.js", "assets/admin.js", JS),
    embed!("ticket.js", "assets/ticket.js", JS),
    embed!("booking.js", "assets/booking.js", JS),
    embed!("qr.js", "assets/qr.js", JS),
    embed!("socket.io.min.js", "vendor/socket.io.min.js", JS),
    embed!(
        "socket.io-client.LICENSE",
        "vendor/socket.io-client.LICENSE",
        TEXT
    ),
    embed!("qrcode.js", "vendor/qrcode.js", JS),
    embed!(
        "qrcode-generator.LICENSE",
        "vendor/qrcode-generator.LICENSE",
        TEXT
    ),
];

/// The pages, by route.
pub static PAGES: &[Asset] = &[
    embed!("/", "pages/index.html", HTML),
    embed!("/monitor", "pages/monitor.html", HTML),
    embed!("/therapist", "pages/therapist.html", HTML),
    embed!("/cashier", "pages/cashier.html", HTML),
    embed!("/admin", "pages/admin.html", HTML),
    embed!("/t/", "pages/ticket.html", HTML),
    embed!("/b/", "pages/booking.html", HTML),
];

/// Scripts only from the hub itself; WebSocket to the hub; QR codes and
/// icons may be data URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self' ws: wss:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { page("/", &h) }))
        .route(
            "/monitor",
            get(|h: HeaderMap| async move { page("/monitor", &h) }),
        )
        .route(
            "/therapist",
            get(|h: HeaderMap| async move { page("/therapist", &h) }),
        )
        .route(
            "/cashier",
            get(|h: HeaderMap| async move { page("/cashier", &h) }),
        )
        .route(
            "/admin",
            get(|h: HeaderMap| async move { page("/admin", &h) }),
        )
        .route("/t/{token}", get(ticket))
        .route("/b/{token}", get(booking))
        .route("/assets/{name}", get(asset))
}

/// A page or asset by route or name.
pub fn find(list: &'static [Asset], name: &str) -> Option<(usize, &'static Asset)> {
    list.iter().enumerate().find(|(_, a)| a.name == name)
}

/// FNV-1a 64 of the body: the ETag.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn etag(list: &'static [Asset], index: usize) -> &'static str {
    static PAGE_TAGS: OnceLock<Vec<String>> = OnceLock::new();
    static ASSET_TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let cell = if std::ptr::eq(list, PAGES) {
        &PAGE_TAGS
    } else {
        &ASSET_TAGS
    };
    let tags = cell.get_or_init(|| {
        list.iter()
            .map(|a| format!("\"{:016x}\"", fnv64(a.body)))
            .collect()
    });
    tags.get(index).map(String::as_str).unwrap_or("\"0\"")
}

fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

fn serve(list: &'static [Asset], name: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some((index, a)) = find(list, name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            "not found\n",
        )
            .into_response();
    };
    let tag = etag(list, index);
    let mut response = if not_modified(headers, tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = a.body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A customer's token is in the ticket's path: never send it anywhere.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if a.mime == HTML {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

fn page(route: &str, headers: &HeaderMap) -> Response {
    serve(PAGES, route, headers, "no-cache")
}

async fn ticket(Path(_token): Path<String>, headers: HeaderMap) -> Response {
    // The page reads its token from the path; the page itself is the same
    // for every customer and is not stored by caches along the way.
    serve(PAGES, "/t/", &headers, "no-store")
}

async fn booking(Path(_token): Path<String>, headers: HeaderMap) -> Response {
    // As the ticket: one page for every booking, its token read from the path.
    serve(PAGES, "/b/", &headers, "no-store")
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(ASSETS, &name, &headers, "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &Asset) -> &'static str {
        std::str::from_utf8(a.body).expect("utf-8")
    }

    /// `/assets/NAME` references in a page.
    fn referenced(html: &str) -> Vec<&str> {
        html.match_indices("/assets/")
            .map(|(i, _)| {
                let rest = &html[i + "/assets/".len()..];
                let end = rest
                    .find(|c: char| c == '"' || c == '\'' || c.is_whitespace() || c == '>')
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    #[test]
    fn every_asset_a_page_names_is_embedded() {
        for p in PAGES {
            let refs = referenced(text(p));
            assert!(!refs.is_empty(), "{} loads no assets", p.name);
            for r in refs {
                assert!(find(ASSETS, r).is_some(), "{} names missing {r}", p.name);
            }
        }
    }

    #[test]
    fn every_page_connects_with_websocket_only_through_common_js() {
        let common = text(find(ASSETS, "common.js").unwrap().1);
        assert!(common.contains("transports: [\"websocket\", \"polling\"]"));
        for p in PAGES.iter().filter(|p| p.name != "/") {
            let refs = referenced(text(p));
            assert!(refs.contains(&"socket.io.min.js"), "{}", p.name);
            assert!(refs.contains(&"common.js"), "{}", p.name);
        }
    }

    #[test]
    fn the_monitor_weighs_under_150_kb_with_the_client() {
        let (_, monitor) = find(PAGES, "/monitor").unwrap();
        let total: usize = monitor.body.len()
            + referenced(text(monitor))
                .iter()
                .map(|r| find(ASSETS, r).unwrap().1.body.len())
                .sum::<usize>();
        assert!(total < 150 * 1024, "monitor is {total} bytes");
    }

    #[test]
    fn the_vendored_client_is_socket_io_4_with_its_licence() {
        let client = text(find(ASSETS, "socket.io.min.js").unwrap().1);
        assert!(client.starts_with("/*!\n * Socket.IO v4."));
        assert!(text(find(ASSETS, "socket.io-client.LICENSE").unwrap().1).contains("MIT"));
        assert!(text(find(ASSETS, "qrcode-generator.LICENSE").unwrap().1).contains("MIT"));
    }

    #[test]
    fn pages_have_no_inline_scripts() {
        // The CSP allows scripts from the hub only.
        for p in PAGES {
            for (i, _) in text(p).match_indices("<script") {
                let tag = &text(p)[i..];
                let tag = &tag[..tag.find('>').unwrap()];
                assert!(tag.contains("src="), "{}: inline script", p.name);
            }
        }
    }

    #[test]
    fn etags_differ_per_file_and_match_if_none_match() {
        let a = etag(ASSETS, 0);
        let b = etag(ASSETS, 1);
        assert_ne!(a, b);
        assert_ne!(etag(PAGES, 0), etag(PAGES, 1));
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(a).unwrap());
        assert!(not_modified(&h, a));
        assert!(!not_modified(&h, b));
        let r = serve(ASSETS, "app.css", &h, "no-cache");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = serve(ASSETS, "nope.js", &HeaderMap::new(), "no-cache");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = serve(PAGES, "/monitor", &HeaderMap::new(), "no-cache");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
