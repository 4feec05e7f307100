//! `spa-hub bench`: measurements an installer or a developer can run.
//!
//! - `writer`: durable commands per second through the single writer with
//!   1, 8 and 64 concurrent submitters (group commit).
//! - `startup`: time from process start to ready with a large database.
//! - `core`: cost of deciding and applying `visit.call` on a busy floor,
//!   the size of the monitor's and cashier's views, and a checkout with 10
//!   lines and 3 payments (`bench_counter`).
//! - `hub`: N Socket.IO monitors plus a driver against a running hub (or
//!   the bench floor): connect time, ack and delivery latency, losses,
//!   closed-loop throughput, and the server's memory per connection.
//! - `wear`: bytes written to the disk per idle and per busy hour
//!   (`bench_wear`).
//! - `chain`: replication to NATS JetStream and head office (#20).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clock::SpaClock;
use crate::domain::command::{
    RoomCreate, RoomSetStatus, ServiceCreate, StaffCreate, TherapistRef, VisitCall, VisitCreate,
    VisitRef,
};
use crate::domain::state::RoomStatus;
use crate::domain::views::{self, Viewer};
use crate::domain::{decide, Actor, Command, EventRecord, Now, Role, Rules, State};
use crate::store::Store;
use crate::writer::Writer;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchWhat {
    /// Durable commands/s through the writer with 1, 8 and 64 submitters.
    Writer {
        /// Seconds per submitter count.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Where to put the temporary database (default: the system temp dir).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Time from process start to ready with a database of N events.
    Startup {
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Decide + apply `visit.call` with 50 therapists, 30 rooms, 200 waiting.
    Core {
        #[arg(long, default_value_t = 20_000)]
        iterations: u32,
    },
    /// A database of N busy days (300 walk-ins and 200 bookings a day):
    /// size, start-up, memory, snapshot and report times.
    Year {
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// N customer records and M past visits linked to them: start-up,
    /// memory and `customer.search` p50/p99 (#16).
    Customers {
        #[arg(long, default_value_t = 50_000)]
        customers: u64,
        #[arg(long, default_value_t = 150_000)]
        visits: u64,
        /// Searches of each kind (name prefix, phone digits).
        #[arg(long, default_value_t = 1000)]
        searches: usize,
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Keep the built database in DIR/spa-hub-bench-customers and use
        /// it again on the next run instead of building it (about 4 min).
        #[arg(long)]
        keep: bool,
    },
    /// Socket.IO load against a running hub or the bench floor.
    Hub(crate::bench_hub::HubArgs),
    /// Bytes the hub writes to its disk (SD-card wear) per idle hour with
    /// N clients connected and per busy hour of commands (/proc/PID/io).
    Wear(crate::bench_wear::WearArgs),
    /// A chain on a real nats-server: catch-up and head office ingest of a
    /// backlog, steady-state lag, fan-out and RSS with replication off/on.
    Chain(crate::bench_chain::ChainArgs),
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    match args.what {
        BenchWhat::Writer { seconds, dir } => writer(seconds, dir).await,
        BenchWhat::Startup { events, runs, dir } => startup(events, runs, dir).await,
        BenchWhat::Core { iterations } => {
            core(iterations);
            crate::bench_book::bench(iterations);
            Ok(())
        }
        BenchWhat::Year { days, dir } => crate::bench_year::run(days, dir).await,
        BenchWhat::Customers {
            customers,
            visits,
            searches,
            dir,
            keep,
        } => crate::bench_customers::run(customers, visits, searches, dir, keep).await,
        BenchWhat::Hub(a) => crate::bench_hub::run(a).await.map(|_| ()),
        BenchWhat::Wear(a) => crate::bench_wear::run(a).await,
        BenchWhat::Chain(a) => crate::bench_chain::run(a).await,
    }
}

/// Decides a command as the admin and applies its events with the next
/// seqs (what the writer does, minus the disk); returns the records.
/// The `p` quantile (0–1) of `sorted` samples, NaN when there are none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A process's resident memory (KB), from `/proc`.
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Stops a daemon the bench spawned as systemd would (SIGTERM) and waits.
pub(crate) fn stop_daemon(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

pub(crate) fn run_as_admin(
    state: &mut State,
    cmd: &Command,
    now: Now,
    rules: &Rules,
) -> Vec<EventRecord> {
    let Ok(d) = decide(state, &Actor::AdminToken, cmd, now, rules) else {
        return Vec::new();
    };
    d.events
        .into_iter()
        .map(|event| {
            let record = EventRecord {
                seq: state.seq() + 1,
                at: now.ms,
                actor: Actor::AdminToken,
                event,
            };
            state.apply(&record);
            record
        })
        .collect()
}

fn temp_dir(base: Option<std::path::PathBuf>, name: &str) -> Result<std::path::PathBuf, String> {
    let base = base.unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("spa-hub-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

async fn writer(seconds: f64, dir: Option<std::path::PathBuf>) -> Result<(), String> {
    let dir = temp_dir(dir, "writer")?;
    let store = Store::open(&dir, 32 << 20).map_err(|e| e.to_string())?;
    let state = store.load_state().map_err(|e| e.to_string())?;
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    let writer = Writer::spawn(store, state, clock, Rules::default(), Vec::new())
        .map_err(|e| e.to_string())?;
    let h = writer.handle.clone();
    // One room per submitter; each toggles its own room available ⇄ cleaning.
    for i in 0..64 {
        h.execute(
            Actor::AdminToken,
            Command::RoomCreate(RoomCreate {
                name: format!("Bench {i}"),
                capacity: 1,
                light_channel: None,
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    println!(
        "writer bench: durable commands/s (each ack after its batch's flush), {seconds} s per row"
    );
    println!(
        "{:>10} {:>12} {:>12} {:>14}",
        "submitters", "commands/s", "batches/s", "mean batch"
    );
    let mut base_rate = 0.0;
    for submitters in [1usize, 8, 64] {
        let before_batches = h
            .health()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..submitters {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut cleaning = false;
                while Instant::now() < deadline {
                    cleaning = !cleaning;
                    let status = if cleaning {
                        RoomStatus::Cleaning
                    } else {
                        RoomStatus::Available
                    };
                    let cmd = Command::RoomSetStatus(RoomSetStatus {
                        room_id: (s + 1) as u64,
                        status,
                        reason: None,
                    });
                    if h.execute(Actor::AdminToken, cmd).await.is_ok() {
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap_or(0);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let batches = h
            .health()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
            - before_batches;
        let rate = total as f64 / elapsed;
        if submitters == 1 {
            base_rate = rate;
        }
        println!(
            "{submitters:>10} {rate:>12.0} {:>12.0} {:>14.1}   ({:.1}x the single submitter)",
            batches as f64 / elapsed,
            total as f64 / batches.max(1) as f64,
            rate / base_rate.max(1e-9)
        );
    }
    writer.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Builds a database with `events` events straight through the store, in
/// large batches (the same records the writer would write).
pub(crate) fn build_database(dir: &std::path::Path, events: u64) -> Result<(), String> {
    let store = Store::open(dir, 32 << 20).map_err(|e| e.to_string())?;
    let mut state = store.load_state().map_err(|e| e.to_string())?;
    let rules = Rules::default();
    let mut now = Now {
        ms: 1_795_700_000_000,
        day: 20261126,
    };
    let step =
        |state: &mut State,
         cmd: Command,
         now: Now,
         log: &mut Vec<EventRecord>,
         touched: &mut std::collections::BTreeSet<crate::domain::state::RecordKey>| {
            // Touched keys are read before each event is applied.
            let mut probe = state.clone();
            for record in run_as_admin(&mut probe, &cmd, now, &rules) {
                touched.extend(state.touched(&record.event));
                state.apply(&record);
                log.push(record);
            }
        };
    let mut written = 0;
    let mut room_seq = 0u64;
    while written < events {
        let mut log = Vec::new();
        let mut touched = std::collections::BTreeSet::new();
        while (log.len() as u64) < 2000 && written + (log.len() as u64) < events {
            now.ms += 1000;
            if state.rooms.len() < 30 {
                room_seq += 1;
                step(
                    &mut state,
                    Command::RoomCreate(RoomCreate {
                        name: format!("Room {room_seq}"),
                        capacity: 1,
                        light_channel: None,
                    }),
                    now,
                    &mut log,
                    &mut touched,
                );
                continue;
            }
            let id = *state
                .rooms
                .keys()
                .nth((now.ms / 1000 % 30) as usize)
                .unwrap_or(&1);
            let status = match state.rooms.get(&id).map(|r| r.status) {
                Some(RoomStatus::Available) => RoomStatus::Cleaning,
                _ => RoomStatus::Available,
            };
            step(
                &mut state,
                Command::RoomSetStatus(RoomSetStatus {
                    room_id: id,
                    status,
                    reason: None,
                }),
                now,
                &mut log,
                &mut touched,
            );
        }
        let records: Vec<_> = touched
            .iter()
            .map(|k| (k.clone(), state.record(k)))
            .collect();
        store.commit(&log, &records).map_err(|e| e.to_string())?;
        written += log.len() as u64;
    }
    Ok(())
}

/// Starts `spa-hub serve` (this binary) on `data` with a free port and
/// waits for the first 200 from `/healthz`; returns the child and how long
/// that took (`None`: not within `limit`).
pub(crate) async fn spawn_until_ready(
    data: &std::path::Path,
    limit: Duration,
) -> Result<(std::process::Child, Option<Duration>), String> {
    let (child, _port, ready) = spawn_with(data, &[], limit).await?;
    Ok((child, ready))
}

/// The admin token of the hubs the benches start.
pub(crate) const BENCH_ADMIN: &str = "bench-admin-token-000000";

/// `spa-hub serve` on `data` and a free 127.0.0.1 port with extra `env`;
/// returns the child, its port and the time to the first 200 from
/// `/healthz` (`None`: not within `limit`).
pub(crate) async fn spawn_with(
    data: &std::path::Path,
    env: &[(&str, &str)],
    limit: Duration,
) -> Result<(std::process::Child, u16, Option<Duration>), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = std::process::Command::new(&exe)
        .arg("serve")
        .env("SPA_DATA_DIR", data)
        .env("SPA_LISTEN", format!("127.0.0.1:{port}"))
        .env("SPA_LIGHTS", "sim")
        .env("SPA_LOG", "warn")
        .env("SPA_LOG_TARGET", "stderr")
        .env("SPA_ADMIN_TOKEN", BENCH_ADMIN)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let ready = loop {
        if started.elapsed() > limit {
            break None;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                break Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    Ok((child, port, ready))
}

async fn startup(events: u64, runs: usize, dir: Option<std::path::PathBuf>) -> Result<(), String> {
    let dir = temp_dir(dir, "startup")?;
    let data = dir.join("data");
    let built = Instant::now();
    build_database(&data, events)?;
    println!(
        "built a database of {events} events in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for run in 0..runs {
        let (mut child, ready) = spawn_until_ready(&data, Duration::from_secs(30)).await?;
        stop_daemon(&mut child);
        match ready {
            Some(t) => {
                println!(
                    "run {}: ready (first 200 from /healthz) {:.0} ms after spawn",
                    run + 1,
                    t.as_secs_f64() * 1000.0
                );
                times.push(t);
            }
            None => return Err("the daemon did not become ready in 30 s".into()),
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "startup with {events} events: median {:.0} ms, best {:.0} ms (target < 300 ms)",
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A busy floor: 50 therapists clocked in, 30 rooms, 200 waiting visits.
pub fn busy_floor() -> (State, Now, Rules) {
    // A fixed gift card secret: the counter's bench sells cards.
    let rules = Rules {
        giftcard_key: Some(crate::domain::money::giftcode::CodeKey::new(&[0x5a; 32])),
        ..Rules::default()
    };
    let mut state = State::default();
    let mut now = Now {
        ms: 1_795_700_000_000,
        day: 20261126,
    };
    let run = |state: &mut State, cmd: Command, now: Now| {
        run_as_admin(state, &cmd, now, &rules);
    };
    for i in 0..30 {
        run(
            &mut state,
            Command::RoomCreate(RoomCreate {
                name: format!("Room {i}"),
                capacity: 1,
                light_channel: None,
            }),
            now,
        );
    }
    for i in 0..5 {
        run(
            &mut state,
            Command::ServiceCreate(ServiceCreate {
                name: format!("Service {i}"),
                duration_min: 60,
                cleanup_min: 10,
                price_cents: 50_000,
                skill: None,
                turn_weight: 1.0,
                tax_rate_bp: 0,
            }),
            now,
        );
    }
    let service_ids: Vec<u64> = state.services.keys().copied().collect();
    for i in 0..50 {
        now.ms += 1000;
        run(
            &mut state,
            Command::StaffCreate(StaffCreate {
                name: format!("Therapist {i}"),
                role: Role::Therapist,
                pin: None,
                skills: vec![],
                pin_hash: "x".into(),
            }),
            now,
        );
        let id = state.counters.next_id - 1;
        run(
            &mut state,
            Command::ClockIn(TherapistRef {
                therapist_id: Some(id),
            }),
            now,
        );
    }
    for i in 0..200 {
        now.ms += 1000;
        run(
            &mut state,
            Command::VisitCreate(VisitCreate {
                customer_id: None,
                customer_name: format!("Customer {i}"),
                service_ids: vec![service_ids[i % service_ids.len()]],
                requested_therapist_id: None,
                phone: Some("0900000000".into()),
                notes: None,
                token_hash: format!("h{i}"),
            }),
            now,
        );
    }
    (state, now, rules)
}

fn core(iterations: u32) {
    let (mut state, now, rules) = busy_floor();
    println!(
        "core bench: {} therapists, {} rooms, {} waiting visits",
        50,
        state.rooms.len(),
        state.waiting().count()
    );
    let call = Command::VisitCall(VisitCall::default());
    // decide alone (pure, repeatable on the same state).
    let started = Instant::now();
    let mut ok = 0;
    for _ in 0..iterations {
        if decide(&state, &Actor::AdminToken, &call, now, &rules).is_ok() {
            ok += 1;
        }
    }
    let decide_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    // decide + apply of the call, then decide + apply of its undo.
    let mut pairs_failed = 0u32;
    let started = Instant::now();
    for _ in 0..iterations {
        let called = run_as_admin(&mut state, &call, now, &rules);
        let visit_id = called
            .iter()
            .find_map(|r| match &r.event {
                crate::domain::Event::VisitCalled { visit_id, .. } => Some(*visit_id),
                _ => None,
            })
            .unwrap_or(0);
        let undo = Command::VisitUndo(VisitRef { visit_id });
        if run_as_admin(&mut state, &undo, now, &rules).is_empty() {
            pairs_failed += 1;
        }
    }
    let pair_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    println!("visit.call decide: {decide_us:.2} µs ({ok} ok of {iterations})");
    println!("visit.call decide+apply then undo decide+apply: {pair_us:.2} µs per pair, {pairs_failed} failed (target: one call < 20 µs)");
    // Built on the writer's thread when a client connects or syncs.
    let built = |viewer| {
        let started = Instant::now();
        let snapshot = views::snapshot(viewer, &state, now);
        (snapshot, started.elapsed().as_secs_f64() * 1000.0)
    };
    let (office, office_ms) = built(Viewer::Office);
    let (monitor, monitor_ms) = built(Viewer::Monitor);
    println!(
        "snapshot build on the writer: cashier/admin {office_ms:.2} ms, monitor {monitor_ms:.2} ms"
    );
    let monitor = monitor.to_string();
    let office = office.to_string();
    let therapist = views::snapshot(Viewer::Therapist(40), &state, now).to_string();
    println!(
        "snapshot sizes: monitor {} bytes, cashier/admin {} bytes, therapist {} bytes",
        monitor.len(),
        office.len(),
        therapist.len()
    );
    let _ = json!(null);
    crate::bench_counter::checkout(&mut state, now, &rules, iterations.min(5_000));
}
