//! Storage: round trip, migration refusal, second-process refusal, backup
//! and restore, and the single writer's group commit (gap-free seq from
//! concurrent submitters; a storage failure changes nothing).

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use spa_hub::clock::SpaClock;
use spa_hub::domain::command::{RoomCreate, RoomRef};
use spa_hub::domain::event::Event;
use spa_hub::domain::state::{Record, RecordKey};
use spa_hub::domain::{Actor, Command, ErrorCode, EventRecord, Rules};
use spa_hub::store::{Store, StoreError, SCHEMA_VERSION};
use spa_hub::writer::Writer;

const CACHE: u64 = 8 * 1024 * 1024;

fn room(name: &str) -> Command {
    Command::RoomCreate(RoomCreate {
        name: name.into(),
        capacity: 1,
        light_channel: None,
    })
}

fn start_writer(dir: &std::path::Path) -> (Writer, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let store = Store::open(dir, CACHE).expect("open");
    let switch = store.failure_switch();
    let state = store.load_state().expect("load");
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    let writer = Writer::spawn(store, state, clock, Rules::default(), Vec::new()).expect("writer");
    (writer, switch)
}

#[tokio::test]
async fn records_and_events_round_trip_through_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let (writer, _) = start_writer(dir.path());
    for i in 0..10 {
        let reply = writer
            .handle
            .execute(Actor::AdminToken, room(&format!("Room {i}")))
            .await
            .expect("ok");
        assert_eq!(reply["seq"], json!(i + 1));
    }
    let before = writer.handle.read(|s, _| s.clone()).await.expect("read");
    writer.stop().await;

    let store = Store::open(dir.path(), CACHE).expect("reopen");
    let after = store.load_state().expect("load");
    assert_eq!(
        before, after,
        "the state rebuilt from records equals the one in memory"
    );
    let seqs: Vec<u64> = store
        .events_from(1)
        .map(|e| e.expect("event").seq)
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let info = store.info().expect("info");
    assert_eq!(
        (info.schema_version, info.event_count, info.last_seq),
        (SCHEMA_VERSION, 10, 10)
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let store = Store::open(dir.path(), CACHE).expect("open");
        store
            .force_schema_version(SCHEMA_VERSION + 1)
            .expect("bump");
    }
    match Store::open(dir.path(), CACHE) {
        Err(StoreError::TooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer database was opened"),
    }
    // Still refused the second time: nothing was rewritten.
    assert!(matches!(
        Store::open(dir.path(), CACHE),
        Err(StoreError::TooNew { .. })
    ));
    let (code, _, err) = common::run_cli(
        &["check"],
        &[("SPA_DATA_DIR", dir.path().to_str().expect("utf8"))],
    );
    assert_ne!(code, 0);
    assert!(err.contains("newer") || err.is_empty(), "{err}");
}

#[test]
fn an_old_database_without_a_version_is_migrated() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        // A version-0 database: data but no version key.
        let db = sled::open(dir.path().join("db")).expect("sled");
        let meta = db.open_tree("meta").expect("tree");
        let floor = db.open_tree("floor").expect("tree");
        let counters = spa_hub::domain::state::Record::Counters(Default::default());
        let mut key = vec![b'r'];
        key.extend(spa_hub::domain::state::RecordKey::Counters.to_bytes());
        floor
            .insert(key, postcard::to_stdvec(&counters).expect("enc"))
            .expect("insert");
        assert!(meta.get("schema_version").expect("get").is_none());
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path(), CACHE).expect("migrates");
    assert_eq!(store.info().expect("info").schema_version, SCHEMA_VERSION);
}

#[test]
fn a_second_opener_fails_at_once_naming_the_directory() {
    let dir = tempfile::tempdir().expect("tmp");
    let _first = Store::open(dir.path(), CACHE).expect("open");
    let started = Instant::now();
    match Store::open(dir.path(), CACHE) {
        Err(e @ StoreError::Locked { .. }) => {
            assert!(
                e.to_string().contains(&dir.path().display().to_string()),
                "{e}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened twice"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");
}

#[test]
fn a_second_daemon_process_is_refused_with_the_directory_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let daemon = common::Daemon::start(&data, &[]);
    let port = common::free_port().to_string();
    let data_s = data.to_str().expect("utf8");
    let started = Instant::now();
    let (code, _, err) = common::run_cli(
        &["serve"],
        &[
            ("SPA_DATA_DIR", data_s),
            ("SPA_LISTEN", &format!("127.0.0.1:{port}")),
            ("SPA_LIGHTS", "sim"),
            ("SPA_LOG_TARGET", "stderr"),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("in use by another spa-hub") && err.contains(data_s),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // `check` reports it without failing.
    let (code, out, _) = common::run_cli(&["check"], &[("SPA_DATA_DIR", data_s)]);
    assert!(out.contains("in use by a running spa-hub"), "{out}");
    let _ = code;
    assert_eq!(daemon.stop(), Some(0));
}

#[tokio::test]
async fn concurrent_submitters_produce_one_gap_free_sequence() {
    let dir = tempfile::tempdir().expect("tmp");
    let (writer, _) = start_writer(dir.path());
    let mut tasks = Vec::new();
    for t in 0..8 {
        let handle = writer.handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..40 {
                let reply = handle
                    .execute(Actor::AdminToken, room(&format!("T{t}-{i}")))
                    .await
                    .expect("ok");
                seqs.push(reply["seq"].as_u64().expect("seq"));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=320).collect::<Vec<_>>(),
        "every ack has its own seq, none missing"
    );
    let batches = writer.handle.health().batches.load(Ordering::Relaxed);
    assert!(batches <= 320, "{batches} batches");
    writer.stop().await;
    let store = Store::open(dir.path(), CACHE).expect("reopen");
    let logged: Vec<u64> = store
        .events_from(1)
        .map(|e| e.expect("event").seq)
        .collect();
    assert_eq!(logged, (1..=320).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_storage_failure_fails_the_batch_with_unavailable_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (writer, switch) = start_writer(dir.path());
    writer
        .handle
        .execute(Actor::AdminToken, room("A"))
        .await
        .expect("ok");
    let before = writer.handle.read(|s, _| s.clone()).await.expect("read");

    switch.store(true, Ordering::Relaxed);
    let err = writer
        .handle
        .execute(Actor::AdminToken, room("B"))
        .await
        .expect_err("fails");
    assert_eq!(err.code, ErrorCode::Unavailable);
    let remove = Command::RoomRemove(RoomRef { room_id: 1 });
    let err = writer
        .handle
        .execute(Actor::AdminToken, remove.clone())
        .await
        .expect_err("fails");
    assert_eq!(err.code, ErrorCode::Unavailable);
    // A refusal stays a refusal (it changed nothing anyway).
    let err = writer
        .handle
        .execute(Actor::AdminToken, room("A"))
        .await
        .expect_err("dup");
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(writer
        .handle
        .health()
        .storage_failing
        .load(Ordering::Relaxed));
    let during = writer.handle.read(|s, _| s.clone()).await.expect("read");
    assert_eq!(before, during, "nothing changed in memory");

    switch.store(false, Ordering::Relaxed);
    let reply = writer
        .handle
        .execute(Actor::AdminToken, room("B"))
        .await
        .expect("ok again");
    assert_eq!(reply["seq"], json!(2), "seq continues without a gap");
    assert!(!writer
        .handle
        .health()
        .storage_failing
        .load(Ordering::Relaxed));
    writer.stop().await;
    let store = Store::open(dir.path(), CACHE).expect("reopen");
    let names: Vec<String> = store
        .events_from(1)
        .filter_map(|e| match e.expect("event").event {
            Event::RoomCreated { room } => Some(room.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["A", "B"]);
}

#[test]
fn backup_and_restore_round_trip_and_refuse_a_damaged_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let data_s = data.to_str().expect("utf8");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let (writer, _) = start_writer(&data);
        for i in 0..5 {
            writer
                .handle
                .execute(Actor::AdminToken, room(&format!("R{i}")))
                .await
                .expect("ok");
        }
        writer.stop().await;
    });
    let file = dir.path().join("backup.bin");
    let file_s = file.to_str().expect("utf8");
    let env = [("SPA_DATA_DIR", data_s)];
    let (code, out, err) = common::run_cli(&["backup", file_s], &env);
    assert_eq!(code, 0, "{out}{err}");

    // Restore into a fresh directory.
    let other = dir.path().join("other");
    let other_s = other.to_str().expect("utf8");
    let (code, out, err) = common::run_cli(&["restore", file_s], &[("SPA_DATA_DIR", other_s)]);
    assert_eq!(code, 0, "{out}{err}");
    let restored = Store::open(&other, CACHE)
        .expect("open")
        .load_state()
        .expect("load");
    let original = Store::open(&data, CACHE)
        .expect("open")
        .load_state()
        .expect("load");
    assert_eq!(restored, original);

    // Restoring over existing data moves the old database aside.
    let (code, out, _) = common::run_cli(&["restore", file_s], &[("SPA_DATA_DIR", other_s)]);
    assert_eq!(code, 0);
    assert!(out.contains("moved to"), "{out}");

    // A damaged file is refused and changes nothing.
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    let damaged = dir.path().join("damaged.bin");
    std::fs::write(&damaged, bytes).expect("write");
    let (code, _, err) = common::run_cli(
        &["restore", damaged.to_str().expect("utf8")],
        &[("SPA_DATA_DIR", other_s)],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("checksum") || err.contains("truncated"),
        "{err}"
    );
}

/// A backup made by the release before the book (schema 1: a cashier's
/// drawer, three paid visits with tips, one waiting) restores into this
/// build: migrated to the current schema, every record kept, the state equal
/// to a replay of its log, and its day's books unchanged.
#[test]
fn a_schema_1_database_from_the_previous_release_opens_with_everything_kept() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("schema1-day.backup");
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), CACHE).expect("open");
    store.restore(&fixture).expect("restores");
    let info = store.info().expect("info");
    assert_eq!(info.schema_version, SCHEMA_VERSION);
    let state = store.load_state().expect("records decode");
    let events: Vec<_> = store
        .log_reader()
        .events_from(1)
        .collect::<Result<_, _>>()
        .expect("events decode");
    assert_eq!(events.len() as u64, state.seq());
    let mut replayed = spa_hub::domain::State::default();
    for e in &events {
        replayed.apply(e);
    }
    assert_eq!(replayed, state, "the records and the log agree");
    assert_eq!(state.rooms.len(), 2);
    assert_eq!(state.services.len(), 1);
    assert_eq!(state.staff.len(), 2);
    assert_eq!(state.devices.len(), 1);
    assert_eq!(state.visits.len(), 4);
    assert!(state.bookings.is_empty() && state.shifts.is_empty());
    // The 1.5 turn weight came through the f64 of schema 1 exactly.
    let svc = state.services.values().next().expect("service");
    assert_eq!(svc.turn_weight, spa_hub::domain::rotation::Turns(1_500));
    let day = state.visits.values().next().expect("visit").day;
    let report = spa_hub::domain::report::day_report(events, day, |_| day);
    assert_eq!(report.services_cents, 15_000);
    assert_eq!(report.tips.cents, 1_500);
    assert_eq!(report.revenue_by_method.cash, 16_500);
    assert_eq!(
        report.therapists.iter().map(|t| t.tips_cents).sum::<i64>(),
        1_500
    );
}

/// The packing tests' event `seq`: small, and each one different.
fn event(seq: u64) -> EventRecord {
    EventRecord {
        seq,
        at: 1_800_000_000_000 + seq as i64,
        actor: Actor::System,
        event: Event::ClockSet {
            from_ms: seq as i64,
            to_ms: seq as i64 + 1,
        },
    }
}

/// The record that says the log ends at `seq` (backup and restore check
/// it), for a commit of events without a writer.
fn counters(seq: u64) -> Vec<(RecordKey, Option<Record>)> {
    let mut s = spa_hub::domain::State::default();
    s.counters.seq = seq;
    let key = RecordKey::Counters;
    vec![(key.clone(), s.record(&key))]
}

/// Old events are packed (fewer sled keys; see `store::event_log`): every
/// reader still gets every event once, in order — from any seq, across
/// the packs and the single keys, while a pack is made under a reader,
/// after a reopen, and after a backup and restore — and the newest stay
/// single.
#[test]
fn packed_events_read_back_whole_in_order_from_anywhere() {
    use spa_hub::store::{EVENTS_PER_PACK, SINGLE_EVENTS_KEPT};
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let store = Store::open(&data, CACHE).expect("open");
    let total = SINGLE_EVENTS_KEPT + 3 * EVENTS_PER_PACK as u64 * 10 + 17;
    let mut seq = 0;
    while seq < total {
        let batch: Vec<EventRecord> = (seq + 1..=(seq + 500).min(total)).map(event).collect();
        seq = batch.last().map_or(seq, |e| e.seq);
        store.commit(&batch, &counters(seq)).expect("commit");
    }
    let all = |store: &Store, from: u64| -> Vec<u64> {
        store
            .events_from(from)
            .map(|e| {
                let e = e.expect("readable");
                assert_eq!(e, event(e.seq), "event {} read back as written", e.seq);
                e.seq
            })
            .collect()
    };

    // A reader that started before the packing goes on without a gap.
    let mut early = store.events_from(1);
    let first: Vec<u64> = early
        .by_ref()
        .take(100)
        .map(|e| e.expect("e").seq)
        .collect();
    assert!(
        store.pack_events(3).expect("pack"),
        "three packs made, more due"
    );
    assert!(store.pack_events(usize::MAX).is_ok());
    let rest: Vec<u64> = early.map(|e| e.expect("e").seq).collect();
    assert_eq!([first, rest].concat(), (1..=total).collect::<Vec<_>>());

    let packed = (total - SINGLE_EVENTS_KEPT) / EVENTS_PER_PACK as u64 * EVENTS_PER_PACK as u64;
    assert!(packed > 0);
    for from in [
        1,
        2,
        64,
        65,
        packed - 1,
        packed,
        packed + 1,
        total - 1,
        total,
    ] {
        assert_eq!(
            all(&store, from),
            (from..=total).collect::<Vec<_>>(),
            "from {from}"
        );
    }
    assert!(all(&store, total + 1).is_empty());
    assert_eq!(store.last_seq().expect("last"), total);
    assert_eq!(store.info().expect("info").event_count as u64, total);
    // Nothing more to pack: the newest stay single.
    assert!(!store.pack_events(usize::MAX).expect("pack"));
    drop(store);

    let store = Store::open(&data, CACHE).expect("reopen");
    assert_eq!(all(&store, 1), (1..=total).collect::<Vec<_>>());
    // More events, and the next pass packs the ones that aged.
    let more: Vec<EventRecord> = (total + 1..=total + 200).map(event).collect();
    store.commit(&more, &counters(total + 200)).expect("commit");
    store.pack_events(usize::MAX).expect("pack");
    assert_eq!(all(&store, 1), (1..=total + 200).collect::<Vec<_>>());
    drop(store);

    let file = dir.path().join("backup.bin");
    let env = [("SPA_DATA_DIR", data.to_str().expect("utf8"))];
    let (code, out, err) = common::run_cli(&["backup", file.to_str().expect("utf8")], &env);
    assert_eq!(code, 0, "{out}{err}");
    let other = dir.path().join("other");
    let (code, out, err) = common::run_cli(
        &["restore", file.to_str().expect("utf8")],
        &[("SPA_DATA_DIR", other.to_str().expect("utf8"))],
    );
    assert_eq!(code, 0, "{out}{err}");
    let restored = Store::open(&other, CACHE).expect("open");
    assert_eq!(all(&restored, 1), (1..=total + 200).collect::<Vec<_>>());
}

/// Packing under SIGKILL: a child process commits events (each batch
/// flushed before it says "acked") and packs the old ones between
/// batches; it is killed at random moments. After every kill the log reads
/// back gap-free from seq 1, every event as written, and nothing it acked
/// is lost.
#[test]
fn packing_survives_sigkill_with_nothing_acked_lost() {
    use std::io::{BufRead, BufReader};
    if let Some(dir) = std::env::var_os("SPA_PACK_CHILD_DIR") {
        // The child: commit, say so, pack a little, until killed.
        let store = Store::open(std::path::Path::new(&dir), CACHE).expect("open");
        let mut seq = store.last_seq().expect("last");
        loop {
            let batch: Vec<EventRecord> = (seq + 1..=seq + 200).map(event).collect();
            seq += 200;
            store.commit(&batch, &counters(seq)).expect("commit");
            println!("acked {seq}");
            store.pack_events(4).expect("pack");
        }
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut acked = 0u64;
    for round in 0..6 {
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "packing_survives_sigkill_with_nothing_acked_lost",
                "--nocapture",
            ])
            .env("SPA_PACK_CHILD_DIR", &data)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(400 + rng % 900));
        child.kill().expect("SIGKILL");
        let out = child.stdout.take().expect("stdout");
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("acked ").and_then(|n| n.parse().ok()) {
                acked = acked.max(n);
            }
        }
        let _ = child.wait();
        let store = Store::open(&data, CACHE).expect("reopen after SIGKILL");
        let last = store.last_seq().expect("last");
        assert!(
            last >= acked,
            "round {round}: acked {acked}, the log ends at {last}"
        );
        let mut expect = 1;
        for e in store.events_from(1) {
            let e = e.expect("readable");
            assert_eq!(e, event(expect), "round {round}: seq {expect}");
            expect += 1;
        }
        assert_eq!(
            expect - 1,
            last,
            "round {round}: every event up to the last"
        );
        assert_eq!(store.info().expect("info").event_count as u64, last);
    }
    // The kills came while packing: some of the log is packed.
    assert!(
        acked > spa_hub::store::SINGLE_EVENTS_KEPT + 64,
        "only {acked} events"
    );
}
