//! `POST /api/login`: JSON only, a body that must arrive within
//! `SPA_REQUEST_TIMEOUT_MS`, the attempt counted by the lockout before the
//! PIN is checked, and the check itself in one of `SPA_LOGIN_CONCURRENCY`
//! places (argon2 takes 8 MiB): when none is free the answer is 503 with
//! `Retry-After`, so memory is bounded by construction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{error_body, json_response};
use crate::auth;
use crate::domain::{Actor, Command};
use crate::hub::Hub;

/// The largest login body read.
const MAX_BODY: usize = 4096;

/// A dummy argon2 hash so unknown names cost the same time as known ones
/// (computed once, on the blocking pool, inside a PIN-check place).
fn dummy_pin_hash(place: &mut auth::PinPlace) -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| place.hash("000000").unwrap_or_default())
        .clone()
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Whether the request says its body is JSON (`application/json`, any
/// parameters such as `charset`). A cross-site form cannot send that
/// without a CORS preflight, which the hub never grants.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn login(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json(&headers) {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_body("invalid", "send Content-Type: application/json"),
        );
    }
    let limit = Duration::from_millis(hub.config.request_timeout_ms);
    let body = match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_body("invalid", "the login body is too large or broken"),
            )
        }
        Err(_) => {
            return json_response(
                StatusCode::REQUEST_TIMEOUT,
                error_body("invalid", "the login body did not arrive in time"),
            )
        }
    };
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
    let ip = crate::gate::address_key(peer.ip());
    // Counted before the PIN is checked: a burst cannot outrun the limit.
    let attempt = match hub.lockout.begin(name, ip) {
        Ok(a) => a,
        Err(locked) => {
            let secs = locked.retry_after_s;
            return with_retry_after(
                json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    error_body(
                        "rate_limited",
                        &format!("too many failed logins; try again in {secs} s"),
                    ),
                ),
                secs,
            );
        }
    };
    let Some(mut place) = hub.pin_checks.try_place() else {
        attempt.cancel();
        return with_retry_after(
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                error_body(
                    "unavailable",
                    "the hub is busy checking PINs; retry shortly",
                ),
            ),
            1,
        );
    };
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
    let stored = found.as_ref().map(|(_, _, h)| h.clone());
    let pin_owned = pin.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        let stored = match stored {
            Some(h) => h,
            None => dummy_pin_hash(&mut place),
        };
        place.verify(&pin_owned, &stored)
    })
    .await
    .unwrap_or(false);
    let Some((staff_id, role, _)) = found.filter(|_| ok) else {
        attempt.failed();
        log::warn!("failed login for {name:?} from {}", peer.ip());
        return json_response(
            StatusCode::UNAUTHORIZED,
            error_body("unauthorized", "wrong name or PIN"),
        );
    };
    attempt.succeeded();
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
