//! Returning customers with the real daemon (#16):
//!
//! - a record survives a restart (its personal fields are sealed on disk
//!   with its own key, and read back);
//! - a forget reaches the connected office (the visit and the record come
//!   back blank), and after it and a restart not one byte of the data
//!   directory, of a backup made afterwards, or of the reports holds the
//!   forgotten name, phone or notes, while the report totals are unchanged;
//! - `spa-hub export-customer` prints the record (blank once forgotten).

mod common;
mod faultkit;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, ADMIN};
use faultkit::ok;
use serde_json::{json, Value};
use spa_hub::client::Client;

const NAME: &str = "Zyxwa Qwertyson";
const PHONE: &str = "+1 987 654 3219";
const DIGITS: &str = "19876543219";
const NOTES: &str = "allergic to xyzzyberry oil";
/// A walk-in typed without a record: stays in the log (the scan's control).
const WALK_IN: &str = "Plainwalker";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every file under `dir` (and `extra`) holding one of `needles`.
fn holders(dir: &Path, extra: &[&Path], needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut all = files(dir);
    all.extend(extra.iter().map(|p| p.to_path_buf()));
    for f in all {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                hits.push(format!("{} holds {n:?}", f.display()));
            }
        }
    }
    hits
}

fn totals(report: &Value) -> Value {
    let r = &report["report"];
    json!([
        r["visits_created"],
        r["revenue_cents"],
        r["tips"],
        r["services_sold"],
        r["visits_by_state"]
    ])
}

async fn admin(d: &Daemon) -> Client {
    Client::connect(&d.ws(), ADMIN).await.expect("admin")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_customer_is_nowhere_on_disk_in_backups_or_reports_and_the_totals_stay() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let env = [("SPA_DATA_DIR", data.to_str().expect("path"))];

    let d = Daemon::start(&data, &[]);
    let a = admin(&d).await;
    let room = ok(&a, "room.create", json!({"name": "Lotus"})).await["room"]["id"].clone();
    let svc = ok(
        &a,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "price_cents": 5000}),
    )
    .await["service"]["id"]
        .clone();
    let tess = ok(
        &a,
        "staff.create",
        json!({"name": "Tess", "role": "therapist", "pin": "2468"}),
    )
    .await["staff"]["id"]
        .clone();
    ok(&a, "therapist.clock_in", json!({"therapist_id": tess})).await;
    ok(&a, "drawer.open", json!({"float_cents": 0})).await;
    // Another customer, kept: a restored backup must still read her.
    ok(
        &a,
        "customer.create",
        json!({"name": "Olga Keepsake", "phone": "600 555 777", "notes": "cold hands"}),
    )
    .await;
    let c = ok(
        &a,
        "customer.create",
        json!({"name": NAME, "phone": PHONE, "email": "zq@example.com", "notes": NOTES}),
    )
    .await["customer"]["id"]
        .as_u64()
        .expect("customer");
    let serve = |v: Value| {
        let a = &a;
        let (room, tess) = (room.clone(), tess.clone());
        async move {
            ok(
                a,
                "visit.call",
                json!({"visit_id": v, "therapist_id": tess, "room_id": room}),
            )
            .await;
            ok(a, "visit.start", json!({"visit_id": v})).await;
            ok(a, "visit.finish", json!({"visit_id": v})).await;
            ok(
                a,
                "visit.checkout",
                json!({"visit_id": v, "request_id": format!("pay-{v}"), "tip_cents": 700,
                       "payments": [{"method": "card", "amount_cents": 5700}]}),
            )
            .await;
        }
    };
    let v = ok(
        &a,
        "visit.create",
        json!({"customer_id": c, "service_ids": [svc]}),
    )
    .await["visit"]["id"]
        .clone();
    ok(
        &a,
        "visit.update",
        json!({"visit_id": v, "notes": format!("{NAME} asked for warm stones")}),
    )
    .await;
    serve(v.clone()).await;
    let w = ok(
        &a,
        "visit.create",
        json!({"customer_name": WALK_IN, "service_ids": [svc]}),
    )
    .await["visit"]["id"]
        .clone();
    serve(w).await;
    let before = ok(&a, "report.day", json!({})).await;
    a.close().await;

    // After a restart the record reads back (sealed on disk, not lost).
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&data, &[]);
    let mut a = admin(&d).await;
    let found = ok(&a, "customer.search", json!({"q": "qwer"})).await;
    assert_eq!(found["customers"][0]["name"], NAME, "{found}");
    assert_eq!(found["customers"][0]["notes"], NOTES);
    let found = ok(&a, "customer.search", json!({"q": "3219"})).await;
    assert_eq!(found["customers"][0]["id"], c);
    let history = ok(&a, "customer.history", json!({"customer_id": c})).await;
    assert_eq!(history["visits"][0]["paid_cents"], 5700, "{history}");
    // Nothing in clear on disk even before the forget; the walk-in is.
    let hits = holders(&data, &[], &[NAME, DIGITS, NOTES, "Qwertyson"]);
    assert!(hits.is_empty(), "{hits:?}");
    assert!(
        !holders(&data, &[], &[WALK_IN]).is_empty(),
        "the scan finds plain text"
    );

    // The forget reaches the connected office.
    ok(
        &a,
        "customer.forget",
        json!({"customer_id": c, "reason": "asked by email"}),
    )
    .await;
    let mut saw_visit = false;
    let mut saw_customer = false;
    while !(saw_visit && saw_customer) {
        let e = a.next_event(Duration::from_secs(10)).await.expect("events");
        match e.name.as_str() {
            "visit.updated" if e.data["visit"]["id"] == v => {
                assert_eq!(e.data["visit"]["customer_name"], "(forgotten)");
                assert_eq!(e.data["visit"]["notes"], Value::Null);
                saw_visit = true;
            }
            "customer.updated" => {
                assert_eq!(e.data["customer"]["forgotten"], true);
                assert_eq!(e.data["customer"]["name"], "(forgotten)");
                saw_customer = true;
            }
            _ => {}
        }
    }
    let again = a
        .call(
            "customer.forget",
            json!({"customer_id": c, "reason": "again"}),
        )
        .await
        .expect("ack");
    assert_eq!(faultkit::code(&again), "conflict");
    a.close().await;
    assert_eq!(d.stop(), Some(0));

    // Restarted: the report keeps every total; nothing of the person is left.
    let d = Daemon::start(&data, &[]);
    let a = admin(&d).await;
    let after = ok(&a, "report.day", json!({})).await;
    assert_eq!(totals(&after), totals(&before));
    let csv = common::http(
        d.port,
        "GET",
        "/api/reports/day.csv",
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        "",
    );
    let (status, csv) = csv.expect("csv");
    assert_eq!(status, 200);
    let found = ok(&a, "customer.search", json!({"q": "qwer"})).await;
    assert_eq!(found["customers"], json!([]));
    let text = format!("{after}{csv}");
    for needle in [NAME, DIGITS, NOTES, "Qwertyson"] {
        assert!(!text.contains(needle), "the report holds {needle}");
    }
    a.close().await;
    assert_eq!(d.stop(), Some(0));

    let backup = tmp.path().join("after.backup");
    let (code, out, err) = common::run_cli(&["backup", backup.to_str().expect("path")], &env);
    assert_eq!(code, 0, "{out}{err}");
    let hits = holders(
        &data,
        &[&backup],
        &[NAME, DIGITS, NOTES, "Qwertyson", "9876543219"],
    );
    assert!(hits.is_empty(), "{hits:?}");

    // The backup restores into a new directory with its keys: the kept
    // customer reads back, the forgotten one does not.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).expect("dir");
    let renv = [("SPA_DATA_DIR", restored.to_str().expect("path"))];
    let (code, out, err) = common::run_cli(&["restore", backup.to_str().expect("path")], &renv);
    assert_eq!(code, 0, "{out}{err}");
    let d = Daemon::start(&restored, &[]);
    let a = admin(&d).await;
    let olga = ok(&a, "customer.search", json!({"q": "olga"})).await;
    assert_eq!(olga["customers"][0]["notes"], "cold hands", "{olga}");
    let gone = ok(&a, "customer.search", json!({"q": "qwer"})).await;
    assert_eq!(gone["customers"], json!([]));
    a.close().await;
    assert_eq!(d.stop(), Some(0));

    // The right of access: the record, blank now, with its visit.
    let (code, out, err) = common::run_cli(&["export-customer", &c.to_string()], &env);
    assert_eq!(code, 0, "{err}");
    let export: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(export["customer"]["forgotten"], true);
    assert_eq!(export["visits"][0]["id"], v);
    assert!(!out.contains("Qwertyson"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_customer_prints_the_record_and_its_visits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let d = Daemon::start(&data, &[]);
    let a = admin(&d).await;
    let svc = ok(
        &a,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "price_cents": 5000}),
    )
    .await["service"]["id"]
        .clone();
    let c = ok(
        &a,
        "customer.create",
        json!({"name": "José Export", "phone": "600 123 456", "notes": "likes mint"}),
    )
    .await["customer"]["id"]
        .as_u64()
        .expect("id");
    ok(
        &a,
        "visit.create",
        json!({"customer_id": c, "service_ids": [svc]}),
    )
    .await;
    a.close().await;
    assert_eq!(d.stop(), Some(0));
    let env = [("SPA_DATA_DIR", data.to_str().expect("path"))];
    let (code, out, err) = common::run_cli(&["export-customer", &c.to_string()], &env);
    assert_eq!(code, 0, "{err}");
    let export: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(export["customer"]["name"], "José Export");
    assert_eq!(export["customer"]["phone"], "600123456");
    assert_eq!(export["visits"][0]["customer_name"], "José Export");
    let (code, _, err) = common::run_cli(&["export-customer", "99999"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("no customer"), "{err}");
}
