//! Regression tests for the security review of issue #21, over real
//! sockets against the real daemon (in process, or a child process where
//! its memory is measured):
//!
//! - the login lockout cannot be raced: a concurrent burst with the right
//!   PIN in the middle gets no 200, and a guesser's checks per (name,
//!   address) stop at the limit;
//! - a burst of 200 and 500 logins with different names from different
//!   addresses keeps the hub's memory bounded (RSS from /proc);
//! - 600 idle sockets (one address, or many) and trickled headers and
//!   bodies do not keep a new client out;
//! - one credential cannot take the budget, and customers cannot take the
//!   staff and monitors' share;
//! - /api/login wants JSON; /healthz and /metrics follow SPA_METRICS_ALLOW;
//!   the Origin check ignores the Host header and knows SPA_PUBLIC_URL;
//! - the admin token is never logged; data and backups are private.
//!
//! The therapist's refused call and the role-cut acks are in
//! tests/security_acks.rs.

mod common;
mod faultkit;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultkit::ok;
use serde_json::json;
use spa_hub::client::{Client, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "hardening-test-admin-token-01";

type Hub = common::InProcessHub;

/// Connects from a chosen loopback source address.
async fn tcp_from(src: Ipv4Addr, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((src, 0)))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

/// Reads a response head and its Content-Length body (or to the end).
async fn read_response(s: &mut tokio::net::TcpStream, within: Duration) -> (u16, String) {
    let mut raw = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
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
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn http_from(src: Ipv4Addr, port: u16, request: &str) -> (u16, String) {
    let Ok(mut s) = tcp_from(src, port).await else {
        return (0, String::new());
    };
    if s.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    read_response(&mut s, Duration::from_secs(30)).await
}

fn login_request(name: &str, pin: &str) -> String {
    let body = json!({"name": name, "pin": pin}).to_string();
    format!(
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn login_from(src: Ipv4Addr, port: u16, name: &str, pin: &str) -> (u16, String) {
    http_from(src, port, &login_request(name, pin)).await
}

fn status_line(kb: &[(u16, usize)]) -> String {
    kb.iter()
        .map(|(s, n)| format!("{n}x{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tally(statuses: &[u16]) -> Vec<(u16, usize)> {
    let mut map = std::collections::BTreeMap::new();
    for s in statuses {
        *map.entry(*s).or_insert(0usize) += 1;
    }
    map.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_with_the_right_pin_in_the_middle_gets_no_200() {
    // Enough PIN-check places that only the lockout can stop the race.
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_LIGHTS", "off"),
            ("SPA_LOGIN_CONCURRENCY", "64"),
            ("SPA_MAX_PENDING_PER_ADDRESS", "64"),
        ],
    )
    .await;
    let port = hub.port();
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    ok(
        &admin,
        "staff.create",
        json!({"name": "Ada", "role": "admin", "pin": "4821"}),
    )
    .await;
    // 60 connections open first (the per-address cap raised for them), then
    // every request written at once: the right PIN is the 31st.
    let src = Ipv4Addr::new(127, 0, 5, 1);
    let mut sockets = Vec::new();
    for _ in 0..60 {
        sockets.push(tcp_from(src, port).await.expect("connect"));
    }
    let go = Arc::new(tokio::sync::Barrier::new(60));
    let mut tasks = Vec::new();
    for (i, mut s) in sockets.into_iter().enumerate() {
        let go = go.clone();
        let pin = if i == 30 {
            "4821".to_string()
        } else {
            format!("{:04}", 1000 + i)
        };
        tasks.push(tokio::spawn(async move {
            let req = login_request("ada", &pin);
            go.wait().await;
            if i == 30 {
                // In the middle of the burst, not at its head.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = s.write_all(req.as_bytes()).await;
            read_response(&mut s, Duration::from_secs(60)).await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    let right = statuses[30];
    let counts = tally(&statuses);
    println!(
        "60 concurrent logins, right PIN 31st: {}",
        status_line(&counts)
    );
    let checked = statuses.iter().filter(|s| matches!(s, 200 | 401)).count();
    assert!(
        checked <= spa_hub::lockout::PAIR_LIMIT as usize,
        "at most the limit's PIN checks ran: {counts:?}"
    );
    assert_ne!(right, 200, "the right PIN in the burst got in: {counts:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{counts:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 55);
    // The pair is locked now: the right PIN from that address waits.
    let (status, _) = login_from(src, port, "Ada", "4821").await;
    assert_eq!(status, 429);

    // What a guesser reaches: from one address, for one name, sequentially.
    let guesser = Ipv4Addr::new(127, 0, 5, 2);
    let started = Instant::now();
    let mut checks = 0;
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(3) {
        sent += 1;
        match login_from(guesser, port, "Ada", &format!("{:04}", 2000 + sent))
            .await
            .0
        {
            401 => checks += 1,
            429 => {}
            other => panic!("guess: {other}"),
        }
    }
    println!(
        "one address, one name: {checks} PIN checks out of {sent} requests in {:?}",
        started.elapsed()
    );
    assert_eq!(checks, spa_hub::lockout::PAIR_LIMIT as usize);
    // One address across names: the address's limit.
    let sprayer = Ipv4Addr::new(127, 0, 5, 3);
    let mut checks = 0;
    for n in 0..40 {
        if login_from(sprayer, port, &format!("Who{n}"), "0000")
            .await
            .0
            == 401
        {
            checks += 1;
        }
    }
    println!("one address, 40 names: {checks} PIN checks");
    assert_eq!(checks, spa_hub::lockout::ADDRESS_LIMIT as usize);
    // Ada's own address (she logs in there) still works after all that.
    let hers = Ipv4Addr::new(127, 0, 5, 9);
    assert_eq!(login_from(hers, port, "Ada", "4821").await.0, 200);
    hub.stop().await;
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `n` concurrent logins with different names, each from its own address;
/// returns (statuses, RSS peak growth in kB while they ran).
async fn login_burst(pid: u32, port: u16, n: usize, round: u8) -> (Vec<(u16, usize)>, u64) {
    let before = status_kb(pid, "VmRSS:");
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let go = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let go = go.clone();
        let src = Ipv4Addr::new(127, 10 + round, (i / 250) as u8, (i % 250) as u8 + 1);
        tasks.push(tokio::spawn(async move {
            let req = login_request(&format!("Guest{round}-{i}"), "123456");
            let Ok(mut s) = tcp_from(src, port).await else {
                go.wait().await;
                return 0;
            };
            go.wait().await;
            let _ = s.write_all(req.as_bytes()).await;
            read_response(&mut s, Duration::from_secs(60)).await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap_or(0));
    }
    // Let the checks still running finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let grown = peak.load(Ordering::Relaxed).saturating_sub(before);
    (tally(&statuses), grown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_with_different_names_keeps_memory_bounded() {
    let dir = tempfile::tempdir().expect("tmp");
    // Every connection reaches the login handler (the HTTP pool would
    // otherwise close part of a 500 burst at accept): the worst case for it.
    let daemon = common::Daemon::start(
        &dir.path().join("data"),
        &[("SPA_LIGHTS", "off"), ("SPA_MAX_HTTP_CONNECTIONS", "1024")],
    );
    let pid = daemon.child.id();
    let port = daemon.port;
    // Warm up (the dummy hash, the blocking pool's first threads).
    let _ = login_from(Ipv4Addr::new(127, 9, 0, 1), port, "Warm", "123456").await;
    let start_rss = status_kb(pid, "VmRSS:");
    for (round, n) in [(0u8, 200usize), (1, 500), (2, 500)] {
        let (statuses, grown_kb) = login_burst(pid, port, n, round).await;
        let after = status_kb(pid, "VmRSS:");
        println!(
            "{n} concurrent logins with different names: {} ; RSS peak growth {:.1} MB, \
             RSS after {:.1} MB (at start {:.1} MB)",
            status_line(&statuses),
            grown_kb as f64 / 1024.0,
            after as f64 / 1024.0,
            start_rss as f64 / 1024.0
        );
        assert!(
            grown_kb <= 64 * 1024,
            "{n} logins grew the hub by {grown_kb} kB (goal: <= 64 MB)"
        );
        if round > 0 {
            // The PIN checks' memory is allocated once and reused: later
            // bursts add (almost) nothing.
            assert!(
                grown_kb <= 8 * 1024,
                "burst {round} grew the hub by {grown_kb} kB again"
            );
        }
        let peak_since_start = status_kb(pid, "VmHWM:").saturating_sub(start_rss);
        println!(
            "  peak RSS since the warm-up: +{:.1} MB",
            peak_since_start as f64 / 1024.0
        );
        assert!(
            peak_since_start <= 64 * 1024,
            "+{peak_since_start} kB since start"
        );
        assert!(
            statuses.iter().all(|(s, _)| matches!(s, 401 | 503)),
            "only 401 (checked) and 503 (no PIN-check place): {statuses:?}"
        );
        assert!(statuses.iter().any(|(s, _)| *s == 503), "{statuses:?}");
    }
    // The hub still answers and logs in.
    assert_eq!(faultkit::healthz(port).0, 200);
    drop(daemon);
}

/// Whether `GET /healthz` from `src` answers 200, and how long it took.
async fn healthz_from(src: Ipv4Addr, port: u16) -> (bool, Duration) {
    let t = Instant::now();
    let (status, _) = http_from(
        src,
        port,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    (status == 200, t.elapsed())
}

/// A WebSocket from `src` that CONNECTs with `token`; how long it took.
async fn ws_connect_from(src: Ipv4Addr, port: u16, token: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let tcp = tcp_from(src, port).await.map_err(|e| e.to_string())?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .map_err(|e| e.to_string())?;
    use futures_util::{SinkExt, StreamExt};
    let _open = ws.next().await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
        "40{}",
        json!({ "token": token })
    )))
    .await
    .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(m))) if m.to_text().is_ok_and(|t| t.starts_with("40{")) => Ok(t.elapsed()),
        other => Err(format!("{other:?}")),
    }
}

/// Opens `n` idle TCP connections (nothing sent), `per_addr` per source
/// address starting at 127.`a`.0.1.
async fn idle_sockets(port: u16, n: usize, per_addr: usize, a: u8) -> Vec<tokio::net::TcpStream> {
    let mut out = Vec::new();
    for i in 0..n {
        let k = i / per_addr;
        let src = Ipv4Addr::new(127, a, (k / 250) as u8, (k % 250) as u8 + 1);
        if let Ok(s) = tcp_from(src, port).await {
            out.push(s);
        }
    }
    out
}

/// How many of `sockets` the hub still holds open (a read that would block).
async fn still_open(sockets: &mut [tokio::net::TcpStream]) -> usize {
    let mut open = 0;
    for s in sockets.iter_mut() {
        let mut b = [0u8; 64];
        if tokio::time::timeout(Duration::from_millis(2), s.read(&mut b))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_idle_sockets_do_not_keep_a_new_client_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(&dir.path().join("data"), &[("SPA_LIGHTS", "off")]);
    let port = daemon.port;
    let me = Ipv4Addr::LOCALHOST;
    for (label, per_addr, a) in [("one address", 600usize, 20u8), ("20 addresses", 30, 21)] {
        let mut idle = idle_sockets(port, 600, per_addr, a).await;
        // Let them all be quiet long enough to count as idle.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let held = still_open(&mut idle).await;
        let flood = Ipv4Addr::new(127, a, 0, 1);
        let (other_ok, other_wait) = healthz_from(me, port).await;
        let (same_ok, same_wait) = healthz_from(flood, port).await;
        let ws_other = ws_connect_from(Ipv4Addr::new(127, 0, 7, 1), port, common::ADMIN).await;
        let ws_same = ws_connect_from(flood, port, common::ADMIN).await;
        println!(
            "600 idle sockets from {label} (the hub keeps {held} of them open): \
             /healthz from another address {other_wait:?}, from the flooding one {same_wait:?}; \
             a WebSocket CONNECT from another address {ws_other:?}, from the flooding one {ws_same:?}"
        );
        assert!(other_ok && same_ok, "/healthz served");
        assert!(other_wait < Duration::from_secs(2) && same_wait < Duration::from_secs(2));
        assert!(
            ws_other.as_ref().is_ok_and(|d| *d < Duration::from_secs(2)),
            "{ws_other:?}"
        );
        assert!(
            ws_same.as_ref().is_ok_and(|d| *d < Duration::from_secs(2)),
            "{ws_same:?}"
        );
        let pool = if per_addr == 600 { 32 } else { 256 };
        assert!(
            held <= pool,
            "the hub holds {held} idle sockets (pool {pool})"
        );
        drop(idle);
    }
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_bodies_are_cut_and_do_not_keep_a_new_client_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(
        &dir.path().join("data"),
        &[("SPA_LIGHTS", "off"), ("SPA_REQUEST_TIMEOUT_MS", "1500")],
    );
    let port = daemon.port;
    let src = Ipv4Addr::new(127, 0, 8, 1);
    // 30 login bodies at one byte every 200 ms, 30 request heads likewise.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = tcp_from(src, port).await else {
                return (i, 0u16, Duration::ZERO);
            };
            let head = if i % 2 == 0 {
                "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
            } else {
                ""
            };
            let t = Instant::now();
            let _ = s.write_all(head.as_bytes()).await;
            let trickle = if i % 2 == 0 { b"{" } else { b"G" };
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(20) {
                if s.write_all(trickle).await.is_err() {
                    // Refused at once (the address is at its cap) or cut.
                    return (i, 0, t.elapsed());
                }
                match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return (i, 0, t.elapsed()),
                    Ok(Ok(n)) => {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let status = text
                            .split_whitespace()
                            .nth(1)
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(0);
                        return (i, status, t.elapsed());
                    }
                    Err(_) => {}
                }
            }
            (i, 1, t.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (served, wait) = healthz_from(Ipv4Addr::LOCALHOST, port).await;
    let ws = ws_connect_from(Ipv4Addr::new(127, 0, 8, 2), port, common::ADMIN).await;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    stop.store(true, Ordering::Relaxed);
    let slowest = results.iter().map(|r| r.2).max().unwrap_or_default();
    let bodies: Vec<u16> = results
        .iter()
        .filter(|r| r.0 % 2 == 0)
        .map(|r| r.1)
        .collect();
    println!(
        "60 trickling connections (30 bodies, 30 heads) from one address: all cut within {slowest:?} \
         (bodies: {}); meanwhile /healthz {wait:?}, a WebSocket CONNECT {ws:?} (total {:?})",
        status_line(&tally(&bodies)),
        started.elapsed()
    );
    assert!(served && wait < Duration::from_secs(2));
    assert!(
        ws.as_ref().is_ok_and(|d| *d < Duration::from_secs(2)),
        "{ws:?}"
    );
    assert!(
        results.iter().all(|r| r.1 != 1),
        "a trickling connection was never cut: {results:?}"
    );
    assert!(slowest < Duration::from_secs(5), "cut after {slowest:?}");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_credential_cannot_take_the_budget_and_monitors_keep_their_share() {
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_LIGHTS", "off"),
            ("SPA_MAX_CONNECTIONS", "40"),
            ("SPA_MAX_CONNECTIONS_PER_TOKEN", "8"),
            ("SPA_STAFF_RESERVE_PERCENT", "25"),
        ],
    )
    .await;
    let url = hub.url();
    let admin = Client::connect(&url, ADMIN).await.expect("admin");
    let service = ok(
        &admin,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await;
    let sid = service["service"]["id"].clone();
    let mut tickets = Vec::new();
    for i in 0..6 {
        let v = ok(
            &admin,
            "visit.create",
            json!({"customer_name": format!("C{i}"), "service_ids": [sid]}),
        )
        .await;
        tickets.push(v["customer_token"].as_str().expect("token").to_string());
    }
    // One ticket link opened 20 times: 8 get in.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match Client::connect(&url, &tickets[0]).await {
            Ok(c) => held.push(c),
            Err(ClientError::Refused(why)) => {
                assert!(why.contains("too many connections"), "{why}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!(
        "one customer link opened 20 times: {} in, {refused} refused",
        held.len()
    );
    assert_eq!((held.len(), refused), (8, 12));
    // More links: customers stop at 30 (40 minus 25 %).
    for t in &tickets[1..] {
        for _ in 0..8 {
            if let Ok(c) = Client::connect(&url, t).await {
                held.push(c);
            }
        }
    }
    println!("customers connected: {} of a budget of 40", held.len());
    assert_eq!(held.len(), 30);
    // A lobby monitor and staff still get in.
    let dev = ok(
        &admin,
        "device.pair",
        json!({"role": "monitor", "name": "Lobby"}),
    )
    .await;
    let monitor = Client::connect(&url, dev["token"].as_str().expect("token")).await;
    assert!(monitor.is_ok(), "the monitor connects: {:?}", monitor.err());
    let second_admin = Client::connect(&url, ADMIN).await;
    assert!(second_admin.is_ok());
    // A released place is free again for its link.
    held.swap_remove(0).close().await;
    let mut back = None;
    for _ in 0..50 {
        if let Ok(c) = Client::connect(&url, &tickets[0]).await {
            back = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back.is_some(), "the link's freed place is usable again");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_wants_json_and_monitoring_follows_its_allow_list() {
    let hub = Hub::start(
        ADMIN,
        &[("SPA_LIGHTS", "off"), ("SPA_METRICS_ALLOW", "10.0.0.0/8")],
    )
    .await;
    let port = hub.port();
    let me = Ipv4Addr::LOCALHOST;
    for ct in [
        "",
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
    ] {
        let body = "{\"name\":\"Ada\",\"pin\":\"1234\"}";
        let req = format!(
            "POST /api/login HTTP/1.1\r\nHost: x\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(http_from(me, port, &req).await.0, 415, "{ct:?}");
    }
    // Not counted towards any lock: the right shape is still checked.
    let (status, _) = login_from(me, port, "Ada", "1234").await;
    assert_eq!(status, 401);
    for path in ["/healthz", "/metrics"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, body) = http_from(me, port, &req).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("SPA_METRICS_ALLOW"));
    }
    hub.stop().await;
    // The default (loopback and private ranges) lets this machine in.
    let hub = Hub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let (status, _) = http_from(
        me,
        hub.port(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_check_ignores_the_host_header_and_knows_the_public_url() {
    let hub = Hub::start(
        ADMIN,
        &[
            ("SPA_LIGHTS", "off"),
            ("SPA_PUBLIC_URL", "https://front.spa.example"),
        ],
    )
    .await;
    let port = hub.port();
    let upgrade = |origin: &str, host: &str| {
        format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
        )
    };
    let me = Ipv4Addr::LOCALHOST;
    // A page on evil.example that names itself in Host used to pass.
    let (status, _) = http_from(me, port, &upgrade("http://evil.example", "evil.example")).await;
    assert_eq!(status, 403);
    for origin in [
        "https://front.spa.example".to_string(),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let (status, _) = http_from(me, port, &upgrade(&origin, "whatever")).await;
        assert_eq!(status, 101, "{origin}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_never_logged_and_data_and_backups_are_private() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    // A development directory made with a lax umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(data.join("notes.txt"), "x").expect("write");
        std::fs::set_permissions(
            data.join("notes.txt"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    let daemon = common::Daemon::start(&data, &[("SPA_ADMIN_TOKEN", ""), ("SPA_LOG", "info")]);
    let token = std::fs::read_to_string(data.join("admin-token")).expect("generated");
    let token = token.trim();
    assert!(token.len() >= 16);
    let c = Client::connect(&daemon.ws(), token)
        .await
        .expect("the generated token works");
    ok(&c, "room.create", json!({"name": "Lotus"})).await;
    drop(c);
    assert_eq!(daemon.stop(), Some(0));
    let stderr: String = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("stderr"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(
        stderr.contains("admin-token"),
        "the log names the file: {stderr}"
    );
    assert!(!stderr.contains(token), "the token is in the log: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        let mut seen = 0;
        for entry in walk(&data) {
            let m = mode(&entry);
            if entry.is_dir() {
                assert_eq!(m, 0o700, "{}", entry.display());
            } else {
                assert_eq!(m, 0o600, "{}", entry.display());
            }
            seen += 1;
        }
        assert!(seen > 3);
        let backup = dir.path().join("spa.backup");
        std::fs::write(&backup, "old").expect("old file");
        std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (code, out, err) = common::run_cli(
            &["backup", backup.to_str().expect("path")],
            &[("SPA_DATA_DIR", data.to_str().expect("path"))],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(mode(&backup), 0o600);
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}
