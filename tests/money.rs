//! Money over the wire: checkout with a double tap, the drawer, the day
//! report as JSON and as CSV (with its 401/403), and the report unchanged
//! by a restart.

mod common;
mod faultkit;

use faultkit::{ok, small_floor};
use serde_json::{json, Value};
use spa_hub::client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_drawer_and_day_report_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let daemon = common::Daemon::start(&data, &[]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let (svc, _tess) = small_floor(&admin, "Tess", "1234").await;
    ok(
        &admin,
        "staff.create",
        json!({"name": "Cass", "role": "cashier", "pin": "5678"}),
    )
    .await;
    ok(
        &admin,
        "staff.create",
        json!({"name": "Theo", "role": "therapist", "pin": "4321"}),
    )
    .await;
    let port = daemon.port;
    let login = |name: &str, pin: &str| {
        let body = format!(r#"{{"name":"{name}","pin":"{pin}"}}"#);
        let (_, resp) = common::http(
            port,
            "POST",
            "/api/login",
            &[("Content-Type", "application/json")],
            &body,
        )
        .expect("login");
        serde_json::from_str::<Value>(&resp).expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let cashier_token = login("Cass", "5678");
    let therapist_token = login("Theo", "4321");
    let cashier = Client::connect(&daemon.ws(), &cashier_token)
        .await
        .expect("cashier");
    ok(&cashier, "drawer.open", json!({"float_cents": 10_000})).await;
    let v = ok(
        &cashier,
        "visit.create",
        json!({"customer_name": "Ann", "service_ids": [svc["service"]["id"]]}),
    )
    .await;
    let vid = v["visit"]["id"].clone();
    ok(&admin, "visit.call", json!({"visit_id": vid})).await;
    ok(&admin, "visit.start", json!({"visit_id": vid})).await;
    ok(&admin, "visit.finish", json!({"visit_id": vid})).await;
    let checkout = json!({"visit_id": vid, "request_id": "tap-1", "tip_cents": 500,
        "payments": [{"method": "cash", "amount_cents": 3_000}, {"method": "card", "amount_cents": 2_500, "reference": "slip 4"}]});
    // A double tap: both sent at once, one charge, the same answer.
    let (a, b) = tokio::join!(
        cashier.call("visit.checkout", checkout.clone()),
        cashier.call("visit.checkout", checkout.clone())
    );
    let (mut a, mut b) = (a.expect("ack"), b.expect("ack"));
    assert_eq!(a["ok"], json!(true), "{a}");
    // One of them is the retry, and says so; otherwise the same answer.
    let mut retried = [a["data"]["retried"].take(), b["data"]["retried"].take()];
    retried.sort_by_key(|r| r.as_bool());
    assert_eq!(retried, [json!(false), json!(true)], "{a} {b}");
    assert_eq!(a, b, "the retry gets the first answer");
    assert_eq!(a["data"]["receipt"]["total_cents"], 5_500);
    let report = ok(&cashier, "report.day", json!({})).await["report"].clone();
    assert_eq!(report["revenue_by_method"]["cash"], 3_000);
    assert_eq!(report["revenue_by_method"]["card"], 2_500);
    assert_eq!(report["tips"]["cents"], 500);
    let day = report["day"].as_u64().expect("day");
    let date = format!("{}-{:02}-{:02}", day / 10_000, day / 100 % 100, day % 100);
    let bad = cashier
        .call("report.day", json!({"date": "26/11/2026"}))
        .await
        .expect("ack");
    assert_eq!(bad["error"]["code"], "invalid");
    // The CSV: 401 without a token, 403 for a therapist, 200 for the cashier.
    let path = format!("/api/reports/day.csv?date={date}");
    assert_eq!(common::http_get(port, &path).expect("http").0, 401);
    let auth = |t: &str| format!("Bearer {t}");
    assert_eq!(
        common::http(
            port,
            "GET",
            &path,
            &[("Authorization", &auth(&therapist_token))],
            ""
        )
        .expect("http")
        .0,
        403
    );
    let (status, csv_before) = common::http(
        port,
        "GET",
        &path,
        &[("Authorization", &auth(&cashier_token))],
        "",
    )
    .expect("http");
    assert_eq!(status, 200);
    let mut rows = csv::Reader::from_reader(csv_before.as_bytes());
    let total: Vec<String> = rows
        .records()
        .map(|r| r.expect("row"))
        .filter(|r| &r[0] == "revenue_cents" && &r[1] == "total")
        .map(|r| r[3].to_string())
        .collect();
    assert_eq!(total, vec!["5500".to_string()]);
    let z = ok(
        &cashier,
        "drawer.close",
        json!({"counted": {"cash": 13_000, "card": 2_500}}),
    )
    .await;
    assert_eq!(z["z_report"]["variance"]["cash"], 0);
    let report_before = ok(&cashier, "report.day", json!({"date": date})).await["report"].clone();
    drop(cashier);
    drop(admin);
    assert_eq!(daemon.stop(), Some(0));

    // After a restart the same day gives the same numbers.
    let daemon = common::Daemon::start(&data, &[]);
    let admin = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("admin");
    let report_after = ok(&admin, "report.day", json!({"date": date})).await["report"].clone();
    assert_eq!(report_before, report_after);
    let (_, csv_after) = common::http(
        daemon.port,
        "GET",
        &path,
        &[("Authorization", &format!("Bearer {}", common::ADMIN))],
        "",
    )
    .expect("http");
    assert_eq!(
        csv_after
            .lines()
            .filter(|l| l.starts_with("revenue"))
            .collect::<Vec<_>>(),
        csv_before
            .lines()
            .filter(|l| l.starts_with("revenue"))
            .collect::<Vec<_>>()
    );
    assert_eq!(daemon.stop(), Some(0));
}
