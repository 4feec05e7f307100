//! HTTP beside the hub: `/socket.io/` (budget, origin and transport checks
//! before any session state exists; the WebSocket upgrade here, long-polling
//! in `polling`), `/healthz`,
//! `/metrics`, `/api/login`, `/api/logout`, and the pages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::auth;

mod login;
mod polling;
use crate::domain::{Actor, Command};
use crate::hub::connection::Connection;
use crate::hub::Hub;

/// The WebSocket buffers: small, since a connection is mostly idle. A read
/// buffer of 4 KiB instead of tungstenite's 128 KiB is most of the saving.
pub fn websocket_config(max_payload: usize) -> WebSocketConfig {
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 4096;
    // Frames fed together (one ring batch) are written together, on flush.
    cfg.write_buffer_size = 8192;
    // No cap on the write buffer: a single frame (a big snapshot) must fit
    // whole; what a slow client may queue is bounded by the ring instead.
    cfg.max_message_size = Some(max_payload);
    cfg.max_frame_size = Some(max_payload);
    cfg
}

pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/socket.io/", any(socket_io))
        .route("/socket.io", any(socket_io))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/login", post(login::login))
        .route("/api/logout", post(logout))
        .route("/api/reports/day.csv", get(day_csv))
        .route("/receipt/{id}", get(crate::web::receipt::page))
        .route("/api/printer", get(printer_status))
        .route("/api/printer/retry", post(printer_retry))
        .merge(crate::web::routes())
        .with_state(hub)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// The address a client reached the hub at (the accepted socket's local
/// address), put on each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Marks a request that came over plain HTTP to a hub that serves HTTPS:
/// staff credentials are not accepted on it (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct PlainWhileTls;

/// This machine's host name (Linux: /proc), if known.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

fn host_port(host: &str, port: u16) -> Vec<String> {
    let mut out = vec![format!("{host}:{port}")];
    if port == 80 || port == 443 {
        out.push(host.to_string());
    }
    out
}

/// The origins of the hub's own names: `SPA_PUBLIC_URL`'s origin, and
/// `http(s)://NAME:PORT` for localhost, 127.0.0.1, [::1], the host name,
/// the host name `.local` (mDNS) and the listen address when it is not a
/// wildcard. The address a client actually connected to is allowed too
/// (see [`origin_allowed`]); the `Host` header is never trusted.
pub fn own_origins(config: &crate::config::Config, port: u16) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "[::1]".to_string(),
    ];
    if let Some(h) = hostname() {
        hosts.push(format!("{h}.local"));
        hosts.push(h);
    }
    let ip = config.listen.ip();
    if !ip.is_unspecified() {
        hosts.push(
            SocketAddr::new(ip, port)
                .to_string()
                .rsplit_once(':')
                .map(|x| x.0.to_string())
                .unwrap_or_default(),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for host in hosts {
        for hp in host_port(&host, port) {
            for scheme in ["http", "https"] {
                out.push(format!("{scheme}://{hp}"));
            }
        }
    }
    if let Some(public) = &config.public_url {
        out.push(public.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a browser's `Origin` may open a WebSocket: one of the hub's own
/// origins, the address the client connected to, or one listed in
/// `SPA_ALLOWED_ORIGINS`. Non-browser clients send none.
pub fn origin_allowed(
    origin: Option<&str>,
    local: Option<SocketAddr>,
    own: &[String],
    allowed: &[String],
) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&origin)) || own.contains(&origin) {
        return true;
    }
    let Some(local) = local else { return false };
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    host_port(
        &local
            .to_string()
            .rsplit_once(':')
            .map(|x| x.0.to_string())
            .unwrap_or_default(),
        local.port(),
    )
    .iter()
    .any(|hp| origin == format!("http://{hp}") || origin == format!("https://{hp}"))
}

/// Whether the client may read `/healthz` and `/metrics`
/// (`SPA_METRICS_ALLOW`).
fn monitoring_allowed(hub: &Hub, peer: SocketAddr) -> bool {
    crate::config::access::allowed(&hub.config.metrics_allow, peer.ip())
}

fn monitoring_forbidden() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        error_body(
            "forbidden",
            "this address may not read /healthz or /metrics (see SPA_METRICS_ALLOW)",
        ),
    )
}

/// A `503` with `Retry-After`, before any session state exists.
/// A new connection's place, for either transport, before anything of it
/// exists: per address, connections waiting for their CONNECT are capped,
/// then the budget. Refused: 503 with `Retry-After`.
fn admit_connection(
    hub: &Arc<Hub>,
    peer: SocketAddr,
) -> Result<
    (
        crate::gate::WsPendingTicket,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Box<Response>,
> {
    let Some(pending) = hub
        .gate
        .admit_ws_pending(crate::gate::address_key(peer.ip()))
    else {
        hub.metrics.rejected_upgrades.fetch_add(1, Relaxed);
        return Err(Box::new(unavailable(
            "too many connections from this address are waiting to CONNECT; retry shortly",
        )));
    };
    let Ok(permit) = hub.budget.clone().try_acquire_owned() else {
        hub.metrics.rejected_upgrades.fetch_add(1, Relaxed);
        return Err(Box::new(unavailable(
            "the hub is at its connection budget; retry shortly",
        )));
    };
    Ok((pending, permit))
}

fn unavailable(message: &str) -> Response {
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        error_body("unavailable", message),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

async fn socket_io(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    mut request: Request,
) -> Response {
    if query.get("EIO").map(String::as_str) != Some("4") {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"code": 5, "message": "Unsupported protocol version: spa-hub speaks Engine.IO 4 (EIO=4)"}),
        );
    }
    let polling = match query.get("transport").map(String::as_str) {
        Some("polling") => true,
        Some("websocket") => false,
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"code": 0, "message": "Transport unknown: use transport=polling or transport=websocket"}),
            )
        }
    };
    let headers = request.headers().clone();
    let header_str = |h: &HeaderMap, name: header::HeaderName| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = header_str(&headers, header::ORIGIN);
    let local = request.extensions().get::<LocalAddr>().map(|l| l.0);
    if !origin_allowed(
        origin.as_deref(),
        local,
        &hub.own_origins,
        &hub.config.allowed_origins,
    ) {
        return json_response(
            StatusCode::FORBIDDEN,
            error_body(
                "forbidden",
                "this origin may not connect to the hub (see SPA_ALLOWED_ORIGINS)",
            ),
        );
    }
    let sid = query.get("sid").cloned();
    let plain = request.extensions().get::<PlainWhileTls>().is_some();
    if polling {
        let mut response = polling::polling(hub, peer, sid, request, plain).await;
        // An allowed page of another origin reads the answers too.
        if let Some(Ok(origin)) = origin.map(HeaderValue::try_from) {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        return response;
    }
    let upgrade = header_str(&headers, header::UPGRADE).unwrap_or_default();
    let key = header_str(&headers, header::SEC_WEBSOCKET_KEY);
    let version = header_str(&headers, header::SEC_WEBSOCKET_VERSION);
    let (Some(key), true, Some("13")) = (
        key,
        upgrade.eq_ignore_ascii_case("websocket"),
        version.as_deref(),
    ) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            error_body(
                "invalid",
                "expected a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Version: 13)",
            ),
        );
    };
    let config = websocket_config(hub.config.max_payload_bytes);
    let on_upgrade = hyper::upgrade::on(&mut request);
    if let Some(sid) = sid {
        // The upgrade of a polling session: it already holds its place in
        // the budget and at the gate.
        let Some(session) = hub.polls.get(&sid).filter(|s| s.claim_upgrade()) else {
            return polling::refused(crate::hub::polling::Refusal::UnknownSid);
        };
        let wait = std::time::Duration::from_millis(hub.config.ping_timeout_ms);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        WsRole::Server,
                        Some(config),
                    )
                    .await;
                    crate::hub::polling::upgrade(session, ws, wait).await;
                }
                Err(_) => session.abort_upgrade(),
            }
        });
        return switching_protocols(&key);
    }
    let (pending, permit) = match admit_connection(&hub, peer) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                WsRole::Server,
                Some(config),
            )
            .await;
            Connection::new(hub, ws, peer, pending)
                .over_plain_http(plain)
                .run(permit)
                .await;
        }
    });
    switching_protocols(&key)
}

fn switching_protocols(key: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

async fn healthz(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !monitoring_allowed(&hub, peer) {
        return monitoring_forbidden();
    }
    let health = hub.writer.health();
    let failing = health.storage_failing.load(Relaxed);
    let lights = match &hub.lights {
        Some(l) => json!({"backend": l.backend_name(), "channels": l.levels()}),
        None => json!({"backend": "off", "channels": []}),
    };
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": hub.started.elapsed().as_secs(),
        "connections": {
            "total": hub.metrics.connections_total(),
            "by_role": hub.metrics.connections_by_role(),
            "budget": hub.config.max_connections,
        },
        "seq": health.seq.load(Relaxed),
        "storage": if failing { "failing" } else { "ok" },
        "lights": lights,
        "clock": hub.clock.status(),
        "replication": hub.replication.as_ref().map(|r| r.json(hub.clock.now().ms)),
        "printer": hub.printer.as_ref().map(|p| p.status.json(&p.addr)),
    });
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(status, body)
}

async fn metrics(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !monitoring_allowed(&hub, peer) {
        return monitoring_forbidden();
    }
    let health = hub.writer.health();
    let gate = hub.gate.counts();
    let mut text = hub.metrics.render(
        &[
            (
                "spa_hub_seq",
                "Last committed event seq",
                health.seq.load(Relaxed) as f64,
            ),
            (
                "spa_hub_storage_failing",
                "1 while storage is failing",
                if health.storage_failing.load(Relaxed) {
                    1.0
                } else {
                    0.0
                },
            ),
            (
                "spa_hub_clock_synchronized",
                "1 while the system clock is synchronised (NTP)",
                if hub.clock.synchronized() { 1.0 } else { 0.0 },
            ),
            (
                "spa_hub_clock_set_offset_seconds",
                "How far an admin's clock.set moved the floor's time (0: not set)",
                hub.clock.status().set_offset_ms as f64 / 1000.0,
            ),
            (
                "spa_hub_uptime_seconds",
                "Seconds since start",
                hub.started.elapsed().as_secs_f64(),
            ),
            (
                "spa_hub_http_connections",
                "HTTP connections not yet upgraded",
                gate.0 as f64,
            ),
            (
                "spa_hub_connections_awaiting_connect",
                "WebSockets waiting for their CONNECT",
                gate.1 as f64,
            ),
            (
                "spa_hub_idle_evictions_total",
                "Idle HTTP connections closed to make room for a new one",
                hub.gate.evicted.load(Relaxed) as f64,
            ),
            (
                "spa_hub_gate_refusals_total",
                "Connections refused by a per-address, per-credential or customer limit",
                hub.gate.refused.load(Relaxed) as f64,
            ),
        ],
        &health.flush_latency,
    );
    if let Some(r) = &hub.replication {
        r.render(&mut text, hub.clock.now().ms);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn logout(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body(
                "unauthorized",
                "send the session token as Authorization: Bearer …",
            ),
        );
    };
    let hash = auth::hash_token(token);
    let session = hub
        .writer
        .read({
            let hash = hash.clone();
            move |state, _| state.sessions.get(&hash).map(|s| (s.staff_id, s.role))
        })
        .await
        .ok()
        .flatten();
    let Some((staff_id, role)) = session else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "no such session"),
        );
    };
    match hub
        .writer
        .execute(
            Actor::Staff { id: staff_id, role },
            Command::SessionClose { token_hash: hash },
        )
        .await
    {
        Ok(_) => json_response(StatusCode::OK, json!({"ok": true})),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            error_body(e.code.as_str(), &e.message),
        ),
    }
}

/// The office's token from `Authorization: Bearer`, or the refusal.
async fn office(hub: &Hub, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = bearer(headers) else {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            error_body(
                "unauthorized",
                "send an admin or cashier token as Authorization: Bearer …",
            ),
        ));
    };
    match hub.identify(token).await {
        Some(i) if crate::domain::permissions::allowed(i.role, "sale.checkout") => Ok(()),
        Some(_) => Err(json_response(
            StatusCode::FORBIDDEN,
            error_body("forbidden", "for an admin or a cashier"),
        )),
        None => Err(json_response(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "unknown or expired token"),
        )),
    }
}

/// `GET /api/printer`: the receipt printer's state for the cashier's screen.
async fn printer_status(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if let Err(r) = office(&hub, &headers).await {
        return r;
    }
    json_response(
        StatusCode::OK,
        json!({"printer": hub.printer.as_ref().map(|p| p.status.json(&p.addr))}),
    )
}

/// `POST /api/printer/retry`: sends what could not be printed again.
async fn printer_retry(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if let Err(r) = office(&hub, &headers).await {
        return r;
    }
    let Some(p) = &hub.printer else {
        return json_response(
            StatusCode::CONFLICT,
            error_body(
                "conflict",
                "no receipt printer is set (SPA_RECEIPT_PRINTER)",
            ),
        );
    };
    json_response(StatusCode::OK, json!({"queued": p.retry()}))
}

/// `GET /api/reports/day.csv?date=YYYY-MM-DD` for an admin or a cashier.
async fn day_csv(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body(
                "unauthorized",
                "send an admin or cashier token as Authorization: Bearer …",
            ),
        );
    };
    let Some(identity) = hub.identify(token).await else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "unknown or expired token"),
        );
    };
    if !crate::domain::permissions::allowed(identity.role, "report.day") {
        return json_response(
            StatusCode::FORBIDDEN,
            error_body(
                "forbidden",
                "only an admin or a cashier may read the day report",
            ),
        );
    }
    let report = match hub.day_report(query.get("date").map(String::as_str)).await {
        Ok(r) => r,
        Err(e) => {
            let status = match e.code {
                crate::domain::ErrorCode::Invalid => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return json_response(status, error_body(e.code.as_str(), &e.message));
        }
    };
    match crate::domain::report::to_csv(&report) {
        Ok(csv) => {
            let name = format!("attachment; filename=\"spa-day-{}.csv\"", report.day);
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
                csv,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&name) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_body("internal", &e),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec!["http://tablet.local:8080".to_string()];
        let own = vec!["http://spa-hub.local:5000".to_string()];
        let local: Option<SocketAddr> = "192.168.1.20:5000".parse().ok();
        let ok = |o: &str| origin_allowed(Some(o), local, &own, &allowed);
        assert!(origin_allowed(None, local, &own, &allowed));
        assert!(ok("http://spa-hub.local:5000"));
        assert!(ok("HTTP://SPA-HUB.local:5000/"));
        assert!(ok("http://192.168.1.20:5000"), "the address connected to");
        assert!(ok("http://tablet.local:8080"));
        for bad in [
            "http://evil.example",
            "http://192.168.1.20:5001",
            "http://192.168.1.21:5000",
            "null",
            "http://spa-hub.local:5000.evil.example",
            "http://user@spa-hub.local:5000",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        // The Host header plays no part: a foreign name is refused whatever
        // the client claims to have asked for.
        assert!(!origin_allowed(
            Some("http://evil.example:5000"),
            None,
            &own,
            &allowed
        ));
    }

    #[test]
    fn own_origins_hold_the_public_url_and_localhost() {
        let src = crate::config::Source::from_pairs([
            ("SPA_DATA_DIR", "/tmp"),
            ("SPA_PUBLIC_URL", "https://Spa.Example.org/admin"),
        ]);
        let c = crate::config::Config::from_source(&src).expect("config");
        let own = own_origins(&c, 5000);
        assert!(
            own.contains(&"https://spa.example.org".to_string()),
            "{own:?}"
        );
        assert!(own.contains(&"http://localhost:5000".to_string()));
        assert!(own.contains(&"http://127.0.0.1:5000".to_string()));
        assert!(!own.iter().any(|o| o.contains("0.0.0.0")));
    }
}
