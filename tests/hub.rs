//! The realtime hub over real sockets: the Engine.IO/Socket.IO handshake and
//! every packet type, malformed and oversized frames, auth failures, the
//! role table, role filtering, the budget's 503, a slow client dropped while
//! others keep receiving, and revocation closing live connections.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use spa_hub::client::Client;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const ADMIN: &str = "hub-test-admin-token-0001";
const T: Duration = Duration::from_secs(10);

type Hub = common::InProcessHub;

type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn raw(hub: &Hub) -> Raw {
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", hub.url());
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    ws
}

async fn recv_text(ws: &mut Raw) -> Option<String> {
    loop {
        match tokio::time::timeout(T, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads until the server closes; returns the close code (None: no close frame).
async fn close_code(ws: &mut Raw) -> Option<u16> {
    loop {
        match tokio::time::timeout(T, ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("the server did not close the connection"),
        }
    }
}

async fn send(ws: &mut Raw, text: &str) {
    ws.send(Message::text(text.to_string()))
        .await
        .expect("send");
}

async fn connected_raw(hub: &Hub, token: &str) -> Raw {
    let mut ws = raw(hub).await;
    let open = recv_text(&mut ws).await.expect("open");
    assert!(open.starts_with("0{"), "{open}");
    send(&mut ws, &format!("40{}", json!({ "token": token }))).await;
    let ok = recv_text(&mut ws).await.expect("connect reply");
    assert!(ok.starts_with("40{\"sid\""), "{ok}");
    let snap = recv_text(&mut ws).await.expect("snapshot");
    assert!(snap.starts_with("42[\"snapshot\""), "{snap}");
    ws
}

async fn http(port: u16, request: &str) -> (u16, String, String) {
    // An upgrade (101) keeps the connection open: read what comes in a moment.
    http_within(port, request, Duration::from_millis(1500)).await
}

async fn http_within(port: u16, request: &str, within: Duration) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut raw)).await;
    let out = String::from_utf8_lossy(&raw).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_string(), body.to_string())
}

async fn login_raw(port: u16, body: &str) -> (u16, String, String) {
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A PIN check (argon2, unoptimised in a debug build, on a busy machine)
    // may take more than a moment; the hub closes the connection after it.
    http_within(port, &request, Duration::from_secs(30)).await
}

async fn login_token(port: u16, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}","pin":"1357"}}"#);
    let (_, _, resp) = login_raw(port, &body).await;
    serde_json::from_str::<Value>(&resp).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

fn upgrade_request(port: u16, extra: &str) -> String {
    format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn handshake_open_packet_and_every_packet_type() {
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_PING_INTERVAL_MS", "1000"),
            ("SPA_PING_TIMEOUT_MS", "3000"),
        ],
    )
    .await;
    let mut ws = raw(&hub).await;
    let open = recv_text(&mut ws).await.expect("open");
    let body: Value = serde_json::from_str(&open[1..]).expect("json");
    assert_eq!(body["upgrades"], json!([]));
    assert_eq!(body["pingInterval"], json!(1000));
    assert_eq!(body["pingTimeout"], json!(3000));
    assert_eq!(body["maxPayload"], json!(65536));
    assert!(body["sid"].as_str().is_some_and(|s| !s.is_empty()));

    // CONNECT with the admin token → 40{"sid"} then the snapshot.
    send(&mut ws, &format!("40{}", json!({"token": ADMIN}))).await;
    assert!(recv_text(&mut ws)
        .await
        .expect("40")
        .starts_with("40{\"sid\":"));
    let snap = recv_text(&mut ws).await.expect("snapshot");
    let snap: Value = serde_json::from_str(&snap[2..]).expect("json");
    assert_eq!(snap[0], "snapshot");
    assert_eq!(snap[1]["me"]["role"], "admin");
    assert!(snap[1]["server_time"].as_i64().is_some());

    // EVENT with an ack id → ACK with the same id; the change is broadcast too.
    send(&mut ws, r#"427["room.create",{"name":"Lotus"}]"#).await;
    let mut got_ack = false;
    let mut got_event = false;
    while !(got_ack && got_event) {
        let t = recv_text(&mut ws).await.expect("frame");
        if let Some(ack) = t.strip_prefix("437") {
            let v: Value = serde_json::from_str(ack).expect("ack json");
            assert_eq!(v[0]["ok"], json!(true));
            assert_eq!(v[0]["data"]["seq"], json!(1));
            got_ack = true;
        } else if t.starts_with("42[\"room.updated\"") {
            got_event = true;
        }
    }
    // EVENT without an ack id is executed; no ack comes back.
    send(&mut ws, r#"42["room.create",{"name":"Jade"}]"#).await;
    // Engine.IO ping from the server, pong from us.
    let mut saw_ping = false;
    for _ in 0..20 {
        let t = recv_text(&mut ws).await.expect("frame");
        assert!(
            !t.starts_with("43"),
            "no ack for an event without an id: {t}"
        );
        if t == "2" {
            saw_ping = true;
            send(&mut ws, "3").await;
            break;
        }
    }
    assert!(saw_ping, "the server pings every interval");
    // A client ping is answered with a pong; a noop and an ACK are ignored.
    send(&mut ws, "2probe").await;
    loop {
        let t = recv_text(&mut ws).await.expect("frame");
        if t == "3probe" {
            break;
        }
    }
    send(&mut ws, "6").await;
    send(&mut ws, "431[{}]").await;
    // sync → a fresh snapshot and an ack with the seq.
    send(&mut ws, r#"429["sync"]"#).await;
    let mut synced = false;
    for _ in 0..20 {
        let t = recv_text(&mut ws).await.expect("frame");
        if let Some(ack) = t.strip_prefix("439") {
            let v: Value = serde_json::from_str(ack).expect("json");
            assert_eq!(v[0]["data"]["seq"], json!(2));
            synced = true;
            break;
        }
    }
    assert!(synced);
    // Another namespace is refused in the Socket.IO way.
    send(&mut ws, "40/other,").await;
    loop {
        let t = recv_text(&mut ws).await.expect("frame");
        if t.starts_with("44/other,") {
            assert!(t.contains("Invalid namespace"));
            break;
        }
    }
    // DISCONNECT closes.
    send(&mut ws, "41").await;
    assert_eq!(close_code(&mut ws).await, Some(1000));
    hub.stop().await;
}

/// A hub that pings every second and waits a second for the pong.
async fn fast_heartbeat_hub() -> Hub {
    Hub::start(
        ADMIN,
        &[
            ("SPA_PING_INTERVAL_MS", "1000"),
            ("SPA_PING_TIMEOUT_MS", "1000"),
        ],
    )
    .await
}

#[tokio::test]
async fn missed_pongs_drop_the_client() {
    let hub = fast_heartbeat_hub().await;
    let mut ws = connected_raw(&hub, ADMIN).await;
    // Never answer the pings.
    assert_eq!(close_code(&mut ws).await, Some(1001));
    hub.stop().await;
}

#[tokio::test]
async fn a_client_that_answers_every_ping_stays_connected() {
    let hub = fast_heartbeat_hub().await;
    let mut ws = connected_raw(&hub, ADMIN).await;
    let mut pings = 0;
    while pings < 3 {
        let frame = recv_text(&mut ws).await.expect("still open");
        if frame == "2" {
            pings += 1;
            send(&mut ws, "3").await;
        }
    }
    // Still served after three rounds of ping and pong.
    send(&mut ws, r#"421["sync",{}]"#).await;
    loop {
        let frame = recv_text(&mut ws).await.expect("still open");
        if let Some(ack) = frame.strip_prefix("431") {
            let v: Value = serde_json::from_str(ack).expect("ack json");
            assert_eq!(v[0]["ok"], json!(true), "{frame}");
            break;
        }
        if frame == "2" {
            send(&mut ws, "3").await;
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_client_that_never_sends_connect_is_closed() {
    let hub = Hub::start(ADMIN, &[("SPA_CONNECT_TIMEOUT_MS", "300")]).await;
    let mut ws = raw(&hub).await;
    assert!(recv_text(&mut ws).await.expect("open").starts_with('0'));
    assert_eq!(close_code(&mut ws).await, Some(1008));
    hub.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_the_connection() {
    let hub = Hub::start(ADMIN, &[("SPA_MAX_PAYLOAD_BYTES", "2048")]).await;
    let cases: &[(&str, u16)] = &[
        ("9", 1002),                                             // unknown Engine.IO type
        ("", 1002),                                              // empty frame
        ("4x", 1002),                                            // unknown Socket.IO type
        ("42{\"a\":1}", 1002),                                   // non-array event payload
        ("42[]", 1002),                                          // no event name
        ("42[1]", 1002),                                         // numeric event name
        ("42abc[\"sync\"]", 1002),                               // bad ack id
        ("4299999999999999999[\"sync\"]", 1002),                 // ack id out of range
        ("42[\"sync\"", 1002),                                   // truncated JSON
        ("451-[\"x\",{\"_placeholder\":true,\"num\":0}]", 1003), // binary attachment
        ("0", 1002),                                             // OPEN from a client
    ];
    for (frame, code) in cases {
        let mut ws = connected_raw(&hub, ADMIN).await;
        send(&mut ws, frame).await;
        assert_eq!(close_code(&mut ws).await, Some(*code), "frame {frame:?}");
    }
    // An event before CONNECT.
    let mut ws = raw(&hub).await;
    recv_text(&mut ws).await.expect("open");
    send(&mut ws, r#"42["sync"]"#).await;
    assert_eq!(close_code(&mut ws).await, Some(1008));
    // A binary frame.
    let mut ws = connected_raw(&hub, ADMIN).await;
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut ws).await, Some(1003));
    // Larger than maxPayload.
    let mut ws = connected_raw(&hub, ADMIN).await;
    let big = format!("42[\"room.create\",{{\"name\":\"{}\"}}]", "x".repeat(4000));
    send(&mut ws, &big).await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
    // The hub is still fine and nothing was created.
    let admin = hub.admin().await;
    let ack = admin
        .call("room.create", json!({"name": "after"}))
        .await
        .expect("ack");
    assert_eq!(ack["data"]["seq"], json!(1), "no garbage changed the state");
    hub.stop().await;
}

#[tokio::test]
async fn auth_failures_of_each_kind() {
    let hub = Hub::start(ADMIN, &[]).await;
    for auth in [
        "40",
        "40{}",
        "40{\"token\":\"\"}",
        "40{\"token\":\"nope\"}",
        "40{\"token\":5}",
    ] {
        let mut ws = raw(&hub).await;
        recv_text(&mut ws).await.expect("open");
        send(&mut ws, auth).await;
        assert_eq!(
            recv_text(&mut ws).await.expect("reply"),
            "44{\"message\":\"unauthorized\"}",
            "{auth}"
        );
    }
    // Five failures on one connection close it.
    let mut ws = raw(&hub).await;
    recv_text(&mut ws).await.expect("open");
    for _ in 0..5 {
        send(&mut ws, "40{\"token\":\"wrong\"}").await;
    }
    assert_eq!(close_code(&mut ws).await, Some(1008));
    // Login: wrong PIN, unknown name, malformed body, lockout after 5.
    let admin = hub.admin().await;
    let ack = admin
        .call(
            "staff.create",
            json!({"name": "Mia", "role": "therapist", "pin": "2468"}),
        )
        .await
        .expect("ack");
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let port = hub.port();
    assert_eq!(login_raw(port, "not json").await.0, 400);
    let (status, _, body) = login_raw(port, r#"{"name":"Mia","pin":"2468"}"#).await;
    assert_eq!(status, 200, "{body}");
    let session: Value = serde_json::from_str(&body).expect("json");
    let token = session["token"].as_str().expect("token").to_string();
    assert_eq!(session["role"], "therapist");
    Client::connect(&hub.url(), &token)
        .await
        .expect("session token works");
    for _ in 0..5 {
        assert_eq!(
            login_raw(port, r#"{"name":"Mia","pin":"0000"}"#).await.0,
            401
        );
    }
    let (status, head, body) = login_raw(port, r#"{"name":"Mia","pin":"2468"}"#).await;
    assert_eq!(status, 429, "locked out even with the right PIN");
    assert!(body.contains("rate_limited") && head.to_lowercase().contains("retry-after"));
    // The address is locked too, for any name, after its own limit (10
    // failures from it, whatever the names; #21).
    for n in 5..spa_hub::lockout::ADDRESS_LIMIT {
        let body = format!(r#"{{"name":"Nobody{n}","pin":"1234"}}"#);
        assert_eq!(login_raw(port, &body).await.0, 401);
    }
    assert_eq!(
        login_raw(port, r#"{"name":"Nobody","pin":"1234"}"#).await.0,
        429
    );
    // Logout ends the session: the token no longer connects.
    let (status, _, _) = http(port, &format!("POST /api/logout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(status, 200);
    assert!(Client::connect(&hub.url(), &token).await.is_err());
    hub.stop().await;
}

#[tokio::test]
async fn transport_origin_and_budget_checks_before_any_websocket() {
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_MAX_CONNECTIONS", "3"),
            ("SPA_ALLOWED_ORIGINS", "http://tablet.local:8080"),
        ],
    )
    .await;
    let port = hub.port();
    // An unknown transport (long-polling is a transport since #18:
    // tests/polling.rs).
    let (status, _, body) = http(
        port,
        "GET /socket.io/?EIO=4&transport=flashsocket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("Transport unknown"), "{body}");
    let (status, _, _) = http(port, "GET /socket.io/?EIO=3&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
    let (status, _, _) = http(
        port,
        &upgrade_request(port, "Origin: http://evil.example\r\n"),
    )
    .await;
    assert_eq!(status, 403, "cross-site WebSocket refused");
    let (status, _, _) = http(
        port,
        &upgrade_request(port, "Origin: http://tablet.local:8080\r\n"),
    )
    .await;
    assert_eq!(status, 101);
    let own = format!("Origin: http://127.0.0.1:{port}\r\n");
    let (status, _, _) = http(port, &upgrade_request(port, &own)).await;
    assert_eq!(status, 101, "the hub's own host is allowed");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The budget: 3 live connections, the 4th upgrade gets 503 + Retry-After.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(hub.admin().await);
    }
    let (status, head, _) = http(port, &upgrade_request(port, "")).await;
    assert_eq!(status, 503);
    assert!(head.to_lowercase().contains("retry-after: 5"), "{head}");
    let metrics = http(
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .2;
    assert!(
        metrics.contains("spa_hub_rejected_upgrades_total 1"),
        "{metrics}"
    );
    // One leaves; a new one gets in.
    if let Some(c) = clients.pop() {
        c.close().await;
    }
    let mut admitted = false;
    for _ in 0..50 {
        if Client::connect(&hub.url(), ADMIN).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "recovers after a client leaves");
    hub.stop().await;
}

#[tokio::test]
async fn every_command_is_refused_for_every_role_that_may_not_send_it() {
    use spa_hub::domain::permissions::{allowed, TABLE};
    use spa_hub::domain::Role;
    let hub = Hub::start(ADMIN, &[]).await;
    let admin = hub.admin().await;
    for (name, role) in [("Cass", "cashier"), ("Thea", "therapist")] {
        let ack = admin
            .call(
                "staff.create",
                json!({"name": name, "role": role, "pin": "1357"}),
            )
            .await
            .expect("ack");
        assert_eq!(ack["ok"], json!(true));
    }
    let svc = admin
        .call(
            "service.create",
            json!({"name": "Thai", "duration_min": 60, "price_cents": 1000}),
        )
        .await
        .expect("ack");
    let visit = admin
        .call(
            "visit.create",
            json!({"customer_name": "Ann", "service_ids": [svc["data"]["service"]["id"]]}),
        )
        .await
        .expect("ack");
    let customer_token = visit["data"]["customer_token"]
        .as_str()
        .expect("token")
        .to_string();
    let device = admin
        .call("device.pair", json!({"role": "monitor", "name": "Lobby"}))
        .await
        .expect("ack");
    let monitor_token = device["data"]["token"].as_str().expect("token").to_string();
    let port = hub.port();
    let tokens = [
        (Role::Cashier, login_token(port, "Cass").await),
        (Role::Therapist, login_token(port, "Thea").await),
        (Role::Monitor, monitor_token),
        (Role::Customer, customer_token),
    ];
    let mut checked = 0;
    for (role, token) in &tokens {
        let client = Client::connect(&hub.url(), token).await.expect("connect");
        for (name, _) in TABLE {
            if allowed(*role, name) {
                continue;
            }
            let ack = client.call(name, json!({})).await.expect("ack");
            assert_eq!(ack["ok"], json!(false), "{role:?} {name}");
            assert_eq!(ack["error"]["code"], "forbidden", "{role:?} {name}: {ack}");
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
    // Nothing the refused commands asked for happened.
    let snap = admin.call("sync", json!({})).await.expect("ack");
    // 5 changes and 2 logins (a login is an event too).
    assert_eq!(snap["data"]["seq"], json!(7));
    hub.stop().await;
}

#[tokio::test]
async fn role_filtering_customers_and_monitors_never_see_other_names() {
    let hub = Hub::start(ADMIN, &[]).await;
    let admin = hub.admin().await;
    let svc = admin
        .call(
            "service.create",
            json!({"name": "Thai", "duration_min": 60, "cleanup_min": 5, "price_cents": 1000}),
        )
        .await
        .expect("ack");
    let svc_id = svc["data"]["service"]["id"].clone();
    admin
        .call("room.create", json!({"name": "Room 1"}))
        .await
        .expect("ack");
    let t = admin
        .call(
            "staff.create",
            json!({"name": "Mia", "role": "therapist", "pin": "1357"}),
        )
        .await
        .expect("ack");
    let mia = t["data"]["staff"]["id"].clone();
    let a = admin.call("visit.create", json!({"customer_name": "Alice Secret", "phone": "0900111222", "service_ids": [svc_id]})).await.expect("ack");
    let device = admin
        .call("device.pair", json!({"role": "monitor", "name": "Lobby"}))
        .await
        .expect("ack");
    let mut monitor = Client::connect(&hub.url(), device["data"]["token"].as_str().expect("t"))
        .await
        .expect("monitor");
    let mut alice = Client::connect(&hub.url(), a["data"]["customer_token"].as_str().expect("t"))
        .await
        .expect("alice");
    let b = admin
        .call(
            "visit.create",
            json!({"customer_name": "Bob Private", "phone": "0900333444", "service_ids": [svc_id]}),
        )
        .await
        .expect("ack");
    let mut bob = Client::connect(&hub.url(), b["data"]["customer_token"].as_str().expect("t"))
        .await
        .expect("bob");
    admin
        .call("therapist.clock_in", json!({"therapist_id": mia}))
        .await
        .expect("ack");
    let called = admin.call("visit.call", json!({})).await.expect("ack");
    let vid = called["data"]["visit"]["id"].clone();
    admin
        .call("visit.start", json!({"visit_id": vid}))
        .await
        .expect("ack");
    let last = admin
        .call("visit.finish", json!({"visit_id": vid}))
        .await
        .expect("ack");
    let last_seq = last["data"]["seq"].as_u64().expect("seq");
    // Collect everything each client got until the last seq.
    async fn drain(c: &mut Client, until: u64) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let e = c.next_event(T).await.expect("event");
            let seq = e.data.get("seq").and_then(Value::as_u64).unwrap_or(0);
            all.push(format!("{} {}", e.name, e.data));
            if seq >= until {
                return all;
            }
        }
    }
    let m = drain(&mut monitor, last_seq).await.join("\n");
    let al = drain(&mut alice, last_seq).await.join("\n");
    let bo = drain(&mut bob, last_seq).await.join("\n");
    for secret in [
        "Alice Secret",
        "Bob Private",
        "0900111222",
        "0900333444",
        "customer_name",
        "phone",
    ] {
        assert!(!m.contains(secret), "monitor saw {secret}:\n{m}");
    }
    for secret in ["Bob Private", "0900333444"] {
        assert!(!al.contains(secret), "Alice saw {secret}:\n{al}");
    }
    for secret in ["Alice Secret", "0900111222"] {
        assert!(!bo.contains(secret), "Bob saw {secret}:\n{bo}");
    }
    assert!(al.contains("Alice Secret"), "Alice sees her own visit");
    assert!(m.contains("room.updated"), "the monitor follows the rooms");
    // Gap-free seq per client (events, or `seq` markers for what it may not see).
    for (who, text) in [("monitor", &m), ("alice", &al), ("bob", &bo)] {
        let mut seqs: Vec<u64> = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v.get("seq").and_then(Value::as_u64))
            .collect();
        seqs.dedup();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..=last_seq).collect::<Vec<_>>(),
            "{who} saw a gap"
        );
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_while_100_others_keep_receiving() {
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_CLIENT_QUEUE", "16"),
            ("SPA_PING_TIMEOUT_MS", "1500"),
            ("SPA_PING_INTERVAL_MS", "60000"),
            // 100 monitors on one device token, as 100 screens would be.
            ("SPA_MAX_CONNECTIONS_PER_TOKEN", "200"),
        ],
    )
    .await;
    let admin = hub.admin().await;
    let room = admin
        .call("room.create", json!({"name": "R"}))
        .await
        .expect("ack");
    let room_id = room["data"]["room"]["id"].clone();
    // The slow client: a tiny receive buffer, authenticates, then never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("rcvbuf");
    let tcp = socket.connect(hub.running().addr).await.expect("connect");
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", hub.url());
    let (mut slow, _) = tokio_tungstenite::client_async(url, tcp).await.expect("ws");
    recv_text_any(&mut slow).await;
    slow.send(Message::text(format!("40{}", json!({"token": ADMIN}))))
        .await
        .expect("send");
    // 100 normal monitors.
    let device = admin
        .call("device.pair", json!({"role": "monitor", "name": "m"}))
        .await
        .expect("ack");
    let token = device["data"]["token"].as_str().expect("t").to_string();
    let mut readers = Vec::new();
    for _ in 0..100 {
        let mut c = Client::connect(&hub.url(), &token).await.expect("monitor");
        readers.push(tokio::spawn(async move {
            let mut last = 0;
            while let Ok(e) = c.next_event(Duration::from_secs(5)).await {
                if let Some(s) = e.data.get("seq").and_then(Value::as_u64) {
                    last = last.max(s);
                }
            }
            last
        }));
    }
    // A stream of changes with sizeable payloads.
    let mut last_seq = 0;
    for i in 0..1500 {
        let status = if i % 2 == 0 { "cleaning" } else { "available" };
        let reason = "r".repeat(150);
        let ack = admin
            .call(
                "room.set_status",
                json!({"room_id": room_id, "status": status, "reason": reason}),
            )
            .await
            .expect("ack");
        last_seq = ack["data"]["seq"].as_u64().expect("seq");
    }
    for r in readers {
        assert_eq!(
            r.await.expect("reader"),
            last_seq,
            "every other client got everything"
        );
    }
    let metrics = http(
        hub.port(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .2;
    let drops: u64 = metrics
        .lines()
        .find(|l| l.starts_with("spa_hub_slow_client_drops_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0);
    assert!(drops >= 1, "the slow client was dropped: {metrics}");
    drop(slow);
    hub.stop().await;
}

async fn recv_text_any<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(T, ws.next()).await;
}

#[tokio::test]
async fn revoking_a_device_or_deactivating_staff_closes_live_connections() {
    let hub = Hub::start(ADMIN, &[]).await;
    let admin = hub.admin().await;
    let device = admin
        .call("device.pair", json!({"role": "monitor", "name": "Lobby"}))
        .await
        .expect("ack");
    let token = device["data"]["token"].as_str().expect("t").to_string();
    let mut ws = connected_raw(&hub, &token).await;
    admin
        .call(
            "device.revoke",
            json!({"device_id": device["data"]["device"]["id"]}),
        )
        .await
        .expect("ack");
    assert_eq!(close_code(&mut ws).await, Some(1008));
    assert!(
        Client::connect(&hub.url(), &token).await.is_err(),
        "a revoked token is refused"
    );

    let staff = admin
        .call(
            "staff.create",
            json!({"name": "Cass", "role": "cashier", "pin": "1357"}),
        )
        .await
        .expect("ack");
    let body = r#"{"name":"Cass","pin":"1357"}"#;
    let (_, _, resp) = login_raw(hub.port(), body).await;
    let session = serde_json::from_str::<Value>(&resp).expect("json")["token"]
        .as_str()
        .expect("t")
        .to_string();
    let mut ws = connected_raw(&hub, &session).await;
    admin
        .call(
            "staff.deactivate",
            json!({"staff_id": staff["data"]["staff"]["id"]}),
        )
        .await
        .expect("ack");
    assert_eq!(close_code(&mut ws).await, Some(1008));
    assert!(Client::connect(&hub.url(), &session).await.is_err());
    hub.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics() {
    let hub = Hub::start(ADMIN, &[]).await;
    let _admin = hub.admin().await;
    let (status, _, body) = http(
        hub.port(),
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["storage"], "ok");
    assert_eq!(v["connections"]["by_role"]["admin"], json!(1));
    assert_eq!(v["lights"]["backend"], "sim");
    let (_, _, metrics) = http(
        hub.port(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    for name in [
        "spa_hub_connections{role=\"admin\"} 1",
        "spa_hub_broadcast_latency_seconds_bucket",
        "spa_hub_storage_flush_seconds",
        "spa_hub_rejected_upgrades_total",
        "spa_hub_slow_client_drops_total",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    hub.stop().await;
}

/// Every open connection keeps its task in memory, idle or not: the task's
/// size is part of the per-connection memory budget (≤ 12 KB at 10,000).
/// The rare, large ways a command takes (auth, the writer, a snapshot) are
/// boxed so they cost memory only while they run.
#[tokio::test]
async fn a_connection_task_stays_small() {
    let hub = Hub::start(ADMIN, &[]).await;
    let shared = hub.running().hub.clone();
    let (server_side, _client_side) = tokio::io::duplex(64);
    let ws = WebSocketStream::from_raw_socket(
        server_side,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        None,
    )
    .await;
    let permit = shared
        .budget
        .clone()
        .try_acquire_owned()
        .expect("a place in the budget");
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().expect("address");
    let pending = shared
        .gate
        .admit_ws_pending(peer.ip())
        .expect("a place before CONNECT");
    let task = spa_hub::hub::connection::Connection::new(shared, ws, peer, pending).run(permit);
    let size = std::mem::size_of_val(&task);
    eprintln!("connection task: {size} bytes");
    assert!(size <= 2048, "a connection's task is {size} bytes");
    drop(task);
    hub.stop().await;
}
