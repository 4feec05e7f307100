//! `/socket.io/?EIO=4&transport=polling`: the HTTP side of Engine.IO
//! long-polling (the session itself is `crate::hub::polling`).
//!
//! - `GET` without `sid`: the handshake. The per-address cap before CONNECT
//!   and the connection budget are checked first (503 + `Retry-After`, no
//!   state made), then the session's task starts and its open packet is the
//!   answer.
//! - `GET` with `sid`: waits for packets (the server pings within
//!   `pingInterval`, so it never waits longer); meanwhile the HTTP
//!   connection is marked busy, so the pool never evicts it as idle.
//! - `POST` with `sid`: at most `maxPayload` bytes, read within
//!   `SPA_REQUEST_TIMEOUT_MS`; answered `ok`.
//! - Anything else: `400` with the Engine.IO error body
//!   `{"code":…,"message":…}`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::{admit_connection, json_response};
use crate::gate::BusyMarker;
use crate::hub::connection::{new_sid, Connection};
use crate::hub::polling::{Refusal, Session};
use crate::hub::Hub;

/// A long-polling request (the query was checked by the caller).
pub(super) async fn polling(
    hub: Arc<Hub>,
    peer: SocketAddr,
    sid: Option<String>,
    request: Request,
    plain: bool,
) -> Response {
    let busy = request.extensions().get::<BusyMarker>().cloned();
    match (request.method().clone(), sid) {
        (Method::GET, None) => handshake(hub, peer, busy, plain).await,
        (Method::GET, Some(sid)) => match hub.polls.get(&sid) {
            Some(session) => poll(&session, busy).await,
            None => refused(Refusal::UnknownSid),
        },
        (Method::POST, Some(sid)) => match hub.polls.get(&sid) {
            Some(session) => post(&hub, &session, request.into_body()).await,
            None => refused(Refusal::UnknownSid),
        },
        _ => json_response(
            StatusCode::BAD_REQUEST,
            json!({"code": 2, "message": "Bad handshake method: open a session with GET"}),
        ),
    }
}

/// The Engine.IO error answer: `400` (`413` for a payload too large).
pub(super) fn refused(why: Refusal) -> Response {
    let status = match why {
        Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    json_response(
        status,
        json!({"code": why.code(), "message": why.message()}),
    )
}

async fn handshake(
    hub: Arc<Hub>,
    peer: SocketAddr,
    busy: Option<BusyMarker>,
    plain: bool,
) -> Response {
    let (pending, permit) = match admit_connection(&hub, peer) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let sid = new_sid();
    let end = hub.polls.open(&sid, hub.config.client_queue);
    let Some(session) = hub.polls.get(&sid) else {
        return refused(Refusal::UnknownSid);
    };
    hub.metrics.polling_sessions.fetch_add(1, Relaxed);
    // The upgrade hands this task a WebSocket over the upgraded HTTP
    // connection, hence its socket type.
    let task = Connection::<TokioIo<hyper::upgrade::Upgraded>>::polling(
        hub.clone(),
        end,
        sid,
        peer,
        pending,
    )
    .over_plain_http(plain);
    tokio::spawn(task.run(permit));
    poll(&session, busy).await
}

async fn poll(session: &Session, busy: Option<BusyMarker>) -> Response {
    let _busy = busy.as_ref().map(BusyMarker::hold);
    match session.poll().await {
        Ok(payload) => {
            let mut response = Response::new(Body::from(payload));
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=UTF-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(why) => refused(why),
    }
}

async fn post(hub: &Hub, session: &Session, body: Body) -> Response {
    let max = hub.config.max_payload_bytes;
    let limit = Duration::from_millis(hub.config.request_timeout_ms);
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, max)).await {
        Ok(Ok(bytes)) => bytes,
        // Over the limit, or a body cut short: either way not a payload.
        Ok(Err(_)) => {
            session.end("a POST body over maxPayload or broken");
            return refused(Refusal::TooLarge);
        }
        Err(_) => {
            session.end("a POST body that did not arrive in time");
            return refused(Refusal::BadPacket);
        }
    };
    match session.post(&bytes).await {
        Ok(()) => {
            let mut response = Response::new(Body::from("ok"));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=UTF-8"),
            );
            response
        }
        Err(why) => refused(why),
    }
}
