//! A chain of spas on a real NATS JetStream (Debian's `nats-server`, started
//! by the test on 127.0.0.1 with a temporary store): three site hubs and
//! one `spa-hub hq`, all real processes.
//!
//! One scenario, in order: a mixed day of floor work on three sites; NATS
//! stopped for `SPA_TEST_OUTAGE_S` (default 20) seconds while the floor
//! goes on; NATS back; one site SIGKILLed right after a burst and
//! restarted; head office restarted from an empty directory (rebuilt from
//! the stream). Afterwards: every site's report at head office equals the
//! site's own, the stream holds each site's events exactly once and in
//! order, no customer name or phone is in the stream's files, the ack
//! latency did not move while NATS was down, and foreign messages on the
//! subjects were counted and skipped. Then: a wrong password and a refused
//! connection give one log line and a metric while the site keeps working.

mod common;
mod faultkit;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spa_hub::client::Client;

use common::nats::{Hq, Nats};
use common::{Daemon, ADMIN};

const SITES: [(&str, &str); 3] = [
    ("hanoi", "Asia/Ho_Chi_Minh"),
    ("paris", "Europe/Paris"),
    ("nyc", "America/New_York"),
];

fn site_env<'a>(
    site: &'a str,
    tz: &'a str,
    url: &'a str,
    creds: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SPA_SITE_ID", site),
        ("SPA_TIMEZONE", tz),
        ("SPA_NATS_URL", url),
        ("SPA_NATS_CREDS", creds),
    ]
}

/// The floor of one site: rooms, therapists clocked in, a service, the
/// admin's drawer. Returns the service id.
async fn set_up(c: &Client) -> u64 {
    for i in 1..=3 {
        faultkit::ok(c, "room.create", json!({"name": format!("Room {i}")})).await;
        let t = faultkit::ok(
            c,
            "staff.create",
            json!({"name": format!("T{i}"), "role": "therapist", "pin": "2468"}),
        )
        .await;
        faultkit::ok(
            c,
            "therapist.clock_in",
            json!({"therapist_id": t["staff"]["id"]}),
        )
        .await;
    }
    let svc = faultkit::ok(
        c,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await;
    faultkit::ok(c, "drawer.open", json!({"float_cents": 100_000})).await;
    svc["service"]["id"].as_u64().expect("service id")
}

/// Customer names and phones: never to be found in the stream's files.
fn customer(site: &str, n: u64) -> (String, String) {
    (format!("Secretname {site} {n}"), format!("+84 90{n:07}"))
}

/// One visit from walk-in to paid with a tip; every 5th is refunded in
/// part. Returns each command's ack latency in ms.
async fn visit(c: &Client, site: &str, n: u64, service: u64) -> Vec<f64> {
    let mut lat = Vec::new();
    let call = |name: &'static str, args: Value| async move {
        let t = Instant::now();
        let data = faultkit::ok(c, name, args).await;
        (data, t.elapsed().as_secs_f64() * 1000.0)
    };
    let (name, phone) = customer(site, n);
    let (v, ms) = call(
        "visit.create",
        json!({"customer_name": name, "phone": phone, "notes": "allergic to secretnote", "service_ids": [service]}),
    )
    .await;
    lat.push(ms);
    let id = v["visit"]["id"].as_u64().expect("visit id");
    for name in ["visit.call", "visit.start", "visit.finish"] {
        let (_, ms) = call(name, json!({"visit_id": id})).await;
        lat.push(ms);
    }
    let method = if n % 2 == 0 { "cash" } else { "card" };
    let (_, ms) = call(
        "visit.checkout",
        json!({"visit_id": id, "request_id": format!("pay-{n}"),
               "payments": [{"method": method, "amount_cents": 5000 + 500}], "tip_cents": 500}),
    )
    .await;
    lat.push(ms);
    if n % 5 == 0 {
        let (_, ms) = call(
            "visit.refund",
            json!({"visit_id": id, "amount_cents": 700, "method": method, "reason": "chain test"}),
        )
        .await;
        lat.push(ms);
    }
    lat
}

/// `n` visits on each of the sites at once; the ack latencies (ms).
async fn floor_work(sites: &[(String, Client, u64)], from: u64, n: u64) -> Vec<f64> {
    let mut all = Vec::new();
    let runs = sites.iter().map(|(site, c, service)| async move {
        let mut lat = Vec::new();
        for k in from..from + n {
            lat.extend(visit(c, site, k, *service).await);
        }
        lat
    });
    for lat in futures_util::future::join_all(runs).await {
        all.extend(lat);
    }
    all
}

fn replication(port: u16) -> Value {
    faultkit::healthz(port).1["replication"].clone()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// Every file under `dir`, as bytes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The site's own day report CSV for `date`.
fn site_csv(port: u16, date: &str) -> String {
    let auth = format!("Bearer {ADMIN}");
    let (status, body) = common::http(
        port,
        "GET",
        &format!("/api/reports/day.csv?date={date}"),
        &[("Authorization", &auth)],
        "",
    )
    .expect("site answers");
    assert_eq!(status, 200, "{body}");
    body
}

/// Every message of the stream: (subject, Spa-Seq, payload).
async fn stream_contents(nats: &Nats) -> Vec<(String, u64, Vec<u8>)> {
    let client = async_nats::ConnectOptions::with_user_and_password(
        common::nats::USER.into(),
        common::nats::PASSWORD.into(),
    )
    .connect(nats.url())
    .await
    .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("SPA_EVENTS").await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let site_seq = m
            .headers
            .get("Spa-Seq")
            .and_then(|v| v.as_str().parse().ok())
            .unwrap_or(0);
        out.push((m.subject.to_string(), site_seq, m.payload.to_vec()));
    }
    out
}

async fn publish_foreign(nats: &Nats) {
    let client = async_nats::ConnectOptions::with_user_and_password(
        common::nats::USER.into(),
        common::nats::PASSWORD.into(),
    )
    .connect(nats.url())
    .await
    .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut with_seq = async_nats::HeaderMap::new();
    with_seq.insert("Spa-Seq", "1");
    for (subject, headers, payload) in [
        ("spa.intruder.events", None, "not json at all"),
        (
            "spa.intruder.events",
            Some(with_seq.clone()),
            "{\"seq\": 1}",
        ),
        ("spa.other.events", Some(with_seq), "[1,2,3]"),
    ] {
        let ack = match headers {
            Some(h) => js.publish_with_headers(subject, h, payload.into()).await,
            None => js.publish(subject, payload.into()).await,
        };
        ack.expect("publish").await.expect("stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_three_sites_survives_outages_and_head_office_matches_them() {
    if !common::nats::available() {
        return;
    }
    let outage_s: u64 = std::env::var("SPA_TEST_OUTAGE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let tmp = tempfile::tempdir().expect("tmp");
    let mut nats = Nats::start(&tmp.path().join("nats"));
    let (url, creds) = (nats.url(), nats.creds());
    let hq = Hq::start(&tmp.path().join("hq"), &nats);

    let mut daemons = Vec::new();
    let mut clients = Vec::new();
    for (site, tz) in SITES {
        let d = Daemon::start(&tmp.path().join(site), &site_env(site, tz, &url, &creds));
        let c = Client::connect(&d.ws(), ADMIN).await.expect("admin");
        let service = set_up(&c).await;
        clients.push((site.to_string(), c, service));
        daemons.push(d);
    }

    // A mixed day with NATS up.
    let before = floor_work(&clients, 1, 6).await;

    // NATS down: the floor goes on, the acks do not wait.
    nats.stop();
    let down_at = Instant::now();
    let mut during = Vec::new();
    let mut round = 0;
    while down_at.elapsed() < Duration::from_secs(outage_s.saturating_sub(2).max(1)) || round < 2 {
        during.extend(floor_work(&clients, 100 + round * 10, 3).await);
        round += 1;
    }
    for d in &daemons {
        let r = replication(d.port);
        assert_eq!(r["state"], "failing", "{r}");
        assert!(r["lag_events"].as_u64().unwrap_or(0) > 0, "{r}");
        assert!(r["lag_seconds"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    }
    while down_at.elapsed() < Duration::from_secs(outage_s) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nats.restart();

    // A burst on Paris, then SIGKILL while it is still publishing.
    let (paris_name, paris_client, paris_service) = clients.remove(1);
    floor_work(&[(paris_name.clone(), paris_client, paris_service)], 500, 4).await;
    let paris = daemons.remove(1);
    let paris_dir = paris.dir.clone();
    paris.kill();
    let paris = Daemon::start(&paris_dir, &site_env("paris", SITES[1].1, &url, &creds));
    let c = Client::connect(&paris.ws(), ADMIN).await.expect("admin");
    clients.insert(1, (paris_name, c, paris_service));
    daemons.insert(1, paris);
    let after = floor_work(&clients, 600, 2).await;

    // Every site catches up by itself.
    for d in &daemons {
        wait_until("a site to catch up", Duration::from_secs(60), || {
            let r = replication(d.port);
            r["state"] == "publishing" && r["lag_events"] == 0
        });
    }

    // Foreign messages on the stream's subjects.
    publish_foreign(&nats).await;

    // Head office rebuilt from the stream in a new directory.
    drop(hq);
    let hq = Hq::start(&tmp.path().join("hq-rebuilt"), &nats);
    let seqs: Vec<u64> = daemons
        .iter()
        .map(|d| faultkit::healthz(d.port).1["seq"].as_u64().expect("seq"))
        .collect();
    wait_until(
        "head office to hold every event",
        Duration::from_secs(60),
        || {
            let (status, body) = hq.get("/hq/api/sites");
            if status != 200 {
                return false;
            }
            let v: Value = serde_json::from_str(&body).expect("json");
            SITES.iter().zip(&seqs).all(|((site, _), seq)| {
                v["sites"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|s| s["site"] == *site && s["last_seq"] == *seq)
                })
            })
        },
    );

    // Head office's report for each site and date is the site's own.
    for (d, (site, tz)) in daemons.iter().zip(SITES) {
        let today = jiff::Zoned::now()
            .with_time_zone(jiff::tz::TimeZone::get(tz).expect("tz"))
            .date()
            .to_string();
        let (status, at_hq) = hq.get(&format!("/hq/reports/day.csv?site={site}&date={today}"));
        assert_eq!(status, 200, "{at_hq}");
        assert_eq!(
            at_hq,
            site_csv(d.port, &today),
            "{site} {today}; head office's sites: {}; its log: {}",
            hq.get("/hq/api/sites").1,
            hq.stderr()
        );
        let (_, json_hq) = hq.get(&format!("/hq/reports/day.json?site={site}&date={today}"));
        let report: Value = serde_json::from_str(&json_hq).expect("json");
        assert!(
            report["revenue_cents"].as_i64().unwrap_or(0) > 0,
            "{report}"
        );
    }
    let (status, all) = hq.get("/hq/reports/day.json");
    assert_eq!(status, 200, "{all}");
    let (status, csv) = hq.get("/hq/reports/day.csv");
    assert_eq!(status, 200);
    assert!(csv.starts_with("date,site,figure,value"), "{csv}");
    assert_eq!(hq.get("/hq/api/sites").0, 200);
    let (status, _) = common::http_get(hq.port, "/hq/api/sites").expect("answers");
    assert_eq!(status, 401, "the API needs the token");
    assert_eq!(common::http_get(hq.port, "/hq").expect("page").0, 200);

    // Foreign messages: counted and skipped, head office still up.
    let (_, metrics) = hq.get("/metrics");
    assert!(
        faultkit::metric_in(&metrics, "spa_hq_malformed_total").unwrap_or(0.0) >= 3.0,
        "{metrics}"
    );
    assert_eq!(
        faultkit::metric_in(&metrics, "spa_hq_gaps_total"),
        Some(0.0),
        "{metrics}"
    );

    // The stream: each site's events exactly once, in order, gap-free.
    let contents = stream_contents(&nats).await;
    for ((site, _), seq) in SITES.iter().zip(&seqs) {
        let subject = format!("spa.{site}.events");
        let got: Vec<u64> = contents
            .iter()
            .filter(|(s, _, _)| *s == subject)
            .map(|(_, n, _)| *n)
            .collect();
        assert_eq!(got, (1..=*seq).collect::<Vec<_>>(), "{site}");
    }

    // No customer name, phone or note in the stream's files (omit).
    let stored = files(&nats.store);
    assert!(
        stored.iter().any(|(_, b)| contains(b, "VisitCheckedOut")),
        "the events are in the store as plain text (the check below means something)"
    );
    for (path, bytes) in &stored {
        for needle in ["Secretname", "+84 90", "secretnote"] {
            assert!(!contains(bytes, needle), "{needle} in {}", path.display());
        }
    }

    // The ack latency did not move while NATS was down.
    let (p50_up, p50_down) = (
        percentile(before.clone(), 0.5),
        percentile(during.clone(), 0.5),
    );
    let (p99_up, p99_down) = (percentile(before, 0.99), percentile(during, 0.99));
    println!(
        "ack latency with NATS up p50 {p50_up:.2} ms p99 {p99_up:.2} ms; down p50 {p50_down:.2} ms p99 {p99_down:.2} ms; after {:.2} ms",
        percentile(after, 0.5)
    );
    assert!(p50_down <= p50_up * 2.0 + 5.0, "p50 {p50_up} → {p50_down}");
    assert!(p99_down <= p99_up * 3.0 + 20.0, "p99 {p99_up} → {p99_down}");

    // A customer forgotten on a site is forgotten at head office too.
    let (_, c, service) = &clients[0];
    let made = faultkit::ok(
        c,
        "customer.create",
        json!({"name": "Forgetme Secretname", "phone": "+84 90 555 0101"}),
    )
    .await;
    let customer_id = made["customer"]["id"].as_u64().expect("customer id");
    faultkit::ok(
        c,
        "visit.create",
        json!({"customer_id": customer_id, "customer_name": "Forgetme Secretname", "service_ids": [service]}),
    )
    .await;
    faultkit::ok(
        c,
        "customer.forget",
        json!({"customer_id": customer_id, "reason": "asked at the desk"}),
    )
    .await;
    let site_seq = faultkit::healthz(daemons[0].port).1["seq"]
        .as_u64()
        .expect("seq");
    let forgotten = format!("customer {customer_id} forgotten");
    wait_until(
        "head office to apply the forget",
        Duration::from_secs(30),
        || hq.stderr().contains(&forgotten),
    );
    wait_until(
        "head office to hold the site's log",
        Duration::from_secs(30),
        || {
            let v: Value = serde_json::from_str(&hq.get("/hq/api/sites").1).unwrap_or_default();
            v["sites"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|s| s["site"] == SITES[0].0 && s["last_seq"] == site_seq)
            })
        },
    );

    for d in &daemons {
        assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
    }
    assert!(!hq.stderr().contains("panicked"), "{}", hq.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_or_no_server_give_one_line_and_a_metric_and_the_site_works() {
    if !common::nats::available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let nats = Nats::start(&tmp.path().join("nats"));
    let url = nats.url();
    let closed = format!("nats://127.0.0.1:{}", common::free_port());
    for (name, url, creds, expect) in [
        ("wrong", url.as_str(), "spa:not-the-password", "uthoriz"),
        ("refused", closed.as_str(), "spa:x", "onnect"),
    ] {
        let d = Daemon::start(&tmp.path().join(name), &site_env(name, "UTC", url, creds));
        let c = Client::connect(&d.ws(), ADMIN).await.expect("admin");
        // The floor works: commands are acked.
        for i in 0..20 {
            faultkit::ok(&c, "room.create", json!({"name": format!("R{i}")})).await;
        }
        // Several retries, one line.
        wait_until("failed attempts", Duration::from_secs(15), || {
            faultkit::metric(d.port, "spa_hub_nats_failures_total").unwrap_or(0.0) >= 3.0
        });
        let r = replication(d.port);
        assert_eq!(r["state"], "failing", "{r}");
        assert_eq!(r["lag_events"], 20, "{r}");
        let log = d.stderr();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("NATS replication"))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {log}");
        assert!(lines[0].contains(expect), "{name}: {}", lines[0]);
        assert_eq!(d.stop(), Some(0));
    }
}
