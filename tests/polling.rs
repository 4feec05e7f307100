//! Engine.IO long-polling, the upgrade and connection state recovery
//! (#18) over real HTTP and WebSocket connections to the real daemon: the
//! budget and origin rules for polling sessions, a session nobody polls,
//! the upgrade handshake packet by packet, and recovery from the log after
//! a restart, filtered for the role (a customer never sees another's).
//! The official clients do the same in .ci/clients.sh; malformed polling
//! input is in tests/malformed.rs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use spa_hub::client::Client;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);
const POLL: &str = "/socket.io/?EIO=4&transport=polling";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One HTTP request: (status, headers and body as text).
fn http(port: u16, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("tcp");
    s.set_read_timeout(Some(T)).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("")
}

/// A new polling session: its sid.
fn handshake(port: u16) -> String {
    let (status, out) = http(port, "GET", POLL, "", b"");
    assert_eq!(status, 200, "{out}");
    let open: Value = serde_json::from_str(&body_of(&out)[1..]).expect("open packet");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    open["sid"].as_str().expect("sid").to_string()
}

fn get(port: u16, sid: &str) -> (u16, String) {
    let (status, out) = http(port, "GET", &format!("{POLL}&sid={sid}"), "", b"");
    (status, body_of(&out).to_string())
}

fn post(port: u16, sid: &str, body: &str) -> u16 {
    http(
        port,
        "POST",
        &format!("{POLL}&sid={sid}"),
        "",
        body.as_bytes(),
    )
    .0
}

fn connections(port: u16) -> u64 {
    let (_, out) = http(port, "GET", "/healthz", "", b"");
    let health: Value = serde_json::from_str(body_of(&out)).expect("healthz");
    health["connections"]["total"].as_u64().expect("total")
}

async fn recv(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(T, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn polling_sessions_share_the_budget_and_the_origin_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(&dir.path().join("d"), &[("SPA_MAX_CONNECTIONS", "2")]);
    let port = daemon.port;
    let (status, out) = http(port, "GET", POLL, "Origin: http://evil.example\r\n", b"");
    assert_eq!(status, 403, "a foreign origin: {out}");
    let a = handshake(port);
    let _b = handshake(port);
    for path in [POLL, "/socket.io/?EIO=4&transport=websocket"] {
        let (status, out) = http(
            port,
            "GET",
            path,
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            b"",
        );
        assert_eq!(status, 503, "over the budget: {out}");
        assert!(out.to_ascii_lowercase().contains("retry-after"), "{out}");
    }
    assert_eq!(connections(port), 2);
    // The client closes one: its place is free again.
    assert_eq!(post(port, &a, "1"), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A GET sent with the close gets its noop, once.
    assert_eq!(get(port, &a), (200, "6".to_string()));
    assert_eq!(get(port, &a).0, 400);
    handshake(port);
}

#[tokio::test]
async fn a_session_nobody_polls_is_dropped() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(
        &dir.path().join("d"),
        &[
            ("SPA_PING_INTERVAL_MS", "1000"),
            ("SPA_PING_TIMEOUT_MS", "1000"),
        ],
    );
    let port = daemon.port;
    let sid = handshake(port);
    assert_eq!(connections(port), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(get(port, &sid).0, 400, "dropped after the ping timeout");
    assert_eq!(connections(port), 0);
    // One that polls and pongs stays.
    let sid = handshake(port);
    for _ in 0..3 {
        assert_eq!(get(port, &sid), (200, "2".to_string()));
        assert_eq!(post(port, &sid, "3"), 200);
    }
    assert_eq!(connections(port), 1);
}

#[tokio::test]
async fn the_upgrade_moves_a_session_to_a_websocket() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(&dir.path().join("d"), &[]);
    let port = daemon.port;
    let sid = handshake(port);
    let connect = format!("40{}", json!({"token": common::ADMIN}));
    assert_eq!(post(port, &sid, &connect), 200);
    let (status, mut body) = get(port, &sid);
    assert_eq!(status, 200);
    assert!(
        body.starts_with(&format!("40{{\"sid\":\"{sid}\"}}")),
        "{body}"
    );
    // The snapshot comes with it or with the next GET.
    if !body.contains("42[\"snapshot\"") {
        body = get(port, &sid).1;
    }
    assert!(body.contains("42[\"snapshot\""), "{body}");
    // A command over polling: its ack comes with the next GET.
    assert_eq!(
        post(port, &sid, "421[\"room.create\",{\"name\":\"Jade\"}]"),
        200
    );
    let (_, body) = get(port, &sid);
    assert!(body.contains("431[{"), "{body}");

    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("ws");
    ws.send(Message::text("2probe")).await.expect("send");
    assert_eq!(recv(&mut ws).await.as_deref(), Some("3probe"));
    // The waiting GET is released with a noop.
    assert_eq!(get(port, &sid), (200, "6".to_string()));
    ws.send(Message::text("5")).await.expect("send");
    ws.send(Message::text("422[\"sync\"]")).await.expect("send");
    let mut got = Vec::new();
    while !got.iter().any(|t: &String| t.starts_with("432[")) {
        got.push(recv(&mut ws).await.expect("a frame over the WebSocket"));
    }
    assert!(
        got.iter().any(|t| t.starts_with("42[\"snapshot\"")),
        "{got:?}"
    );
    // HTTP with the sid is over; a second WebSocket with it too.
    assert_eq!(get(port, &sid).0, 400);
    assert_eq!(post(port, &sid, "3"), 400);
    let again = tokio_tungstenite::connect_async(&url).await;
    assert!(
        again.is_err(),
        "a second upgrade of the same sid is refused"
    );
    assert_eq!(connections(port), 1);
    // The heartbeat goes on over the WebSocket.
    ws.send(Message::text("3")).await.expect("pong");
    ws.close(None).await.expect("close");
}

/// A customer's WebSocket with recovery: (socket, the CONNECT reply).
async fn customer(port: u16, auth: Value) -> (Ws, Value) {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("ws");
    let open = recv(&mut ws).await.expect("open");
    assert!(open.starts_with("0{"), "{open}");
    ws.send(Message::text(format!("40{auth}")))
        .await
        .expect("send");
    let reply = recv(&mut ws).await.expect("CONNECT reply");
    let reply: Value = serde_json::from_str(&reply[2..]).expect("CONNECT reply is JSON");
    (ws, reply)
}

/// Event frames until `seq` has arrived: (name, payload, offset) each.
async fn events_until(ws: &mut Ws, seq: u64) -> Vec<(String, Value, String)> {
    let mut out = Vec::new();
    loop {
        let text = recv(ws).await.expect("an event");
        let Some(array) = text.strip_prefix("42") else {
            continue;
        };
        let args: Vec<Value> = serde_json::from_str(array).expect("event array");
        assert_eq!(args.len(), 3, "name, payload, offset: {text}");
        let done = args[1]["seq"].as_u64() == Some(seq);
        out.push((
            args[0].as_str().unwrap_or_default().to_string(),
            args[1].clone(),
            args[2].as_str().unwrap_or_default().to_string(),
        ));
        if done {
            return out;
        }
    }
}

#[tokio::test]
async fn recovery_replays_from_the_log_after_a_restart_for_the_role_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d");
    let env = [("SPA_CLIENT_QUEUE", "8")];
    let daemon = common::Daemon::start(&data, &env);
    let port = daemon.port;
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let svc = admin
        .call(
            "service.create",
            json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
        )
        .await
        .expect("ack");
    let service = svc["data"]["service"]["id"].clone();
    let visit = |name: &'static str| {
        let admin = &admin;
        let service = service.clone();
        async move {
            admin
                .call(
                    "visit.create",
                    json!({"customer_name": name, "service_ids": [service]}),
                )
                .await
                .expect("ack")["data"]
                .clone()
        }
    };
    let ann = visit("Ann Mine").await;
    let token = ann["customer_token"].as_str().expect("token").to_string();
    let (mut ws, reply) = customer(port, json!({"token": token, "recovery": true})).await;
    let pid = reply["pid"].as_str().expect("a pid").to_string();
    let snap = recv(&mut ws).await.expect("snapshot");
    assert!(snap.starts_with("42[\"snapshot\""), "{snap}");
    let snap: Vec<Value> = serde_json::from_str(&snap[2..]).expect("json");
    let offset = snap[1]["seq"].as_u64().expect("seq");
    assert_eq!(
        snap[2],
        json!(offset.to_string()),
        "the snapshot carries its offset"
    );
    drop(ws);

    // Missed: other customers' visits (the queue moves for Ann too).
    visit("Zed Other").await;
    let last = visit("Zoe Other").await["seq"].as_u64().expect("seq");
    drop(admin);
    assert_eq!(daemon.stop(), Some(0));
    let daemon = common::Daemon::start(&data, &env);
    let port = daemon.port;

    let asks = json!({"token": token, "pid": pid, "offset": offset.to_string()});
    let (mut ws, reply) = customer(port, asks).await;
    assert_eq!(reply["pid"], json!(pid), "recovered: the same pid");
    let got = events_until(&mut ws, last).await;
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|(_, p, _)| p["seq"].as_u64())
        .collect();
    let want: Vec<u64> = (offset + 1..=last).collect();
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(unique, want, "every missed seq once, in order: {got:?}");
    assert!(got.iter().all(|(n, _, _)| n != "snapshot"), "{got:?}");
    assert!(
        got.iter()
            .all(|(_, p, o)| p["seq"].as_u64().map(|s| s.to_string()) == Some(o.clone())),
        "each event's offset is its seq"
    );
    let text =
        serde_json::to_string(&got.iter().map(|(_, p, _)| p).collect::<Vec<_>>()).expect("json");
    assert!(!text.contains("Zed") && !text.contains("Zoe"), "{text}");
    drop(ws);

    // Unknown (beyond the log) or too old (more than SPA_CLIENT_QUEUE
    // events): a snapshot and a new pid.
    for offset in [last + 5, 0] {
        let admin = Client::connect(&daemon.ws(), common::ADMIN)
            .await
            .expect("admin");
        for _ in 0..if offset == 0 { 10 } else { 0 } {
            admin
                .call(
                    "room.create",
                    json!({"name": format!("R{}", rand_suffix())}),
                )
                .await
                .expect("ack");
        }
        let asks = json!({"token": token, "pid": pid, "offset": offset.to_string()});
        let (mut ws, reply) = customer(port, asks).await;
        assert_ne!(reply["pid"], json!(pid), "offset {offset}: not recovered");
        let snap = recv(&mut ws).await.expect("snapshot");
        assert!(
            snap.starts_with("42[\"snapshot\""),
            "offset {offset}: {snap}"
        );
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
