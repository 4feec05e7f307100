//! The counter over the wire (#17): receipts on a fake ESC/POS printer on
//! 127.0.0.1 that records the bytes (the text, the cut, the drawer kick on
//! cash, the Z report), a printer that never answers, one that is not
//! there, one that stalls mid-receipt and one that comes back (the acks do
//! not wait; the cashier is told; Retry sends what is pending), the receipt
//! page (`/receipt/<id>`: staff only, 80 mm and A4, small), a bad currency
//! at start-up (exit 78), products, gift cards and receipts surviving a
//! restart, and a retried checkout showing its gift card's code again.

mod common;
mod faultkit;

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultkit::{ok, small_floor};
use serde_json::{json, Value};
use spa_hub::client::Client;

const CUT: &[u8] = &[0x1d, 0x56, 0x42, 0x03];
const KICK: &[u8] = &[0x1b, 0x70, 0x00, 0x19, 0xfa];

/// What a fake printer received: every connection's bytes, in order.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// A fake ESC/POS printer: every connection's bytes, in order.
fn fake_printer() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    (addr, printer_on(listener))
}

/// A working printer on `listener`: it reads each connection to its end,
/// records the bytes and closes (which is how the hub knows it printed).
fn printer_on(listener: TcpListener) -> Received {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            if let Ok(mut g) = sink.lock() {
                g.push(bytes);
            }
        }
    });
    got
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn wait_for(got: &Received, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = got.lock().map(|g| g.clone()).unwrap_or_default();
        if jobs.len() >= n || Instant::now() > deadline {
            return jobs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A served visit of `svc`, with a product on the shelf and a drawer open.
async fn counter_floor(admin: &Client) -> (u64, u64) {
    let (svc, _tess) = small_floor(admin, "Tess", "1234").await;
    let product = ok(
        admin,
        "product.create",
        json!({"name": "Lavender oil", "sku": "LAV-50", "price_cents": 1299, "tax_rate_bp": 1900, "stock": 5}),
    )
    .await["product"]["id"]
        .as_u64()
        .expect("product");
    let v = ok(
        admin,
        "visit.create",
        json!({"customer_name": "Ann", "service_ids": [svc["service"]["id"]]}),
    )
    .await["visit"]["id"]
        .as_u64()
        .expect("visit");
    for step in ["visit.call", "visit.start", "visit.finish"] {
        ok(admin, step, json!({"visit_id": v})).await;
    }
    ok(admin, "drawer.open", json!({"float_cents": 10_000})).await;
    (v, product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_the_z_report_print_with_cut_and_drawer_kick() {
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, got) = fake_printer();
    let daemon = common::Daemon::start(&dir.path().join("data"), &[("SPA_RECEIPT_PRINTER", &addr)]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (v, product) = counter_floor(&admin).await;
    // Cash: printed with the drawer kick.
    let paid = ok(
        &admin,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "items": [{"product_id": product, "qty": 1}],
               "payments": [{"method": "cash", "amount_cents": 7000}]}),
    )
    .await;
    let number = paid["receipt"]["sale"]["number"]
        .as_str()
        .expect("number")
        .to_string();
    let jobs = wait_for(&got, 1);
    assert_eq!(jobs.len(), 1, "one receipt printed");
    let text = String::from_utf8_lossy(&jobs[0]);
    assert!(
        text.contains(&number) && text.contains("Lavender oil") && text.contains("62.99 USD"),
        "{text}"
    );
    assert!(text.contains("Tax 19%"), "{text}");
    assert!(has(&jobs[0], CUT), "the cut");
    assert!(
        jobs[0].ends_with(KICK),
        "the drawer kick after the cut on cash"
    );
    // Card: no kick.
    ok(
        &admin,
        "sale.checkout",
        json!({"request_id": "s1", "items": [{"product_id": product, "qty": 1}], "payments": [{"method": "card", "amount_cents": 1299}]}),
    )
    .await;
    let jobs = wait_for(&got, 2);
    assert!(
        has(&jobs[1], CUT) && !has(&jobs[1], KICK),
        "a card sale opens no drawer"
    );
    // The Z report prints when the drawer closes.
    ok(
        &admin,
        "drawer.close",
        json!({"counted": {"cash": 16299, "card": 1299}}),
    )
    .await;
    let jobs = wait_for(&got, 3);
    let z = String::from_utf8_lossy(&jobs[2]);
    assert!(
        z.contains("Z REPORT") && z.contains("16299 / 16299 / 0"),
        "{z}"
    );
    let (status, body) = common::http(
        daemon.port,
        "GET",
        "/api/printer",
        &[("Authorization", &format!("Bearer {}", common::ADMIN))],
        "",
    )
    .expect("status");
    let s: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (
            status,
            s["printer"]["printed"].as_u64(),
            s["printer"]["ok"].as_bool()
        ),
        (200, Some(3), Some(true)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_that_never_answers_or_is_not_there_delays_no_ack() {
    // Bound, never accepted, never read: connections hang in the backlog.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    // A port with nobody on it.
    let gone = TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr").to_string();
    drop(gone);
    for (addr, reported) in [(silent_addr, false), (gone_addr, true)] {
        let dir = tempfile::tempdir().expect("tmp");
        let daemon =
            common::Daemon::start(&dir.path().join("data"), &[("SPA_RECEIPT_PRINTER", &addr)]);
        let admin = Client::connect(&daemon.ws(), common::ADMIN)
            .await
            .expect("admin");
        let (v, product) = counter_floor(&admin).await;
        let mut slowest = Duration::ZERO;
        for k in 0..5 {
            let started = Instant::now();
            let args = if k == 0 {
                (
                    "visit.checkout",
                    json!({"visit_id": v, "request_id": "r", "payments": [{"method": "cash", "amount_cents": 5000}]}),
                )
            } else {
                (
                    "sale.checkout",
                    json!({"request_id": format!("s{k}"), "items": [{"product_id": product, "qty": 1}], "payments": [{"method": "cash", "amount_cents": 1299}]}),
                )
            };
            ok(&admin, args.0, args.1).await;
            slowest = slowest.max(started.elapsed());
        }
        assert!(
            slowest < Duration::from_millis(500),
            "{addr}: an ack took {slowest:?}"
        );
        // A printer that is not there is reported on the cashier's screen
        // (`GET /api/printer`) at its first failed try. (The silent one took
        // the bytes into its backlog and is reported after the write
        // timeout, as a stalled printer is: see the next test.)
        if reported {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = Value::Null;
            while Instant::now() < deadline {
                let (_, body) = common::http(
                    daemon.port,
                    "GET",
                    "/api/printer",
                    &[("Authorization", &format!("Bearer {}", common::ADMIN))],
                    "",
                )
                .expect("status");
                last = serde_json::from_str(&body).unwrap_or(Value::Null);
                if last["printer"]["last_error"].is_string() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(
                last["printer"]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not printed")),
                "{addr}: {last}"
            );
        }
    }
    drop(silent);
}

/// A printer that takes the first `part` bytes of its first connection and
/// then stalls: reads no more and keeps the socket open until `resume` is
/// sent. Then it drops that connection and works (`printer_on`).
fn stalling_printer(part: usize) -> (String, Received, std::sync::mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        if let Ok((mut first, _)) = listener.accept() {
            let mut head = vec![0u8; part];
            let _ = first.read_exact(&mut head);
            // Stalled (paper out): holds the connection, reads nothing more.
            let _ = resumed.recv_timeout(Duration::from_secs(60));
            drop(first);
        }
        let working = printer_on(listener);
        // Hand the working printer's jobs to the test's list.
        loop {
            std::thread::sleep(Duration::from_millis(10));
            let jobs: Vec<Vec<u8>> = working
                .lock()
                .map(|mut g| g.drain(..).collect())
                .unwrap_or_default();
            if let Ok(mut g) = sink.lock() {
                g.extend(jobs);
            }
        }
    });
    (addr, got, resume)
}

/// `GET path` with `token` as the bearer: (status, JSON).
fn get_json(port: u16, path: &str, token: &str) -> (u16, Value) {
    let (status, body) = common::http(
        port,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .expect("http");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls `GET /api/printer` until `done` holds (or 20 s): the last state.
async fn printer_until(port: u16, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = get_json(port, "/api/printer", token);
        if done(&s["printer"]) || Instant::now() > deadline {
            return s["printer"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cashier's session token (`POST /api/login`).
async fn cashier_token(admin: &Client, port: u16) -> String {
    ok(
        admin,
        "staff.create",
        json!({"name": "Cass", "role": "cashier", "pin": "4321"}),
    )
    .await;
    let (_, login) = common::http(
        port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        r#"{"name":"Cass","pin":"4321"}"#,
    )
    .expect("login");
    let v: Value = serde_json::from_str(&login).expect("json");
    v["token"].as_str().expect("token").to_string()
}

fn post_retry(port: u16, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, body) =
        common::http(port, "POST", "/api/printer/retry", &headers, "").expect("http");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A hub printing to `printer`, a visit paid by `method` (the ack within
/// 0.5 s, whatever the printer does): the hub, a cashier's token, the
/// receipt's number and when the checkout was sent.
async fn paid_with_printer(
    dir: &std::path::Path,
    printer: &str,
    method: &str,
) -> (common::Daemon, String, String, Instant) {
    let daemon = common::Daemon::start(&dir.join("data"), &[("SPA_RECEIPT_PRINTER", printer)]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (v, _product) = counter_floor(&admin).await;
    let token = cashier_token(&admin, daemon.port).await;
    let started = Instant::now();
    let paid = ok(
        &admin,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r", "payments": [{"method": method, "amount_cents": 5000}]}),
    )
    .await;
    let acked = started.elapsed();
    assert!(acked < Duration::from_millis(500), "the ack took {acked:?}");
    let number = paid["receipt"]["sale"]["number"]
        .as_str()
        .expect("number")
        .to_string();
    (daemon, token, number, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_that_stalls_mid_receipt_is_reported_after_the_write_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, got, resume) = stalling_printer(16);
    let (daemon, token, number, started) = paid_with_printer(dir.path(), &addr, "cash").await;
    // The kernel took the whole receipt (it is far smaller than the socket
    // buffers), so only the printer's silence tells: reported once the
    // 5 s write timeout is over, not before.
    let s = printer_until(daemon.port, &token, |p| {
        p["not_printed"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let reported = started.elapsed();
    assert!(
        (Duration::from_millis(4_500)..Duration::from_secs(10)).contains(&reported),
        "reported after {reported:?}: {s}"
    );
    assert_eq!(
        (s["ok"].as_bool(), s["printed"].as_u64(), &s["not_printed"]),
        (Some(false), Some(0), &json!([number])),
        "{s}"
    );
    assert!(
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("did not finish it within 5 s")),
        "{s}"
    );
    // `/healthz` says the same (for the monitoring, from 127.0.0.1).
    let (status, health) = common::http_get(daemon.port, "/healthz").expect("healthz");
    let health: Value = serde_json::from_str(&health).expect("json");
    assert_eq!(status, 200);
    assert_eq!(
        (
            health["printer"]["ok"].as_bool(),
            &health["printer"]["not_printed"]
        ),
        (Some(false), &json!([number])),
        "{health}"
    );
    // It was not resent by itself (the printer might still print it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(got.lock().map(|g| g.is_empty()).unwrap_or(false));
    // The paper is back: Retry (a staff token) prints it, once.
    let _ = resume.send(());
    assert_eq!(post_retry(daemon.port, None).0, 401);
    let (status, queued) = post_retry(daemon.port, Some(&token));
    assert_eq!((status, &queued["queued"]), (200, &json!(1)), "{queued}");
    let jobs = wait_for(&got, 1);
    assert_eq!(jobs.len(), 1);
    let text = String::from_utf8_lossy(&jobs[0]);
    assert!(text.contains(&number), "{text}");
    assert!(jobs[0].ends_with(KICK), "the whole receipt, the kick last");
    let s = printer_until(daemon.port, &token, |p| p["printed"] == 1).await;
    assert_eq!(
        (s["ok"].as_bool(), &s["not_printed"]),
        (Some(true), &json!([])),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_sends_the_pending_receipt_to_a_printer_that_is_back() {
    let dir = tempfile::tempdir().expect("tmp");
    // The printer's address, with nobody on it yet (switched off).
    let off = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = off.local_addr().expect("addr");
    drop(off);
    let (daemon, token, number, _) = paid_with_printer(dir.path(), &addr.to_string(), "card").await;
    // Told at the first refused try; the second (2 s later) fails too and
    // the job waits 10 s for its last.
    let s = printer_until(daemon.port, &token, |p| {
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("trying again in 10 s"))
    })
    .await;
    let last = s["last_error"].as_str().unwrap_or("");
    assert!(
        last.contains(&number) && last.contains("not printed yet") && s["ok"] == false,
        "{s}"
    );
    // Switched on; the cashier presses Retry: it prints now, not 10 s later.
    let got = printer_on(TcpListener::bind(addr).expect("the printer's port again"));
    let pressed = Instant::now();
    let (status, _) = post_retry(daemon.port, Some(&token));
    assert_eq!(status, 200);
    let jobs = wait_for(&got, 1);
    let took = pressed.elapsed();
    assert_eq!(jobs.len(), 1);
    assert!(String::from_utf8_lossy(&jobs[0]).contains(&number));
    assert!(
        took < Duration::from_secs(3),
        "printed {took:?} after Retry"
    );
    let s = printer_until(daemon.port, &token, |p| p["printed"] == 1).await;
    assert_eq!(
        (s["ok"].as_bool(), &s["last_error"]),
        (Some(true), &Value::Null),
        "{s}"
    );
}

/// `counter_floor`'s visit paid by card with two bottles of its oil
/// (receipt R-000001); the visit and the product.
async fn paid_with_two_oils(admin: &Client) -> (u64, u64) {
    let (v, product) = counter_floor(admin).await;
    ok(
        admin,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r1", "items": [{"product_id": product, "qty": 2}],
               "payments": [{"method": "card", "amount_cents": 7598}]}),
    )
    .await;
    (v, product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receipt_page_is_for_staff_small_and_printable() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = common::Daemon::start(&dir.path().join("data"), &[("SPA_CURRENCY", "KWD")]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (v, _) = paid_with_two_oils(&admin).await;
    let bearer = format!("Bearer {}", common::ADMIN);
    let get = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        common::http(daemon.port, "GET", path, &headers, "").expect("http")
    };
    let (status, page) = get(&format!("/receipt/{v}"), Some(&bearer));
    assert_eq!(status, 200, "{page}");
    assert!(page.len() < 30 * 1024, "{} bytes", page.len());
    assert!(
        page.contains("R-000001")
            && page.contains("Lavender oil")
            && page.contains("7.598 KWD")
            && page.contains("0.415 KWD"),
        "{page}"
    );
    assert!(!page.contains("<script"));
    let (_, a4) = get(&format!("/receipt/{v}?paper=a4"), Some(&bearer));
    assert!(a4.contains("receipt-a4.css"));
    let (status, css) = get("/assets/receipt.css", None);
    assert!(status == 200 && css.contains("80mm"));
    assert_eq!(get(&format!("/receipt/{v}"), None).0, 401);
    assert_eq!(get(&format!("/receipt/{v}"), Some("Bearer nope")).0, 401);
    assert_eq!(get("/receipt/99999", Some(&bearer)).0, 404);
    assert_eq!(
        get(&format!("/receipt/{v}?paper=letter"), Some(&bearer)).0,
        400
    );
    // A therapist may not read receipts.
    let (_, login) = common::http(
        daemon.port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        r#"{"name":"Tess","pin":"1234"}"#,
    )
    .expect("login");
    let token: Value = serde_json::from_str(&login).expect("json");
    let t = format!("Bearer {}", token["token"].as_str().expect("token"));
    assert_eq!(get(&format!("/receipt/{v}"), Some(&t)).0, 403);
}

/// Weeks later the receipts have left memory (the start-up archive pass),
/// yet the receipt page prints them from the archive with the refund made
/// that day, and a refund per line brings them back, capped by what the
/// first refund left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weeks_later_receipts_are_archived_yet_printed_and_refunded() {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    // In this process, so that its clock can be shifted.
    let first = common::InProcessHub::start_on(&data, common::ADMIN, &[]).await;
    first.running().hub.clock.shift(-20 * DAY);
    let admin = first.admin().await;
    let (v, product) = paid_with_two_oils(&admin).await;
    let refund = ok(
        &admin,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1, "qty": 1}], "reason": "leaking"}),
    )
    .await;
    let refund_id = refund["receipt"]["id"].as_u64().expect("refund receipt");
    let sale = ok(
        &admin,
        "sale.checkout",
        json!({"request_id": "s1", "items": [{"product_id": product, "qty": 1}],
               "payments": [{"method": "card", "amount_cents": 1299}]}),
    )
    .await["sale_id"]
        .as_u64()
        .expect("sale");
    admin.close().await;
    first.stop().await;

    // Twenty days on: the start-up pass takes them out of memory.
    let second = common::InProcessHub::start_on(&data, common::ADMIN, &[]).await;
    let mut gone = false;
    for _ in 0..250 {
        gone = second
            .running()
            .hub
            .writer
            .read(|s, _| s.till.receipts.is_empty() && s.visits.is_empty())
            .await
            .expect("read");
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the old receipts are still in memory");
    let bearer = format!("Bearer {}", common::ADMIN);
    let port = second.port();
    let get = |path: &str| {
        common::http(port, "GET", path, &[("Authorization", bearer.as_str())], "").expect("http")
    };
    let (status, page) = get(&format!("/receipt/{v}"));
    assert_eq!(status, 200, "{page}");
    for words in ["R-000001", "Lavender oil", "75.98", "R-000002", "A-001"] {
        assert!(
            page.contains(words),
            "{words} not on the archived receipt: {page}"
        );
    }
    let (status, page) = get(&format!("/receipt/{refund_id}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("R-000002") && page.contains("R-000001"),
        "{page}"
    );
    let (status, page) = get(&format!("/receipt/{sale}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("R-000003") && page.contains("12.99"),
        "{page}"
    );
    assert_eq!(get("/receipt/99999").0, 404);

    // A refund brings the visit and its receipts back: one bottle is left.
    let admin = second.admin().await;
    let ack = admin
        .call(
            "visit.refund",
            json!({"visit_id": v, "lines": [{"line": 1, "qty": 2}], "reason": "x"}),
        )
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "invalid", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1 left"),
        "{ack}"
    );
    let back = ok(
        &admin,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1, "qty": 1}], "restock": true, "reason": "leaking too"}),
    )
    .await;
    assert_eq!(back["receipt"]["number"], "R-000004", "{back}");
    assert_eq!(back["receipt"]["refund_of_number"], "R-000001", "{back}");
    let back = ok(
        &admin,
        "sale.refund",
        json!({"sale_id": sale, "full": true, "reason": "changed her mind"}),
    )
    .await;
    assert_eq!(back["receipt"]["refund_of"], json!(sale), "{back}");
    admin.close().await;
    second.stop().await;
}

#[test]
fn a_bad_currency_or_printer_stops_the_start_with_78() {
    for (key, value) in [
        ("SPA_CURRENCY", "XYZ"),
        ("SPA_CURRENCY", "usd"),
        ("SPA_PRICES_INCLUDE_TAX", "maybe"),
        ("SPA_RECEIPT_PRINTER", "printer"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let data = dir.path().join("data");
        let (code, _out, err) = common::run_cli(
            &["check"],
            &[(key, value), ("SPA_DATA_DIR", data.to_str().expect("utf8"))],
        );
        assert_eq!(code, 78, "{key}={value}: {err}");
        assert!(err.contains(key), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_gift_cards_and_receipts_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let daemon = common::Daemon::start(&data, &[]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (v, product) = counter_floor(&admin).await;
    let card = ok(
        &admin,
        "giftcard.issue",
        json!({"request_id": "g", "amount_cents": 2000, "payments": [{"method": "cash", "amount_cents": 2000}]}),
    )
    .await;
    let code = card["code"].as_str().expect("code").to_string();
    ok(
        &admin,
        "visit.checkout",
        json!({"visit_id": v, "request_id": "r", "items": [{"product_id": product, "qty": 1}],
               "payments": [{"method": "giftcard", "amount_cents": 1500, "code": code}, {"method": "card", "amount_cents": 4799}]}),
    )
    .await;
    let report_before = ok(&admin, "report.day", json!({})).await;
    drop(admin);
    assert_eq!(daemon.stop(), Some(0));
    let daemon = common::Daemon::start(&data, &[]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let b = ok(&admin, "giftcard.balance", json!({"code": code})).await;
    assert_eq!(b["balance_cents"], 500);
    let refund = ok(
        &admin,
        "visit.refund",
        json!({"visit_id": v, "lines": [{"line": 1}], "method": "giftcard", "restock": true, "reason": "after the restart"}),
    )
    .await;
    assert_eq!(refund["receipt"]["number"], "R-000003");
    let b = ok(&admin, "giftcard.balance", json!({"code": code})).await;
    assert_eq!(b["balance_cents"], 1799);
    let report_after = ok(&admin, "report.day", json!({})).await;
    assert_eq!(
        report_before["report"]["giftcards"]["sold"],
        report_after["report"]["giftcards"]["sold"]
    );
    assert_eq!(report_after["report"]["products_sold"][0]["returned"], 1);
}

/// Every event `c` was pushed until it stays quiet for `quiet`.
async fn drain(c: &mut Client, quiet: Duration) -> String {
    let mut seen = String::new();
    while let Ok(e) = c.next_event(quiet).await {
        seen.push_str(&e.name);
        seen.push_str(&e.data.to_string());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_visit_checkout_shows_the_same_gift_card_code_which_pays() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let daemon = common::Daemon::start(&data, &[]);
    let mut admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (v, product) = counter_floor(&admin).await;
    let paired = ok(
        &admin,
        "device.pair",
        json!({"role": "monitor", "name": "Lobby"}),
    )
    .await;
    let mut monitor = Client::connect(&daemon.ws(), paired["token"].as_str().expect("token"))
        .await
        .expect("monitor");
    drain(&mut admin, Duration::from_millis(200)).await;
    // The service (50.00) and a 30.00 gift card, by card.
    let args = json!({"visit_id": v, "request_id": "r-gift", "giftcards": [{"amount_cents": 3000}],
                      "payments": [{"method": "card", "amount_cents": 8000}]});
    let first = ok(&admin, "visit.checkout", args.clone()).await;
    let card = &first["giftcards"][0];
    let code = card["code"].as_str().expect("the card's code").to_string();
    assert_eq!(
        (
            card["amount_cents"].as_i64(),
            first["code"].as_str(),
            first["retried"].as_bool()
        ),
        (Some(3000), Some(code.as_str()), Some(false)),
        "{first}"
    );
    assert!(card["id"].is_u64());
    // The ack is lost; the tablet sends the same command again.
    let again = ok(&admin, "visit.checkout", args.clone()).await;
    assert_eq!(again["retried"], true, "{again}");
    assert_eq!(again["giftcards"][0]["code"].as_str(), Some(code.as_str()));
    assert_eq!(
        (&again["seq"], &again["receipt"]["sale"]["number"]),
        (&first["seq"], &first["receipt"]["sale"]["number"]),
        "the same checkout, charged once"
    );
    // No broadcast carries the code: not to the monitor, not to the office.
    let pushed = drain(&mut monitor, Duration::from_millis(300)).await
        + &drain(&mut admin, Duration::from_millis(100)).await;
    assert!(pushed.contains("receipt.updated"), "{pushed}");
    assert!(
        !pushed.contains(code.as_str()),
        "a broadcast showed the code"
    );
    // The re-shown code pays, typed the forgiving way.
    let typed = code.to_lowercase().replace('-', " ");
    ok(
        &admin,
        "sale.checkout",
        json!({"request_id": "s-gift", "items": [{"product_id": product, "qty": 1}],
               "payments": [{"method": "giftcard", "amount_cents": 1299, "code": typed}]}),
    )
    .await;
    let b = ok(&admin, "giftcard.balance", json!({"code": code})).await;
    assert_eq!(b["balance_cents"], 3000 - 1299);
    // The secret is a private 32-byte file; after a restart the same retry
    // still shows the same code.
    let secret = data.join("giftcard-secret");
    let meta = std::fs::metadata(&secret).expect("secret");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
    }
    drop((admin, monitor));
    assert_eq!(daemon.stop(), Some(0));
    let daemon = common::Daemon::start(&data, &[]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let after = ok(&admin, "visit.checkout", args).await;
    assert_eq!(after["code"].as_str(), Some(code.as_str()), "{after}");
    drop(admin);
    assert_eq!(daemon.stop(), Some(0));
    // A damaged secret stops the start with a line naming the file.
    std::fs::write(&secret, b"short").expect("write");
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (status, _out, err) = common::run_cli(
        &["serve"],
        &[
            ("SPA_DATA_DIR", data.to_str().expect("utf8")),
            ("SPA_LISTEN", &listen),
            ("SPA_ADMIN_TOKEN", common::ADMIN),
            ("SPA_LIGHTS", "sim"),
            ("SPA_LOG_TARGET", "stderr"),
        ],
    );
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("giftcard-secret is 5 bytes"), "{err}");
}
