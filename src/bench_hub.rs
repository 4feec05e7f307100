//! `spa-hub bench hub`: N Socket.IO monitors plus a driver that changes a
//! room's status, against a running hub (or the bench floor, which acks any
//! event and broadcasts a `room.updated`).
//!
//! Reports connect time, ack latency, delivery latency (driver send → a
//! monitor receives the event with that `seq`), time to the last client,
//! lost deliveries, closed-loop commands/s, and — given the server's pid —
//! its memory per connection, idle CPU and CPU under load.
//!
//! `--transport` chooses how the monitors connect: `websocket` (default),
//! `polling` (long-polling only, see `bench_poll`) or `upgrade` (polling
//! first, then the upgrade to a WebSocket, as a default client does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::bench::{percentile, rss_kb};
use crate::client::{self, Client, WsStream};

#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// Base WebSocket URL of the hub.
    #[arg(long, default_value = "ws://127.0.0.1:5000")]
    pub url: String,
    /// Admin token (the driver; also pairs the monitors' device token).
    #[arg(long, default_value = "")]
    pub token: String,
    /// Connect the monitors with this token instead of pairing a device.
    #[arg(long)]
    pub monitor_token: Option<String>,
    /// Number of monitor connections.
    #[arg(long, default_value_t = 500)]
    pub monitors: usize,
    /// Open loop: commands per second from the driver (0 = none).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Closed loop: each driver sends its next command when the ack arrives.
    #[arg(long)]
    pub closed_loop: bool,
    /// Drivers in closed-loop mode.
    #[arg(long, default_value_t = 1)]
    pub drivers: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to stay connected and idle before the load (heartbeats only).
    #[arg(long, default_value_t = 0.0)]
    pub idle: f64,
    /// The server's pid, to read its memory and CPU from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 100)]
    pub connect_parallel: usize,
    /// Label printed with the results.
    #[arg(long, default_value = "hub")]
    pub label: String,
    /// How the monitors connect: websocket, polling, or upgrade (polling,
    /// then the upgrade to a WebSocket).
    #[arg(long, default_value = "websocket", value_parser = ["websocket", "polling", "upgrade"])]
    pub transport: String,
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Prints one latency line; returns (p50, p99) in ms.
fn summary(name: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    println!(
        "  {name:<22} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  (n={})",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len()
    );
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// What a run measured, for benchmarks that compare runs.
#[derive(Debug, Clone, Copy)]
pub struct HubFigures {
    /// Fan-out (command sent → event at a monitor), ms.
    pub delivery_p50: f64,
    pub delivery_p99: f64,
}

pub async fn run(a: HubArgs) -> Result<HubFigures, String> {
    println!(
        "bench {}: {} monitors at {} over {}",
        a.label, a.monitors, a.url, a.transport
    );
    let driver = Client::connect(&a.url, &a.token)
        .await
        .map_err(|e| format!("driver: {e}"))?;
    // Set up: a room per driver to toggle (two drivers toggling one room
    // would mostly be refused) and a device token for the monitors. The
    // bench floor acks anything, so failures here are fine there.
    let mut rooms = Vec::new();
    for d in 0..a.drivers.max(1) {
        let created = driver
            .call(
                "room.create",
                json!({"name": format!("bench-{}-{d}", std::process::id())}),
            )
            .await;
        let id = created
            .ok()
            .and_then(|ack| ack.pointer("/data/room/id").cloned())
            .unwrap_or(json!(1));
        rooms.push(id);
    }
    let room_id = rooms[0].clone();
    let monitor_token = match &a.monitor_token {
        Some(t) => t.clone(),
        None => {
            let ack = driver
                .call("device.pair", json!({"role": "monitor", "name": "bench"}))
                .await
                .map_err(|e| e.to_string())?;
            ack.pointer("/data/token")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| a.token.clone())
        }
    };

    let rss_before = a.server_pid.and_then(rss_kb);
    // Connect the monitors.
    let connect_started = Instant::now();
    let mut connect_ms = Vec::with_capacity(a.monitors);
    let mut monitors: Vec<tokio::task::JoinHandle<Vec<(u64, Instant)>>> = Vec::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut failed = 0usize;
    let mut i = 0;
    while i < a.monitors {
        let n = a.connect_parallel.min(a.monitors - i);
        let mut batch = Vec::new();
        for _ in 0..n {
            let url = a.url.clone();
            let token = monitor_token.clone();
            let transport = a.transport.clone();
            batch.push(tokio::spawn(async move {
                let t = Instant::now();
                let c = connect_monitor(&url, &token, &transport).await;
                (c, t.elapsed())
            }));
        }
        for h in batch {
            match h.await {
                Ok((Ok(m), took)) => {
                    connect_ms.push(took.as_secs_f64() * 1000.0);
                    monitors.push(match m {
                        Monitor::Ws(ws) => tokio::spawn(monitor(ws, stopped.clone())),
                        Monitor::Poll(c) => {
                            tokio::spawn(crate::bench_poll::monitor(c, stopped.clone()))
                        }
                    });
                }
                _ => failed += 1,
            }
        }
        i += n;
    }
    let connected = monitors.len();
    println!(
        "  connected {connected} monitors in {:.2} s ({failed} failed)",
        connect_started.elapsed().as_secs_f64()
    );
    summary("connect time", connect_ms);

    if let (Some(pid), Some(before)) = (a.server_pid, rss_before) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(after) = rss_kb(pid) {
            println!(
                "  server memory: {} KB → {} KB, {:.1} KB per connection",
                before,
                after,
                (after as f64 - before as f64) / connected.max(1) as f64
            );
        }
    }
    if a.idle > 0.0 {
        let t0 = a.server_pid.and_then(cpu_ticks);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(a.idle)).await;
        let alive = monitors.iter().filter(|h| !h.is_finished()).count();
        println!(
            "  after {:.0} s idle: {alive} of {connected} connections alive",
            a.idle
        );
        if let (Some(pid), Some(t0)) = (a.server_pid, t0) {
            if let Some(t1) = cpu_ticks(pid) {
                let secs = (t1 - t0) as f64 / 100.0;
                println!(
                    "  server CPU while idle: {:.2}% of one core",
                    100.0 * secs / started.elapsed().as_secs_f64()
                );
            }
            if let Some(rss) = rss_kb(pid) {
                println!("  server memory after idle: {rss} KB");
            }
        }
    }

    // Load.
    let cpu_before = a.server_pid.and_then(cpu_ticks);
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut ack_ms = Vec::new();
    let mut commands = 0u64;
    let mut errors = 0u64;
    let load_started = Instant::now();
    let deadline = load_started + Duration::from_secs_f64(a.duration);
    let driver = Arc::new(driver);
    let mut toggle = false;
    if a.closed_loop {
        let mut tasks = Vec::new();
        for (d, room) in rooms.iter().enumerate().take(a.drivers) {
            let driver = if d == 0 {
                driver.clone()
            } else {
                Arc::new(
                    Client::connect(&a.url, &a.token)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            };
            let sent = sent.clone();
            let room_id = room.clone();
            tasks.push(tokio::spawn(async move {
                let mut acks = Vec::new();
                let mut errors = 0u64;
                let mut toggle = false;
                while Instant::now() < deadline {
                    toggle = !toggle;
                    let status = if toggle { "cleaning" } else { "available" };
                    let t = Instant::now();
                    match driver
                        .call(
                            "room.set_status",
                            json!({"room_id": room_id, "status": status}),
                        )
                        .await
                    {
                        Ok(ack) => match ack.pointer("/data/seq").and_then(Value::as_u64) {
                            Some(seq) if ack["ok"] == json!(true) => {
                                if let Ok(mut s) = sent.lock() {
                                    s.insert(seq, t);
                                }
                                acks.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                            _ => errors += 1,
                        },
                        Err(_) => errors += 1,
                    }
                }
                (acks, errors)
            }));
        }
        for t in tasks {
            if let Ok((acks, e)) = t.await {
                commands += acks.len() as u64;
                ack_ms.extend(acks);
                errors += e;
            }
        }
    } else if a.rate > 0.0 {
        let period = Duration::from_secs_f64(1.0 / a.rate);
        let mut next = Instant::now();
        let mut inflight = Vec::new();
        while Instant::now() < deadline {
            tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
            next += period;
            toggle = !toggle;
            let status = if toggle { "cleaning" } else { "available" };
            let driver = driver.clone();
            let sent = sent.clone();
            let room_id = room_id.clone();
            inflight.push(tokio::spawn(async move {
                let t = Instant::now();
                let ack = driver
                    .call(
                        "room.set_status",
                        json!({"room_id": room_id, "status": status}),
                    )
                    .await;
                let took = t.elapsed().as_secs_f64() * 1000.0;
                match ack
                    .ok()
                    .and_then(|a| a.pointer("/data/seq").and_then(Value::as_u64))
                {
                    Some(seq) => {
                        if let Ok(mut s) = sent.lock() {
                            s.insert(seq, t);
                        }
                        Some(took)
                    }
                    None => None,
                }
            }));
        }
        for h in inflight {
            match h.await {
                Ok(Some(ms)) => {
                    commands += 1;
                    ack_ms.push(ms);
                }
                _ => errors += 1,
            }
        }
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let cpu_after = a.server_pid.and_then(cpu_ticks);
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = stop.send(true);
    let mut receivers = Vec::with_capacity(monitors.len());
    for h in monitors {
        receivers.push(h.await.unwrap_or_default());
    }
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    println!(
        "  load: {commands} commands acked in {load_secs:.1} s = {:.1} commands/s ({errors} errors){}",
        commands as f64 / load_secs,
        if a.closed_loop { format!(", closed loop, {} driver(s)", a.drivers) } else { format!(", open loop at {} /s", a.rate) }
    );
    summary("ack latency", ack_ms);
    if let (Some(t0), Some(t1)) = (cpu_before, cpu_after) {
        if load_secs > 0.0 && commands > 0 {
            println!(
                "  server CPU under load: {:.1}% of one core",
                100.0 * (t1.saturating_sub(t0)) as f64 / 100.0 / load_secs
            );
        }
    }
    let mut delivery = Vec::new();
    let mut last_client: HashMap<u64, f64> = HashMap::new();
    let mut received = 0usize;
    for got in receivers {
        for (seq, at) in got {
            if let Some(t) = sent.get(&seq) {
                received += 1;
                let ms = at.saturating_duration_since(*t).as_secs_f64() * 1000.0;
                delivery.push(ms);
                let e = last_client.entry(seq).or_insert(0.0);
                if ms > *e {
                    *e = ms;
                }
            }
        }
    }
    let expected = sent.len() * connected;
    let (delivery_p50, delivery_p99) = summary("delivery latency", delivery);
    summary(
        "time to last client",
        last_client.values().copied().collect(),
    );
    println!(
        "  deliveries: {received} of {expected} expected, lost {}",
        expected.saturating_sub(received)
    );
    Ok(HubFigures {
        delivery_p50,
        delivery_p99,
    })
}

/// A connected monitor, by transport.
enum Monitor {
    Ws(WsStream),
    Poll(crate::bench_poll::PollClient),
}

async fn connect_monitor(url: &str, token: &str, transport: &str) -> Result<Monitor, String> {
    match transport {
        "polling" => crate::bench_poll::open(url, token).await.map(Monitor::Poll),
        "upgrade" => {
            let c = crate::bench_poll::open(url, token).await?;
            crate::bench_poll::upgrade(c, url).await.map(Monitor::Ws)
        }
        _ => client::handshake(url, token)
            .await
            .map(|(ws, _sid)| Monitor::Ws(ws))
            .map_err(|e| e.to_string()),
    }
}

/// One monitor: answers the hub's pings and notes when each `room.updated`
/// arrives, until `stop`. It reads its socket itself (one task, no channel,
/// only `seq` decoded) so the load generator takes as little of the
/// machine's CPU from the server under test as it can.
async fn monitor(
    mut ws: WsStream,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(u64, Instant)> {
    let mut got = Vec::new();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if text == "2" {
                        if ws.send(Message::text("3")).await.is_err() {
                            break;
                        }
                    } else if let Some(seq) = room_update_seq(text) {
                        got.push((seq, Instant::now()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = &mut stopped => break,
        }
    }
    let _ = ws.close(None).await;
    got
}

/// The `seq` of a `42["room.updated",{…"seq":N…}]` frame.
pub(crate) fn room_update_seq(frame: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct WithSeq {
        seq: u64,
    }
    let body = frame.strip_prefix("42")?;
    let (name, data): (&str, WithSeq) = serde_json::from_str(body).ok()?;
    (name == "room.updated").then_some(data.seq)
}

#[cfg(test)]
mod tests {
    use super::room_update_seq;

    #[test]
    fn reads_the_seq_of_room_updates_only() {
        let hub =
            r#"42["room.updated",{"room":{"id":1,"status":"cleaning","name":"R \"1\""},"seq":42}]"#;
        assert_eq!(room_update_seq(hub), Some(42));
        let floor = r#"42["room.updated",{"seq":7,"room":{"id":"1","status":"available"}}]"#;
        assert_eq!(room_update_seq(floor), Some(7));
        assert_eq!(room_update_seq(r#"42["seq",{"seq":8}]"#), None);
        assert_eq!(room_update_seq(r#"431[{"ok":true}]"#), None);
        assert_eq!(room_update_seq("2"), None);
    }
}
