//! The box in the field (#19): a clock without the internet and `clock.set`.
//! (HTTPS is in tests/tls.rs.)

use std::time::Duration;

use serde_json::{json, Value};
use spa_hub::client::Client;
use spa_hub::config::{Config, Source};

mod common;

const ADMIN: &str = "field-admin-token-0123456789";
const DAY: i64 = 86_400_000;

async fn start(dir: &std::path::Path, sync_file: &std::path::Path) -> spa_hub::daemon::Running {
    let data = dir.display().to_string();
    let sync = sync_file.display().to_string();
    let source = Source::from_pairs([
        ("SPA_LISTEN", "127.0.0.1:0"),
        ("SPA_DATA_DIR", data.as_str()),
        ("SPA_ADMIN_TOKEN", ADMIN),
        ("SPA_LIGHTS", "sim"),
        ("SPA_TIMESYNC_FILE", sync.as_str()),
    ]);
    let config = Config::from_source(&source).expect("config");
    spa_hub::daemon::start(config).await.expect("start")
}

async fn admin(running: &spa_hub::daemon::Running) -> Client {
    Client::connect(&format!("ws://{}", running.addr), ADMIN)
        .await
        .expect("admin connects")
}

async fn snapshot(client: &mut Client) -> Value {
    client
        .wait_for("snapshot", Duration::from_secs(5))
        .await
        .expect("snapshot")
        .data
}

fn healthz(running: &spa_hub::daemon::Running) -> Value {
    let (status, body) = common::http_get(running.addr.port(), "/healthz").expect("healthz");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

fn wall() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The newest event's time in the log.
fn last_at(running: &spa_hub::daemon::Running) -> i64 {
    let seq = running
        .hub
        .writer
        .health()
        .seq
        .load(std::sync::atomic::Ordering::Relaxed);
    running
        .hub
        .log
        .events_from(seq)
        .next()
        .expect("an event")
        .expect("readable")
        .at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_a_day_never_runs_the_floor_backwards() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-ntp");
    // Yesterday's run happened "a day later" than this machine's clock says
    // now: the Pi came back from a power cut with a wall clock a day behind.
    let first = start(dir.path(), &missing).await;
    first.hub.clock.shift(DAY);
    let a = admin(&first).await;
    let ack = a
        .call("room.create", json!({"name": "Room 1", "capacity": 1}))
        .await
        .expect("ack");
    assert_eq!(ack["ok"], true, "{ack}");
    let before = last_at(&first);
    assert!(before > wall() + DAY / 2);
    a.close().await;
    first.stop().await;

    let second = start(dir.path(), &missing).await;
    let health = healthz(&second);
    assert_eq!(health["clock"]["synchronized"], false, "{health}");
    assert_eq!(health["clock"]["held_at_last_event"], true, "{health}");
    assert!(health["clock"]["now_ms"].as_i64().expect("now") >= before);
    let (_, metrics) = common::http_get(second.addr.port(), "/metrics").expect("metrics");
    assert!(
        metrics.contains("spa_hub_clock_synchronized 0"),
        "{metrics}"
    );

    let mut a = admin(&second).await;
    let snap = snapshot(&mut a).await;
    assert!(snap["server_time"].as_i64().expect("time") >= before);
    assert_eq!(
        snap["clock"]["synchronized"], false,
        "the admin page sees it"
    );
    let ack = a
        .call("room.create", json!({"name": "Room 2", "capacity": 1}))
        .await
        .expect("ack");
    assert_eq!(ack["ok"], true, "{ack}");
    assert!(last_at(&second) >= before, "a new event is never older");

    // The admin's device has the right time (a day behind the log): the hub
    // may not go back to it.
    let ack = a
        .call("clock.set", json!({"now_ms": wall()}))
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "conflict", "{ack}");
    // Bad input: invalid, and nothing changes.
    for bad in [
        json!({"now_ms": "tomorrow"}),
        json!({}),
        json!({"now_ms": before + DAY, "extra": 1}),
        json!({"now_ms": before + 500 * DAY}),
    ] {
        let ack = a.call("clock.set", bad.clone()).await.expect("ack");
        assert_eq!(ack["error"]["code"], "invalid", "{bad}: {ack}");
    }
    assert_eq!(second.hub.clock.status().set_offset_ms, 0);
    // A device whose time is past the last event: the floor's time moves on.
    let target = before + DAY;
    let ack = a
        .call("clock.set", json!({"now_ms": target}))
        .await
        .expect("ack");
    assert_eq!(ack["ok"], true, "{ack}");
    let now = second.hub.clock.now().ms;
    assert!(now >= target && now < target + 60_000, "{now} vs {target}");
    let health = healthz(&second);
    assert!(health["clock"]["set_offset_ms"].as_i64().expect("offset") > DAY);
    // Audited: the event is in the log, by the admin.
    let seq = second
        .hub
        .writer
        .health()
        .seq
        .load(std::sync::atomic::Ordering::Relaxed);
    let record = second
        .hub
        .log
        .events_from(seq)
        .next()
        .expect("event")
        .expect("readable");
    assert!(
        matches!(record.event, spa_hub::domain::Event::ClockSet { to_ms, .. } if to_ms == target),
        "{record:?}"
    );
    assert!(matches!(record.actor, spa_hub::domain::Actor::AdminToken));
    // Nobody but an admin: a paired monitor is refused.
    let pair = a
        .call("device.pair", json!({"role": "monitor", "name": "Lobby"}))
        .await
        .expect("ack");
    let token = pair["data"]["token"].as_str().expect("token").to_string();
    let monitor = Client::connect(&format!("ws://{}", second.addr), &token)
        .await
        .expect("monitor");
    let ack = monitor
        .call("clock.set", json!({"now_ms": target + DAY}))
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "forbidden", "{ack}");
    monitor.close().await;
    a.close().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_a_day_ahead_of_the_device_and_a_synchronised_hub_refuse_clock_set() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-ntp");
    let ahead = start(dir.path(), &missing).await;
    ahead.hub.clock.shift(DAY);
    let mut a = admin(&ahead).await;
    let snap = snapshot(&mut a).await;
    let device_now = wall();
    let diff = snap["server_time"].as_i64().expect("time") - device_now;
    assert!((diff - DAY).abs() < 60_000, "the page sees a day: {diff}");
    assert_eq!(snap["clock"]["synchronized"], false);
    let ack = a
        .call("clock.set", json!({"now_ms": device_now}))
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "conflict", "only forward: {ack}");
    a.close().await;
    ahead.stop().await;

    // Synchronised (the file exists): clock.set is refused outright.
    let dir = tempfile::tempdir().expect("dir");
    let synced = dir.path().join("synchronized");
    std::fs::write(&synced, b"").expect("touch");
    let hub = start(dir.path(), &synced).await;
    assert_eq!(healthz(&hub)["clock"]["synchronized"], true);
    let (_, metrics) = common::http_get(hub.addr.port(), "/metrics").expect("metrics");
    assert!(
        metrics.contains("spa_hub_clock_synchronized 1"),
        "{metrics}"
    );
    let a = admin(&hub).await;
    let ack = a
        .call("clock.set", json!({"now_ms": wall() + DAY}))
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "conflict", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("synchronised"),
        "{ack}"
    );
    a.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpiochip_lights_without_channels_still_start() {
    // A box installed before its lights are wired (or a machine without a
    // GPIO chip): SPA_LIGHTS=gpiochip and no SPA_LIGHT_CHANNELS runs.
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().display().to_string();
    let source = Source::from_pairs([
        ("SPA_LISTEN", "127.0.0.1:0"),
        ("SPA_DATA_DIR", data.as_str()),
        ("SPA_ADMIN_TOKEN", ADMIN),
        ("SPA_LIGHTS", "gpiochip"),
    ]);
    let config = Config::from_source(&source).expect("config");
    let running = spa_hub::daemon::start(config).await.expect("starts");
    assert_eq!(healthz(&running)["storage"], "ok");
    running.stop().await;
}
