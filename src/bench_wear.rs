//! `spa-hub bench wear`: how much the hub writes to its disk (an SD card on
//! a Pi), from the kernel's own count (`/proc/PID/io`).
//!
//! Starts the hub on a temporary data directory (on the same file system as
//! `--dir`: put it on the card to measure the card), sets up a floor, then:
//! - idle: `--clients` monitors connected (heartbeats only), nothing
//!   changing, for `--idle-seconds`; bytes written, extrapolated to an hour;
//! - busy: one busy hour's mix of commands — `--visits` walk-ins (about 42
//!   an hour: `bench year`'s 300 walk-ins and 200 bookings over a 12-hour
//!   day), each created, called, started, finished, its room made ready and
//!   paid — sent one at a time, spread over `--busy-seconds` (each command
//!   still commits and flushes on its own, as at the real pace); bytes
//!   written for the whole hour's mix.
//!
//! `write_bytes` is what reached the block layer (what wears the card);
//! `wchar` is what the process handed to write(2) (also counts on tmpfs).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::Client;

#[derive(Debug, Clone, clap::Args)]
pub struct WearArgs {
    /// Monitor connections held open throughout.
    #[arg(long, default_value_t = 280)]
    pub clients: usize,
    /// Seconds of the idle window (extrapolated to an hour).
    #[arg(long, default_value_t = 120.0)]
    pub idle_seconds: f64,
    /// Walk-ins in one busy hour.
    #[arg(long, default_value_t = 42)]
    pub visits: usize,
    /// Seconds the busy hour's commands are spread over.
    #[arg(long, default_value_t = 60.0)]
    pub busy_seconds: f64,
    /// Where the temporary data directory goes (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// `/proc/PID/io`'s `wchar` and `write_bytes`.
fn io_counts(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("wchar:")?, field("write_bytes:")?))
}

/// The first `id` under `key` in an ack's data.
fn id_of(ack: &Value, key: &str) -> Result<u64, String> {
    ack.pointer(&format!("/data/{key}/id"))
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("no {key} id in {ack}"))
}

async fn ok(c: &Client, name: &str, args: Value) -> Result<Value, String> {
    let ack = c
        .call(name, args)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if ack["ok"] != true {
        return Err(format!("{name}: {ack}"));
    }
    Ok(ack)
}

fn human(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", bytes / 1024.0 / 1024.0)
    } else if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

pub async fn run(a: WearArgs) -> Result<(), String> {
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let data = base.join(format!("spa-hub-bench-wear-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let budget = (a.clients + 64).to_string();
    let env = [
        ("SPA_MAX_CONNECTIONS", budget.as_str()),
        ("SPA_MAX_CONNECTIONS_PER_TOKEN", budget.as_str()),
        ("SPA_MAX_PENDING_PER_ADDRESS", budget.as_str()),
        ("SPA_MAX_HTTP_CONNECTIONS", budget.as_str()),
        ("SPA_STAFF_RESERVE_PERCENT", "0"),
    ];
    let (mut child, port, ready) =
        crate::bench::spawn_with(&data, &env, Duration::from_secs(30)).await?;
    let result = measure(&a, child.id(), port).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    if ready.is_none() {
        return Err("the hub did not become ready within 30 s".into());
    }
    result
}

async fn measure(a: &WearArgs, pid: u32, port: u16) -> Result<(), String> {
    let url = format!("ws://127.0.0.1:{port}");
    let admin = Client::connect(&url, crate::bench::BENCH_ADMIN)
        .await
        .map_err(|e| format!("admin: {e}"))?;
    // The floor: 6 rooms, 2 services, 6 therapists clocked in.
    let mut rooms = Vec::new();
    for n in 1..=6 {
        let ack = ok(
            &admin,
            "room.create",
            json!({"name": format!("Room {n}"), "capacity": 1}),
        )
        .await?;
        rooms.push(id_of(&ack, "room")?);
    }
    let mut services = Vec::new();
    for (name, min) in [("Thai", 60), ("Foot", 30)] {
        let ack = ok(
            &admin,
            "service.create",
            json!({"name": name, "duration_min": min, "cleanup_min": 5, "price_cents": 5000}),
        )
        .await?;
        services.push(id_of(&ack, "service")?);
    }
    for n in 1..=6 {
        let ack = ok(
            &admin,
            "staff.create",
            json!({"name": format!("T{n}"), "role": "therapist", "pin": format!("90{n:02}")}),
        )
        .await?;
        let id = id_of(&ack, "staff")?;
        ok(&admin, "therapist.clock_in", json!({"therapist_id": id})).await?;
    }
    ok(&admin, "drawer.open", json!({"float_cents": 10_000})).await?;
    let pair = ok(
        &admin,
        "device.pair",
        json!({"role": "monitor", "name": "wear"}),
    )
    .await?;
    let token = pair["data"]["token"]
        .as_str()
        .ok_or("no device token")?
        .to_string();

    // The clients: monitors, connected a few at a time.
    let mut monitors = Vec::with_capacity(a.clients);
    for _ in 0..a.clients {
        monitors.push(
            Client::connect(&url, &token)
                .await
                .map_err(|e| format!("monitor: {e}"))?,
        );
    }
    // Let start-up writes (the floor, sled's first flushes) settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "bench wear: hub pid {pid}, {} monitors connected",
        monitors.len()
    );

    // Idle: nothing changes; only heartbeats cross the sockets.
    let (w0, b0) = io_counts(pid).ok_or("cannot read /proc/PID/io")?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.idle_seconds)).await;
    let secs = started.elapsed().as_secs_f64();
    let (w1, b1) = io_counts(pid).ok_or("cannot read /proc/PID/io")?;
    let per_hour = 3600.0 / secs;
    println!(
        "  idle  {secs:.0} s: write_bytes {} ({} per idle hour), wchar {} ({} per idle hour)",
        human((b1 - b0) as f64),
        human((b1 - b0) as f64 * per_hour),
        human((w1 - w0) as f64),
        human((w1 - w0) as f64 * per_hour),
    );

    // Busy: one hour's mix, one command at a time, spread evenly.
    let per_visit = 6;
    let gap = Duration::from_secs_f64(a.busy_seconds / (a.visits * per_visit).max(1) as f64);
    let (w0, b0) = io_counts(pid).ok_or("cannot read /proc/PID/io")?;
    let started = Instant::now();
    let mut commands = 0u64;
    for v in 0..a.visits {
        let service = services[v % services.len()];
        let ack = ok(
            &admin,
            "visit.create",
            json!({"customer_name": format!("Guest {v}"), "service_ids": [service]}),
        )
        .await?;
        let visit = id_of(&ack, "visit")?;
        let called = ok(&admin, "visit.call", json!({"visit_id": visit})).await?;
        let room = called
            .pointer("/data/visit/room_id")
            .and_then(Value::as_u64)
            .unwrap_or(rooms[0]);
        tokio::time::sleep(gap).await;
        ok(&admin, "visit.start", json!({"visit_id": visit})).await?;
        tokio::time::sleep(gap).await;
        ok(&admin, "visit.finish", json!({"visit_id": visit})).await?;
        tokio::time::sleep(gap).await;
        ok(
            &admin,
            "room.set_status",
            json!({"room_id": room, "status": "available"}),
        )
        .await?;
        tokio::time::sleep(gap).await;
        let total = 5000;
        ok(
            &admin,
            "visit.checkout",
            json!({"visit_id": visit, "request_id": format!("wear-{v}"), "tip_cents": 500,
                "payments": [{"method": "card", "amount_cents": total + 500}]}),
        )
        .await?;
        tokio::time::sleep(gap * 2).await;
        commands += per_visit as u64;
    }
    // sled's background flush settles within a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let secs = started.elapsed().as_secs_f64();
    let (w1, b1) = io_counts(pid).ok_or("cannot read /proc/PID/io")?;
    println!(
        "  busy  {} visits ({commands} commands) in {secs:.0} s: write_bytes {} per busy hour ({} per command), wchar {}",
        a.visits,
        human((b1 - b0) as f64),
        human((b1 - b0) as f64 / commands.max(1) as f64),
        human((w1 - w0) as f64),
    );
    for m in monitors {
        m.close().await;
    }
    admin.close().await;
    Ok(())
}
