//! What every HTTP response gets, whichever route made it, and what plain
//! HTTP may still reach when TLS is on. Applied by the accept loop around
//! the router (so the routes themselves stay unaware of it).
//!
//! - Security headers on every response: `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer` (ticket and booking links carry
//!   tokens), `X-Frame-Options: DENY`, and a Content-Security-Policy: the
//!   pages set their own (the hub's scripts only, `frame-ancestors 'none'`,
//!   see `crate::web`); every other response gets `default-src 'none';
//!   frame-ancestors 'none'`.
//! - With `SPA_TLS_CERT`, plain HTTP keeps only what a customer's phone or
//!   the lobby screen needs (which may not trust the local CA): the ticket
//!   `/t/…` and booking `/b/…` pages, `/monitor`, `/assets/…`,
//!   `/socket.io/`, `/healthz` and `/metrics`. The login page and the staff
//!   pages redirect to `https://` (308); `/api/…` is refused (403) rather
//!   than redirected, since a client following the redirect would send its
//!   PIN or token a second time.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// Where phones and monitors reach the hub, for QR codes and pairing
/// links: `SPA_PUBLIC_URL`, else the first LAN address, else the host
/// name's `.local` name — never the `localhost` a desk PC happens to use.
/// Plain `http://` even with TLS on: customers' phones do not trust the
/// local CA, and the pages they open are served on plain HTTP too.
pub fn public_base(config: &crate::config::Config) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let port = config.listen.port();
    let ip = config.listen.ip();
    let host = if !ip.is_unspecified() && !ip.is_loopback() {
        Some(ip.to_string())
    } else if ip.is_loopback() {
        None
    } else {
        crate::tls::lan_addresses()
            .into_iter()
            .find(|a| a.is_ipv4())
            .map(|a| a.to_string())
            .or_else(|| crate::tls::hostname().map(|h| format!("{h}.local")))
    };
    let host = match host {
        Some(h) if h.contains(':') => format!("[{h}]"),
        Some(h) => h,
        None => "127.0.0.1".into(),
    };
    if port == 80 {
        format!("http://{host}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// Every address the hub can be opened at (for the start-up log).
pub fn reachable_at(config: &crate::config::Config, port: u16) -> Vec<String> {
    let ip = config.listen.ip();
    let mut hosts: Vec<String> = if ip.is_unspecified() {
        let mut h: Vec<String> = crate::tls::lan_addresses()
            .into_iter()
            .filter(|a| ip.is_ipv6() || a.is_ipv4())
            .map(|a| match a {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            })
            .collect();
        if let Some(name) = crate::tls::hostname() {
            h.push(format!("{name}.local"));
        }
        h.push("127.0.0.1".into());
        h
    } else {
        vec![std::net::SocketAddr::new(ip, port)
            .to_string()
            .rsplit_once(':')
            .map(|x| x.0.to_string())
            .unwrap_or_default()]
    };
    hosts.dedup();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    hosts
        .into_iter()
        .map(|h| format!("{scheme}://{h}:{port}/"))
        .collect()
}

/// The CSP of every response that is not a page.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Runs one request through `app` and hardens its response: what every
/// accept loop (the hub's, head office's) does per request.
pub async fn respond(
    app: axum::Router,
    request: axum::http::Request<Body>,
) -> Result<Response<Body>, std::convert::Infallible> {
    use tower::ServiceExt;
    let mut response = app.oneshot(request).await?;
    harden(response.headers_mut());
    Ok(response)
}

/// hyper's HTTP/1.1 settings for one accepted connection: a request's
/// headers are due within `header_timeout` (an idle or trickling
/// connection is closed).
pub fn http1(header_timeout: std::time::Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
}

/// Sets the security headers a response lacks.
pub fn harden(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CONTENT_SECURITY_POLICY, API_CSP);
}

/// Whether plain HTTP may reach `path` while TLS is on.
pub fn plain_allowed(path: &str) -> bool {
    path.starts_with("/t/")
        || path.starts_with("/b/")
        || path.starts_with("/assets/")
        || path.starts_with("/socket.io")
        || matches!(path, "/monitor" | "/healthz" | "/metrics")
}

/// A host name or address with an optional port, as a Host header may
/// carry: letters, digits, `.-:[]` only (no user info, no path).
fn clean_host(host: &str) -> Option<&str> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    ok.then_some(host)
}

/// The answer to a plain-HTTP request that must use HTTPS (TLS on), or
/// `None` when it may be served. `fallback_host` (the address the client
/// reached) is used when the Host header is missing or odd.
pub fn refuse_plain(
    path_and_query: &str,
    path: &str,
    headers: &HeaderMap,
    fallback_host: &str,
) -> Option<Response<Body>> {
    if plain_allowed(path) {
        return None;
    }
    let mut response = if path.starts_with("/api/") {
        let body = serde_json::json!({"error": {
            "code": "forbidden",
            "message": "this hub uses HTTPS for staff: send this request to https:// on the same port",
        }});
        let mut r = Response::new(Body::from(body.to_string()));
        *r.status_mut() = StatusCode::FORBIDDEN;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    } else {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(clean_host)
            .unwrap_or(fallback_host);
        let target = format!("https://{host}{path_and_query}");
        let mut r = Response::new(Body::from(format!("use {target}\n")));
        *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    };
    harden(response.headers_mut());
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_pages_redirect_and_customer_pages_stay() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("spa.local:5000"));
        let r = refuse_plain("/admin?x=1", "/admin", &h, "10.0.0.2:5000").expect("redirect");
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            r.headers().get(header::LOCATION).expect("location"),
            "https://spa.local:5000/admin?x=1"
        );
        for path in [
            "/t/abc",
            "/b/abc",
            "/monitor",
            "/assets/app.css",
            "/socket.io/",
        ] {
            assert!(refuse_plain(path, path, &h, "x").is_none(), "{path}");
        }
        let r = refuse_plain("/api/login", "/api/login", &h, "x").expect("refused");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let mut odd = HeaderMap::new();
        odd.insert(header::HOST, HeaderValue::from_static("evil.example/@x"));
        let r = refuse_plain("/", "/", &odd, "10.0.0.2:5000").expect("redirect");
        assert_eq!(
            r.headers().get(header::LOCATION).expect("location"),
            "https://10.0.0.2:5000/"
        );
    }

    fn config(pairs: &[(&str, &str)]) -> crate::config::Config {
        let mut all = vec![("SPA_DATA_DIR", "/tmp")];
        all.extend_from_slice(pairs);
        crate::config::Config::from_source(&crate::config::Source::from_pairs(all)).expect("config")
    }

    #[test]
    fn links_for_phones_never_use_localhost() {
        let c = config(&[("SPA_LISTEN", "0.0.0.0:5000")]);
        let base = public_base(&c);
        assert!(
            base.starts_with("http://") && base.ends_with(":5000"),
            "{base}"
        );
        assert!(
            !base.contains("localhost") && !base.contains("0.0.0.0"),
            "{base}"
        );
        let c = config(&[
            ("SPA_LISTEN", "0.0.0.0:5000"),
            ("SPA_PUBLIC_URL", "https://desk.spa.example/x"),
        ]);
        assert_eq!(public_base(&c), "https://desk.spa.example");
        let c = config(&[("SPA_LISTEN", "192.168.7.9:8080")]);
        assert_eq!(public_base(&c), "http://192.168.7.9:8080");
        // The start-up log: every address, never the wildcard.
        let c = config(&[("SPA_LISTEN", "0.0.0.0:5000")]);
        let at = reachable_at(&c, 5000);
        assert!(at.iter().any(|a| a == "http://127.0.0.1:5000/"), "{at:?}");
        assert!(!at.iter().any(|a| a.contains("0.0.0.0")), "{at:?}");
    }

    #[test]
    fn harden_keeps_a_page_csp_and_adds_the_rest() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        harden(&mut h);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let mut h = HeaderMap::new();
        harden(&mut h);
        assert!(h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or("")
            .contains("frame-ancestors 'none'"));
    }
}
