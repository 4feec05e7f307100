//! Room lights through the real daemon with the `sim` backend: at start the
//! lights show the persisted room states (every state, overtime included),
//! a change reaches the pins, storage failure flashes amber everywhere, and
//! every pin is off after a graceful stop.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use spa_hub::clock::SpaClock;
use spa_hub::config::{Config, Source};
use spa_hub::domain::command::*;
use spa_hub::domain::state::RoomStatus;
use spa_hub::domain::{Command, Rules};
use spa_hub::lights::LightStatus;
use spa_hub::store::Store;
use spa_hub::writer::Writer;

mod common;
use common::floor::{called_visit, id, ok};

const CHANNELS: &str = "1=2,3,4 2=5,6,7 3=8,9,10 4=11,12,13 5=14,15,16 6=17,18,19";

/// Builds a database with one room per state, each on its own channel.
async fn floor_in_every_state(dir: &std::path::Path) {
    let store = Store::open(dir, 8 << 20).expect("open");
    let state = store.load_state().expect("load");
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    // Two hours ago, so the session started then is overdue at start-up.
    clock.shift(-2 * 3_600_000);
    let rules = Rules {
        light_channels: vec![1, 2, 3, 4, 5, 6],
        ..Rules::default()
    };
    let writer = Writer::spawn(store, state, clock, rules, Vec::new()).expect("writer");
    let h = writer.handle.clone();
    let mut rooms = Vec::new();
    for ch in 1..=6u16 {
        let r = ok(
            &h,
            Command::RoomCreate(RoomCreate {
                name: format!("Room {ch}"),
                capacity: 1,
                light_channel: Some(ch),
            }),
        )
        .await;
        rooms.push(id(&r, "room"));
    }
    let short = id(
        &ok(
            &h,
            Command::ServiceCreate(ServiceCreate {
                name: "Short".into(),
                duration_min: 60,
                cleanup_min: 0,
                price_cents: 100,
                skill: None,
                turn_weight: 1.0,
                tax_rate_bp: 0,
            }),
        )
        .await,
        "service",
    );
    let long = id(
        &ok(
            &h,
            Command::ServiceCreate(ServiceCreate {
                name: "Long".into(),
                duration_min: 600,
                cleanup_min: 240,
                price_cents: 100,
                skill: None,
                turn_weight: 1.0,
                tax_rate_bp: 0,
            }),
        )
        .await,
        "service",
    );
    let visit_in = |n: usize, service: u64| {
        let h = h.clone();
        let room = rooms[n];
        async move { called_visit(&h, n, service, room, Some("test")).await }
    };
    // Room 1 available; room 2 held; room 3 occupied; room 4 overtime; room 5 cleaning; room 6 out of service.
    visit_in(1, long).await;
    let occupied = visit_in(2, long).await;
    ok(&h, Command::VisitStart(VisitRef { visit_id: occupied })).await;
    let overdue = visit_in(3, short).await;
    ok(&h, Command::VisitStart(VisitRef { visit_id: overdue })).await;
    let cleaned = visit_in(4, long).await;
    ok(&h, Command::VisitStart(VisitRef { visit_id: cleaned })).await;
    ok(&h, Command::VisitFinish(VisitRef { visit_id: cleaned })).await;
    ok(
        &h,
        Command::RoomSetStatus(RoomSetStatus {
            room_id: rooms[5],
            status: RoomStatus::OutOfService,
            reason: Some("leak".into()),
        }),
    )
    .await;
    writer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lights_follow_rooms_from_start_to_stop() {
    let dir = tempfile::tempdir().expect("tmp");
    floor_in_every_state(dir.path()).await;
    let data = dir.path().display().to_string();
    let config = Config::from_source(&Source::from_pairs([
        ("SPA_LISTEN", "127.0.0.1:0"),
        ("SPA_DATA_DIR", data.as_str()),
        ("SPA_ADMIN_TOKEN", "lights-test-admin-token"),
        ("SPA_LIGHTS", "sim"),
        ("SPA_LIGHT_CHANNELS", CHANNELS),
    ]))
    .expect("config");
    let running = spa_hub::daemon::start(config).await.expect("start");
    let lights = running.hub.lights.clone().expect("lights");
    let probe = lights.sim_probe().expect("sim");
    let want = [
        (1u16, LightStatus::Available),
        (2, LightStatus::Held),
        (3, LightStatus::Occupied),
        (4, LightStatus::Overtime),
        (5, LightStatus::Cleaning),
        (6, LightStatus::OutOfService),
    ];
    // The overtime timer fires right after start; give the lights a moment.
    let mut levels = lights.levels();
    for _ in 0..100 {
        levels = lights.levels();
        if want.iter().all(|(ch, st)| {
            levels
                .iter()
                .any(|l| l.channel == *ch && l.status == Some(*st))
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (ch, status) in want {
        let l = levels.iter().find(|l| l.channel == ch).expect("channel");
        assert_eq!(l.status, Some(status), "channel {ch}");
        match status {
            LightStatus::Available => assert!(l.green && !l.red && !l.amber && !l.blinking),
            LightStatus::Occupied => assert!(l.red && !l.green && !l.amber && !l.blinking),
            LightStatus::Cleaning => assert!(l.amber && !l.red && !l.green && !l.blinking),
            LightStatus::Held | LightStatus::Overtime | LightStatus::OutOfService => {
                assert!(l.blinking, "{status:?} blinks")
            }
        }
    }
    // Pin levels on the simulated GPIO agree (channel 1: red 2, amber 3, green 4).
    assert_eq!(
        (probe.level(2), probe.level(3), probe.level(4)),
        (Some(false), Some(false), Some(true))
    );
    assert_eq!(
        probe.level(8),
        Some(true),
        "occupied: red pin of channel 3 is high"
    );

    // A change reaches the pins promptly: room 1 taken out of service.
    let admin = spa_hub::client::Client::connect(
        &format!("ws://{}", running.addr),
        "lights-test-admin-token",
    )
    .await
    .expect("admin");
    let started = std::time::Instant::now();
    let ack = admin
        .call(
            "room.set_status",
            json!({"room_id": 1, "status": "cleaning"}),
        )
        .await
        .expect("ack");
    assert_eq!(ack["ok"], json!(true), "{ack}");
    while probe.level(3) != Some(true) && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        (probe.level(2), probe.level(3), probe.level(4)),
        (Some(false), Some(true), Some(false)),
        "cleaning = amber"
    );
    println!("commit → pins: {:?}", started.elapsed());

    // Storage failing: every channel flashes amber, and /healthz says so.
    running.storage_fault.store(true, Ordering::Relaxed);
    let ack = admin
        .call(
            "room.set_status",
            json!({"room_id": 1, "status": "available"}),
        )
        .await
        .expect("ack");
    assert_eq!(ack["error"]["code"], "unavailable");
    let mut failing = false;
    for _ in 0..100 {
        let l = lights.levels();
        if l.iter()
            .all(|c| c.storage_failing && c.blinking && !c.red && !c.green)
        {
            failing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failing, "all channels flash amber: {:?}", lights.levels());
    running.storage_fault.store(false, Ordering::Relaxed);
    let ack = admin
        .call(
            "room.set_status",
            json!({"room_id": 1, "status": "available"}),
        )
        .await
        .expect("ack");
    assert_eq!(ack["ok"], json!(true), "recovers: {ack}");
    for _ in 0..100 {
        if lights.levels().iter().all(|c| !c.storage_failing) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lights.levels().iter().all(|c| !c.storage_failing));
    admin.close().await;

    // Stop: every pin off.
    running.stop().await;
    let levels = probe.levels();
    assert_eq!(levels.len(), 18);
    assert!(
        levels.values().all(|on| !on),
        "all off after stop: {levels:?}"
    );
}
