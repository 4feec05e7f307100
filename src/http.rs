//! HTTP beside the hub: the `/socket.io/` upgrade (budget, origin and
//! transport checks before any WebSocket state exists), `/healthz`,
//! `/metrics`, `/api/login`, `/api/logout`, and the pages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::{Body, Bytes};
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
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/reports/day.csv", get(day_csv))
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

/// Whether a browser's `Origin` may open a WebSocket: the hub's own host, or
/// one listed in `SPA_ALLOWED_ORIGINS`. Non-browser clients send none.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let Some(host) = host else { return false };
    match origin.split_once("://") {
        Some(("http" | "https", rest)) => rest.eq_ignore_ascii_case(host),
        _ => false,
    }
}

async fn socket_io(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    mut request: Request,
) -> Response {
    let eio = query.get("EIO").map(String::as_str);
    let transport = query.get("transport").map(String::as_str);
    if eio != Some("4") || transport != Some("websocket") {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({
                "code": 3,
                "message": "spa-hub speaks Engine.IO 4 over WebSocket only: connect with EIO=4&transport=websocket (socket.io-client: transports: [\"websocket\"]); HTTP long-polling is not supported",
            }),
        );
    }
    let headers = request.headers().clone();
    let header_str = |h: &HeaderMap, name: header::HeaderName| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = header_str(&headers, header::ORIGIN);
    let host = header_str(&headers, header::HOST);
    if !origin_allowed(
        origin.as_deref(),
        host.as_deref(),
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
    // The budget is checked before anything of the WebSocket exists.
    let Ok(permit) = hub.budget.clone().try_acquire_owned() else {
        hub.metrics.rejected_upgrades.fetch_add(1, Relaxed);
        let mut response = json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            error_body(
                "unavailable",
                "the hub is at its connection budget; retry shortly",
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let config = websocket_config(hub.config.max_payload_bytes);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                WsRole::Server,
                Some(config),
            )
            .await;
            Connection::new(hub, ws, peer).run(permit).await;
        }
    });
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

async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
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
    });
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(status, body)
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let health = hub.writer.health();
    let text = hub.metrics.render(
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
                "spa_hub_uptime_seconds",
                "Seconds since start",
                hub.started.elapsed().as_secs_f64(),
            ),
        ],
        &health.flush_latency,
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// A dummy argon2 hash so unknown names cost the same time as known ones.
fn dummy_pin_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_pin("000000").unwrap_or_default())
}

async fn login(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let (name, pin) = match &parsed {
        Ok(v) => (
            v.get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or(""),
            v.get("pin").and_then(Value::as_str).unwrap_or(""),
        ),
        Err(_) => ("", ""),
    };
    if name.is_empty() || pin.is_empty() || name.len() > 64 || pin.len() > 64 {
        return json_response(
            StatusCode::BAD_REQUEST,
            error_body("invalid", "send JSON {\"name\": \"…\", \"pin\": \"…\"}"),
        );
    }
    let ip = peer.ip();
    if let Some(secs) = hub.lockout.locked(name, ip) {
        let mut r = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            error_body(
                "rate_limited",
                &format!("too many failed logins; try again in {secs} s"),
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let who = name.to_string();
    let found = hub
        .writer
        .read(move |state, _| {
            state
                .staff_by_name(&who)
                .map(|s| (s.id, s.role, s.pin_hash.clone()))
        })
        .await
        .ok()
        .flatten();
    let stored = found
        .as_ref()
        .map(|(_, _, h)| h.clone())
        .unwrap_or_else(|| dummy_pin_hash().to_string());
    let pin_owned = pin.to_string();
    let ok = tokio::task::spawn_blocking(move || auth::verify_pin(&pin_owned, &stored))
        .await
        .unwrap_or(false);
    let Some((staff_id, role, _)) = found.filter(|_| ok) else {
        hub.lockout.failed(name, ip);
        log::warn!("failed login for {name:?} from {ip}");
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "wrong name or PIN"),
        );
    };
    hub.lockout.succeeded(name);
    let token = auth::new_token();
    let command = Command::SessionOpen {
        staff_id,
        token_hash: auth::hash_token(&token),
    };
    match hub
        .writer
        .execute(Actor::Staff { id: staff_id, role }, command)
        .await
    {
        Ok(data) => json_response(
            StatusCode::OK,
            json!({
                "token": token,
                "role": role,
                "staff_id": staff_id,
                "expires_at": data.get("expires_at").cloned().unwrap_or(Value::Null),
            }),
        ),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            error_body(e.code.as_str(), &e.message),
        ),
    }
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
        assert!(origin_allowed(None, Some("hub:5000"), &allowed));
        assert!(origin_allowed(
            Some("http://hub:5000"),
            Some("hub:5000"),
            &allowed
        ));
        assert!(origin_allowed(
            Some("http://tablet.local:8080"),
            Some("hub:5000"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("http://evil.example"),
            Some("hub:5000"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("http://hub:5001"),
            Some("hub:5000"),
            &allowed
        ));
        assert!(!origin_allowed(Some("null"), Some("hub:5000"), &allowed));
    }
}
