//! Security checks that tests/hub.rs (the role × command matrix, role
//! filtering of names, logout, device revocation, staff deactivation, the
//! basic PIN lockout, one foreign Origin) does not already make:
//!
//! - a customer token can neither act on nor read another visit (commands
//!   aimed at another visit's id, what its stream and snapshot show);
//! - a PIN or role change closes the staff member's live connections and
//!   refuses the old token; logging out one session leaves the others;
//! - an expired session: refused at CONNECT and its live connection
//!   closed (in process, with the clock's test seam), and the boundary at
//!   the pure level (`identify_in_state`);
//! - PIN brute force: case variants share one lock, other people's
//!   successful logins do not reset it, rotating the source address meets
//!   the name's own limit (127.0.0.x are all loopback), while the staff
//!   member's own address stays usable;
//! - cross-origin WebSockets: `null`, look-alike hosts, other ports and
//!   schemes are refused.

mod common;
mod faultkit;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use faultkit::{code, ok, small_floor};
use futures_util::StreamExt;
use serde_json::{json, Value};
use spa_hub::client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "security-test-admin-token-01";
const T: Duration = Duration::from_secs(10);

type Hub = common::InProcessHub;

/// An HTTP request from a chosen loopback source address → (status, body).
async fn http_from(src: Ipv4Addr, port: u16, request: &str) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((src, 0)))
        .expect("bind the source address");
    let mut s = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    // Read the head and a Content-Length body (a 403 or 101 keeps the
    // connection open), or to the end.
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if head.starts_with("http/1.1 101") || len.is_some_and(|l| body.len() >= l) {
                break;
            }
        }
    }
    let out = String::from_utf8_lossy(&raw).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

async fn login_from(src: Ipv4Addr, port: u16, name: &str, pin: &str) -> (u16, String) {
    let body = json!({"name": name, "pin": pin}).to_string();
    let req = format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_from(src, port, &req).await
}

async fn login(port: u16, name: &str, pin: &str) -> String {
    let (status, body) = login_from(Ipv4Addr::LOCALHOST, port, name, pin).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// Waits for the server to close `c`; returns the close frame's code.
async fn closed_with(c: &mut Client) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        if let Some((code, _)) = c.closed.lock().ok().and_then(|x| x.clone()) {
            return Some(code);
        }
        match c.next_event(Duration::from_millis(100)).await {
            Err(spa_hub::client::ClientError::Closed) => {
                return c.closed.lock().ok().and_then(|x| x.clone()).map(|x| x.0)
            }
            _ => continue,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_token_cannot_act_on_or_read_another_visit() {
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    let (svc, _mia) = small_floor(&admin, "Mia", "2468").await;
    ok(&admin, "drawer.open", json!({"float_cents": 0})).await;
    let sid = svc["service"]["id"].clone();
    let a = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Alice Able", "phone": "0900111222", "service_ids": [sid]}),
    )
    .await;
    let b = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Bob Baker", "phone": "0900333444", "notes": "bob-secret-note", "service_ids": [sid]}),
    )
    .await;
    let (a_id, b_id) = (
        a["visit"]["id"].as_u64().expect("id"),
        b["visit"]["id"].as_u64().expect("id"),
    );
    let b_number = b["visit"]["number"].as_str().expect("number").to_string();
    let mut alice = Client::connect(&hub.url(), a["customer_token"].as_str().expect("token"))
        .await
        .expect("alice");
    let snap = alice.next_event(T).await.expect("snapshot");
    assert_eq!(snap.name, "snapshot");
    assert_eq!(snap.data["visit"]["id"], json!(a_id), "her own visit");
    let seq0 = snap.data["seq"].as_u64().expect("seq");

    // Every visit command, aimed at Bob's visit (and at her own): forbidden.
    let target = json!({"visit_id": b_id});
    let aimed: Vec<(&str, Value)> = vec![
        ("visit.call", target.clone()),
        ("visit.start", target.clone()),
        ("visit.finish", target.clone()),
        ("visit.extend", json!({"visit_id": b_id, "minutes": 10})),
        ("visit.undo", target.clone()),
        ("visit.leave", json!({"visit_id": b_id, "reason": "bye"})),
        ("visit.void", json!({"visit_id": b_id, "reason": "bye"})),
        (
            "visit.checkout",
            json!({"visit_id": b_id, "request_id": "x", "payments": [{"method": "cash", "amount_cents": 5000}]}),
        ),
        (
            "visit.refund",
            json!({"visit_id": b_id, "amount_cents": 1, "method": "cash", "reason": "x"}),
        ),
        (
            "visit.retip",
            json!({"visit_id": b_id, "tip_split": [], "reason": "x"}),
        ),
        ("visit.leave", json!({"visit_id": a_id, "reason": "my own"})),
        (
            "visit.create",
            json!({"customer_name": "Eve", "service_ids": [sid]}),
        ),
        ("report.day", json!({})),
        ("drawer.close", json!({"counted": {}, "force": true})),
    ];
    for (name, args) in &aimed {
        let ack = alice.call(name, args.clone()).await.expect("ack");
        assert_eq!(code(&ack), "forbidden", "customer {name} {args}: {ack}");
        let text = ack.to_string();
        assert!(!text.contains("Bob") && !text.contains(&b_number), "{text}");
    }
    // Only the customer's own view on sync.
    let s = alice
        .call("sync", json!({"visit_id": b_id}))
        .await
        .expect("ack");
    let resync = alice.wait_for("snapshot", T).await.expect("snapshot");
    assert!(
        code(&s) == "ok" || code(&s) == "invalid",
        "sync with a foreign visit id: {s}"
    );
    if code(&s) == "ok" {
        assert_eq!(
            resync.data["visit"]["id"],
            json!(a_id),
            "still only her own visit"
        );
    }

    // Bob's visit goes through the floor; Alice's stream shows none of it.
    let v = json!({"visit_id": b_id});
    ok(&admin, "visit.call", v.clone()).await;
    ok(&admin, "visit.start", v.clone()).await;
    ok(&admin, "visit.finish", v.clone()).await;
    let last = ok(
        &admin,
        "visit.checkout",
        json!({"visit_id": b_id, "request_id": "b1", "tip_cents": 777,
            "payments": [{"method": "card", "amount_cents": 5777, "reference": "slip-bob-77"}]}),
    )
    .await["seq"]
        .as_u64()
        .expect("seq");
    let mut seen = Vec::new();
    let mut text = String::new();
    loop {
        let e = alice.next_event(T).await.expect("alice keeps receiving");
        text.push_str(&format!("{} {}\n", e.name, e.data));
        if e.name == "visit.updated" {
            assert_eq!(
                e.data["visit"]["id"],
                json!(a_id),
                "a foreign visit.updated: {}",
                e.data
            );
        }
        if let Some(s) = e.data.get("seq").and_then(Value::as_u64) {
            seen.push(s);
            if s >= last {
                break;
            }
        }
    }
    for secret in [
        "Bob Baker",
        "0900333444",
        "bob-secret-note",
        "slip-bob-77",
        "5777",
        "receipt",
        "payments",
    ] {
        assert!(!text.contains(secret), "Alice saw {secret}:\n{text}");
    }
    seen.dedup();
    let first = seen[0];
    assert!(first > seq0);
    assert_eq!(
        seen,
        (first..=last).collect::<Vec<_>>(),
        "gap-free with seq markers"
    );
    // A customer token opens no report or logout.
    let bearer = format!(
        "Authorization: Bearer {}",
        a["customer_token"].as_str().expect("t")
    );
    let (status, _) = http_from(
        Ipv4Addr::LOCALHOST,
        hub.port(),
        &format!(
            "GET /api/reports/day.csv HTTP/1.1\r\nHost: x\r\n{bearer}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(
        status == 401 || status == 403,
        "day.csv with a customer token: {status}"
    );
    // Nothing the customer sent changed anything.
    let s = admin.call("sync", json!({})).await.expect("sync");
    assert_eq!(s["data"]["seq"], json!(last));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_or_role_change_ends_sessions_and_logout_ends_only_its_own() {
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let port = hub.port();
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    let cass = ok(
        &admin,
        "staff.create",
        json!({"name": "Cass", "role": "cashier", "pin": "1357"}),
    )
    .await["staff"]["id"]
        .clone();
    // Two sessions (two stations); logging out one leaves the other.
    let (s1, s2) = (
        login(port, "Cass", "1357").await,
        login(port, "Cass", "1357").await,
    );
    let mut c1 = Client::connect(&hub.url(), &s1).await.expect("s1");
    let mut c2 = Client::connect(&hub.url(), &s2).await.expect("s2");
    let (status, _) = http_from(
        Ipv4Addr::LOCALHOST,
        port,
        &format!("POST /api/logout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s1}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        closed_with(&mut c1).await,
        Some(1008),
        "the logged-out session's socket closes"
    );
    assert!(Client::connect(&hub.url(), &s1).await.is_err());
    let ack = c2
        .call("sync", json!({}))
        .await
        .expect("the other session still works");
    assert_eq!(code(&ack), "ok");
    // A second logout with the same token is refused.
    let (status, _) = http_from(
        Ipv4Addr::LOCALHOST,
        port,
        &format!("POST /api/logout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s1}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 401, "logout with a dead token");

    // A PIN change: live sockets closed, the old tokens refused.
    ok(
        &admin,
        "staff.update",
        json!({"staff_id": cass, "pin": "8642"}),
    )
    .await;
    assert_eq!(
        closed_with(&mut c2).await,
        Some(1008),
        "PIN change closes the live session"
    );
    assert!(
        Client::connect(&hub.url(), &s2).await.is_err(),
        "old token refused after a PIN change"
    );
    assert_eq!(
        login_from(Ipv4Addr::LOCALHOST, port, "Cass", "1357")
            .await
            .0,
        401,
        "the old PIN"
    );
    // A role change: the same.
    let s3 = login(port, "Cass", "8642").await;
    let mut c3 = Client::connect(&hub.url(), &s3).await.expect("s3");
    ok(
        &admin,
        "staff.update",
        json!({"staff_id": cass, "role": "therapist"}),
    )
    .await;
    assert_eq!(
        closed_with(&mut c3).await,
        Some(1008),
        "role change closes the live session"
    );
    assert!(
        Client::connect(&hub.url(), &s3).await.is_err(),
        "old token refused after a role change"
    );
    // A name change alone keeps the session.
    let s4 = login(port, "Cass", "8642").await;
    let c4 = Client::connect(&hub.url(), &s4).await.expect("s4");
    ok(
        &admin,
        "staff.update",
        json!({"staff_id": cass, "name": "Cassie"}),
    )
    .await;
    let ack = c4
        .call("sync", json!({}))
        .await
        .expect("a rename keeps the session");
    assert_eq!(code(&ack), "ok");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused_and_its_live_connection_closed() {
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let port = hub.port();
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    ok(
        &admin,
        "staff.create",
        json!({"name": "Cass", "role": "cashier", "pin": "1357"}),
    )
    .await;
    let (status, body) = login_from(Ipv4Addr::LOCALHOST, port, "Cass", "1357").await;
    assert_eq!(status, 200);
    let session: Value = serde_json::from_str(&body).expect("json");
    let token = session["token"].as_str().expect("token").to_string();
    let expires_at = session["expires_at"].as_i64().expect("expires_at");
    let clock = hub.running().hub.clock.clone();
    // Just before the end: accepted, and closed when the end comes.
    let now = clock.now().ms;
    clock.shift(expires_at - now - 1_500);
    let mut live = Client::connect(&hub.url(), &token)
        .await
        .expect("still valid 1.5 s before the end");
    let t = std::time::Instant::now();
    let code_at_expiry = closed_with(&mut live).await;
    assert_eq!(
        code_at_expiry,
        Some(1008),
        "the live connection closes at expiry"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // After the end: refused at CONNECT; the admin token does not expire.
    assert!(matches!(
        Client::connect(&hub.url(), &token).await,
        Err(spa_hub::client::ClientError::Refused(_))
    ));
    assert_eq!(
        code(&admin.call("sync", json!({})).await.expect("ack")),
        "ok"
    );

    // The boundary, at the pure level: valid until `expires_at`, not at it.
    let hash = spa_hub::auth::hash_token(&token);
    let state = hub
        .running()
        .hub
        .writer
        .read(|s, _| s.clone())
        .await
        .expect("state");
    let day = clock.now().day;
    use spa_hub::hub::connection::identify_in_state;
    let grace = spa_hub::hub::RECEIPT_GRACE_MS;
    assert!(identify_in_state(&state, &hash, expires_at - 1, grace, day).is_some());
    assert!(identify_in_state(&state, &hash, expires_at, grace, day).is_none());
    assert!(identify_in_state(&state, &hash, i64::MAX, grace, day).is_none());
    assert!(identify_in_state(&state, "", 0, grace, day).is_none());
    assert!(
        identify_in_state(&state, &spa_hub::auth::hash_token(ADMIN), 0, grace, day).is_none(),
        "the admin token is not a state credential"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_brute_force_hits_the_lockout_whatever_the_trick() {
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let port = hub.port();
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    for (name, role, pin) in [
        ("Mia", "therapist", "2468"),
        ("Eve", "cashier", "1111"),
        ("Kim", "cashier", "2222"),
    ] {
        ok(
            &admin,
            "staff.create",
            json!({"name": name, "role": role, "pin": pin}),
        )
        .await;
    }
    // Mia's own tablet has logged in before: it stays usable below.
    let tablet = Ipv4Addr::new(127, 0, 9, 9);
    assert_eq!(login_from(tablet, port, "Mia", "2468").await.0, 200);
    // Eve (an insider) guesses Mia's PIN, alternating case and her own
    // successful logins (which must not reset Mia's count), from rotating
    // loopback addresses (so the per-address and per-pair locks do not stop
    // her): the name's own limit does.
    let mut guesses = 0;
    let mut locked_after = None;
    for (i, pin) in (0..40).map(|n| format!("{:04}", 1000 + n)).enumerate() {
        let src = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        let name = ["mia", "MIA", "Mia", " mia ", "mIa"][i % 5];
        let (status, body) = login_from(src, port, name, &pin).await;
        guesses += 1;
        match status {
            401 => {}
            429 => {
                assert!(body.contains("rate_limited"));
                locked_after = Some(guesses - 1);
                break;
            }
            other => panic!("guess {pin} as {name:?}: {other} {body}"),
        }
        let (s, _) = login_from(Ipv4Addr::new(127, 0, 1, 1), port, "Eve", "1111").await;
        assert_eq!(s, 200, "Eve's own login");
    }
    assert_eq!(
        locked_after,
        Some(spa_hub::lockout::NAME_LIMIT as usize),
        "the name locked after its limit, whatever the spelling and address"
    );
    // Mia is locked from any address she never used, even with her right PIN…
    assert_eq!(
        login_from(Ipv4Addr::new(127, 0, 2, 1), port, "Mia", "2468")
            .await
            .0,
        429
    );
    // …but the stranger cannot lock her out of her own tablet…
    assert_eq!(login_from(tablet, port, "Mia", "2468").await.0, 200);
    // …and Kim, from a clean address, is not locked.
    assert_eq!(
        login_from(Ipv4Addr::new(127, 0, 2, 2), port, "Kim", "2222")
            .await
            .0,
        200
    );
    // One address guessing across names is locked for every name.
    let src = Ipv4Addr::new(127, 0, 3, 1);
    for n in 0..spa_hub::lockout::ADDRESS_LIMIT {
        assert_eq!(
            login_from(src, port, &format!("Nobody{n}"), "0000").await.0,
            401
        );
    }
    assert_eq!(
        login_from(src, port, "Kim", "2222").await.0,
        429,
        "the address is locked"
    );
    // Malformed logins are refused, never crash, never count as a success.
    for body in [
        "{}",
        "[]",
        "{\"name\":1,\"pin\":2}",
        "{\"name\":\"Kim\"}",
        "null",
    ] {
        let req = format!(
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, _) = http_from(Ipv4Addr::new(127, 0, 4, 1), port, &req).await;
        assert_eq!(status, 400, "{body}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_websockets_are_refused_in_every_disguise() {
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let port = hub.port();
    let upgrade = |origin: &str| {
        format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
        )
    };
    let refused = [
        "null".to_string(),
        "http://evil.example".into(),
        format!("http://127.0.0.1:{port}.evil.example"),
        format!("http://evil.example/127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://127.0.0.1".into(),
        format!("file://127.0.0.1:{port}"),
        format!("chrome-extension://127.0.0.1:{port}"),
        format!("ws://evil.example:{port}"),
        format!("http://user@127.0.0.1:{port}"),
        String::new(),
    ];
    for origin in &refused {
        let (status, _) = http_from(Ipv4Addr::LOCALHOST, port, &upgrade(origin)).await;
        assert_eq!(status, 403, "Origin {origin:?} must be refused");
    }
    // The hub's own origin (any case of the scheme/host) is allowed and works.
    let own = format!("http://127.0.0.1:{port}");
    let (status, _) = http_from(Ipv4Addr::LOCALHOST, port, &upgrade(&own)).await;
    assert_eq!(status, 101);
    // And a refused origin never reaches the budget or a WebSocket.
    let (_, body) = http_from(
        Ipv4Addr::LOCALHOST,
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(body.contains("spa_hub_rejected_upgrades_total 0"), "{body}");
    // A cross-origin client that ignores the 403 gets no socket.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"),
    )
    .expect("request");
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        Err(e) => panic!("unexpected {e}"),
        Ok((mut ws, _)) => {
            let first = ws.next().await;
            panic!("a cross-origin WebSocket was opened: {first:?}");
        }
    }
    let _ = Message::text("");
    hub.stop().await;
}
