//! The restart test: commands acked, the process killed with SIGKILL at a
//! moment when commands are in flight, restarted: every acked change is
//! there, and `seq` continues without a gap.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use spa_hub::client::Client;
use spa_hub::domain::event::Event;
use spa_hub::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_command_survives_sigkill_and_seq_has_no_gap() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut seed: u64 = 0x5eed_1234;
    for round in 0..3 {
        let daemon = common::Daemon::start(&data, &[]);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let url = daemon.ws();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(client) = Client::connect(&url, common::ADMIN).await else {
                    return;
                };
                for i in 0.. {
                    let name = format!("R{round}-{t}-{i}");
                    match client.call("room.create", json!({ "name": name })).await {
                        Ok(ack) if ack["ok"] == json!(true) => {
                            let seq = ack["data"]["seq"].as_u64().expect("seq");
                            acked.lock().expect("lock").push((name, seq));
                        }
                        _ => return, // the daemon died under us
                    }
                }
            }));
        }
        // Kill at a pseudo-random moment while commands are in flight.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 400)).await;
        daemon.kill();
        for t in tasks {
            let _ = t.await;
        }
    }
    // One clean start to let it recover, then stop, then read the log.
    let daemon = common::Daemon::start(&data, &[]);
    let client = Client::connect(&daemon.ws(), common::ADMIN)
        .await
        .expect("connect");
    let ack = match client.call("room.create", json!({"name": "after"})).await {
        Ok(a) => a,
        Err(e) => panic!(
            "ack: {e}; closed {:?}; log: {}",
            client.closed.lock().map(|c| c.clone()),
            daemon.stderr()
        ),
    };
    assert_eq!(ack["ok"], json!(true));
    client.close().await;
    assert_eq!(daemon.stop(), Some(0), "graceful stop exits 0");

    let store = Store::open(&data, 8 << 20).expect("open");
    let state = store.load_state().expect("load");
    let events: Vec<_> = store.events_from(1).map(|e| e.expect("event")).collect();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free, no duplicates"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 30, "the load made progress: {}", acked.len());
    for (name, seq) in &acked {
        let event = &events[(*seq - 1) as usize];
        match &event.event {
            Event::RoomCreated { room } => assert_eq!(&room.name, name, "seq {seq}"),
            other => panic!("seq {seq} is {other:?}, expected {name}"),
        }
        assert!(
            state.rooms.values().any(|r| &r.name == name),
            "{name} in the state"
        );
    }
    println!("{} acked commands checked after 3 SIGKILLs", acked.len());
}
