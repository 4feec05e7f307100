//! #21 over real sockets: a therapist cannot fish for customers' phone
//! numbers. Their call of another therapist's requested customer, or out of
//! turn, is refused whatever the override reason; no ack they get (refusals,
//! their own call, its undo) and no event carries the phone, notes or price
//! of a customer who is not theirs; and they cannot put an out-of-service
//! room back in service.

mod common;
mod faultkit;

use std::time::Duration;

use faultkit::{code, ok};
use serde_json::{json, Value};
use spa_hub::client::Client;

const ADMIN: &str = "security-acks-admin-token-01";

async fn login(port: u16, name: &str, pin: &str) -> String {
    let body = json!({"name": name, "pin": pin}).to_string();
    let (status, reply) = common::http(
        port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("login answers");
    assert_eq!(status, 200, "{reply}");
    serde_json::from_str::<Value>(&reply).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string()
}

const SECRETS: [&str; 5] = [
    "7777",
    "SECRET-NOTES",
    "8888",
    "VIC-NOTES",
    "services_cents",
];

fn assert_clean(what: &str, v: &Value) {
    let text = v.to_string();
    for s in SECRETS {
        assert!(!text.contains(s), "{what} carries {s}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_therapist_fishing_for_phone_numbers_gets_nothing() {
    let hub = common::InProcessHub::start(ADMIN, &[("SPA_LIGHTS", "off")]).await;
    let port = hub.port();
    let admin = Client::connect(&hub.url(), ADMIN).await.expect("admin");
    ok(&admin, "room.create", json!({"name": "Lotus"})).await;
    let jade = ok(&admin, "room.create", json!({"name": "Jade"})).await["room"]["id"].clone();
    let thai = ok(
        &admin,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await["service"]["id"]
        .clone();
    let mut ids = Vec::new();
    for (name, pin) in [("Otto", "2222"), ("Tess", "1111")] {
        let s = ok(
            &admin,
            "staff.create",
            json!({"name": name, "role": "therapist", "pin": pin}),
        )
        .await;
        let id = s["staff"]["id"].clone();
        // Otto clocks in first: he is next in the rotation.
        ok(&admin, "therapist.clock_in", json!({"therapist_id": id})).await;
        ids.push(id);
    }
    let (otto, tess_id) = (ids[0].clone(), ids[1].clone());
    let sally = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Sally", "service_ids": [thai], "phone": "+1 555 7777",
               "notes": "SECRET-NOTES", "requested_therapist_id": otto}),
    )
    .await["visit"]["id"]
        .clone();
    let vic = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Vic", "service_ids": [thai], "phone": "+1 555 8888",
               "notes": "VIC-NOTES"}),
    )
    .await["visit"]["id"]
        .clone();

    let token = login(port, "Tess", "1111").await;
    let mut tess = Client::connect(&hub.url(), &token).await.expect("Tess");
    let mut acks = Vec::new();
    // Another therapist's requested customer, with or without a reason.
    for args in [
        json!({"visit_id": sally, "override_reason": "Otto is busy"}),
        json!({"visit_id": sally}),
        json!({"visit_id": sally, "therapist_id": tess_id, "override_reason": "x"}),
        // Out of turn (Otto is next), with a reason.
        json!({"visit_id": vic, "override_reason": "I am free"}),
    ] {
        let ack = tess.call("visit.call", args.clone()).await.expect("ack");
        assert_eq!(code(&ack), "forbidden", "{args}: {ack}");
        assert_clean("a refused call's ack", &ack);
        acks.push(ack);
    }
    // The office may override for Tess; then it is her customer.
    let called = ok(
        &admin,
        "visit.call",
        json!({"visit_id": vic, "therapist_id": tess_id, "override_reason": "Otto's break"}),
    )
    .await;
    assert_eq!(called["visit"]["phone"], json!("+1 555 8888"));
    // Her own customer's undo: the visit goes back to the queue, no longer
    // hers, and the undo's ack shows it as she may now see it.
    let undo = tess
        .call("visit.undo", json!({"visit_id": vic}))
        .await
        .expect("ack");
    assert_eq!(code(&undo), "ok", "{undo}");
    assert_eq!(undo["data"]["visit"]["state"], json!("waiting"));
    assert_clean("visit.undo's ack", &undo);
    // Room: out of service and back are the office's.
    ok(
        &admin,
        "room.set_status",
        json!({"room_id": jade, "status": "out_of_service", "reason": "leak"}),
    )
    .await;
    for status in ["available", "cleaning"] {
        let ack = tess
            .call(
                "room.set_status",
                json!({"room_id": jade, "status": status}),
            )
            .await
            .expect("ack");
        assert_eq!(code(&ack), "forbidden", "{status}: {ack}");
    }
    let sync = tess.call("sync", json!({})).await.expect("ack");
    assert_eq!(code(&sync), "ok");
    // Nothing Tess received (snapshot and every event) carries the secrets
    // of customers who are not hers (Vic was hers only between the call and
    // the undo: his events of that moment are allowed to show his phone).
    let mut events = 0;
    while let Ok(e) = tess.next_event(Duration::from_millis(300)).await {
        events += 1;
        let text = e.data.to_string();
        for s in ["7777", "SECRET-NOTES", "services_cents"] {
            assert!(!text.contains(s), "event {} carries {s}: {text}", e.name);
        }
        if e.name == "snapshot" {
            let visits = e.data["visits"].as_array().cloned().unwrap_or_default();
            assert!(!visits.is_empty());
            for v in visits {
                assert_clean("the last snapshot", &v);
            }
        }
        if e.name == "room.updated" && e.data["room"]["id"] == jade {
            assert_eq!(e.data["room"]["status"], json!("out_of_service"));
        }
    }
    assert!(events > 3, "Tess received the floor's events");
    hub.stop().await;
}
