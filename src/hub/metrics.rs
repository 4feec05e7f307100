//! Counters and histograms for `/metrics` (Prometheus text format) and
//! `/healthz`. Lock-free where it is hot (atomics); the per-command table
//! takes a mutex once per command.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::domain::Role;

/// A fixed-bucket latency histogram.
///
/// Every connection observes one value per batch it sends: 500 observations
/// per event from both worker threads. One set of counters would bounce its
/// cache line between the cores on every observation, so each thread adds
/// to a shard of its own and `render` sums the shards.
pub struct Histogram {
    shards: [Shard; SHARDS],
}

/// Upper bounds of the buckets, in microseconds (rendered in seconds).
const LATENCY_BOUNDS_US: [u64; BUCKETS] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    5_000_000,
];
const BUCKETS: usize = 12;
const SHARDS: usize = 4;

/// One thread's counters, on cache lines of their own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    total: AtomicU64,
}

/// This thread's shard: threads take shards in turn as they first observe.
fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Relaxed) % SHARDS as u64) as usize;
    }
    INDEX.with(|i| *i)
}

impl Histogram {
    pub fn latency() -> Self {
        Histogram {
            shards: Default::default(),
        }
    }

    /// Counts one observation in its own bucket only (three uncontended
    /// atomic adds on the hot path); `render` makes the buckets cumulative.
    pub fn observe_us(&self, us: u64) {
        let shard = &self.shards[shard_index()];
        if let Some(i) = LATENCY_BOUNDS_US.iter().position(|b| us <= *b) {
            shard.counts[i].fetch_add(1, Relaxed);
        }
        shard.sum_us.fetch_add(us, Relaxed);
        shard.total.fetch_add(1, Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let sum = |f: &dyn Fn(&Shard) -> u64| self.shards.iter().map(f).sum::<u64>();
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            cumulative += sum(&|s| s.counts[i].load(Relaxed));
            let bound = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = sum(&|s| s.total.load(Relaxed));
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum_us = sum(&|s| s.sum_us.load(Relaxed));
        let _ = writeln!(out, "{name}_sum {}", sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

pub struct Metrics {
    connections: [AtomicU64; 6],
    pub rejected_upgrades: AtomicU64,
    pub slow_client_drops: AtomicU64,
    pub heartbeat_drops: AtomicU64,
    /// Long-polling sessions opened, and those upgraded to a WebSocket.
    pub polling_sessions: AtomicU64,
    pub upgrades: AtomicU64,
    commands: Mutex<BTreeMap<(String, &'static str), u64>>,
    pub broadcast_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Default::default(),
            rejected_upgrades: AtomicU64::new(0),
            slow_client_drops: AtomicU64::new(0),
            heartbeat_drops: AtomicU64::new(0),
            polling_sessions: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            commands: Mutex::new(BTreeMap::new()),
            broadcast_latency: Histogram::latency(),
        }
    }
}

/// Index 5 counts connections that have not authenticated yet.
fn slot(role: Option<Role>) -> usize {
    match role {
        Some(Role::Admin) => 0,
        Some(Role::Cashier) => 1,
        Some(Role::Therapist) => 2,
        Some(Role::Monitor) => 3,
        Some(Role::Customer) => 4,
        None => 5,
    }
}

const SLOT_NAMES: [&str; 6] = [
    "admin",
    "cashier",
    "therapist",
    "monitor",
    "customer",
    "pending",
];

impl Metrics {
    pub fn connected(&self, role: Option<Role>) {
        self.connections[slot(role)].fetch_add(1, Relaxed);
    }

    pub fn disconnected(&self, role: Option<Role>) {
        self.connections[slot(role)].fetch_sub(1, Relaxed);
    }

    /// Moves a connection from one role slot to another (after CONNECT).
    pub fn became(&self, from: Option<Role>, to: Option<Role>) {
        self.disconnected(from);
        self.connected(to);
    }

    pub fn connections_by_role(&self) -> BTreeMap<&'static str, u64> {
        SLOT_NAMES
            .iter()
            .zip(&self.connections)
            .map(|(name, c)| (*name, c.load(Relaxed)))
            .collect()
    }

    pub fn connections_total(&self) -> u64 {
        self.connections.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn command(&self, name: &str, result: &'static str) {
        let mut map = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        // Only known names are counted by name, so garbage cannot grow the table.
        let key = if crate::domain::command::WIRE_COMMANDS.contains(&name) || name == "report.day" {
            name.to_string()
        } else {
            "unknown".to_string()
        };
        *map.entry((key, result)).or_insert(0) += 1;
    }

    /// The Prometheus text: these metrics, `extra` gauges, and the writer's
    /// flush histogram.
    pub fn render(&self, extra: &[(&str, &str, f64)], flush: &Histogram) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP spa_hub_connections Open Socket.IO connections by role\n# TYPE spa_hub_connections gauge"
        );
        for (role, n) in self.connections_by_role() {
            let _ = writeln!(out, "spa_hub_connections{{role=\"{role}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP spa_hub_commands_total Commands by name and result\n# TYPE spa_hub_commands_total counter"
        );
        {
            let map = self.commands.lock().unwrap_or_else(|p| p.into_inner());
            for ((name, result), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "spa_hub_commands_total{{command=\"{name}\",result=\"{result}\"}} {n}"
                );
            }
        }
        for (name, help, value) in [
            (
                "spa_hub_rejected_upgrades_total",
                "Upgrades refused with 503 at the connection budget",
                self.rejected_upgrades.load(Relaxed) as f64,
            ),
            (
                "spa_hub_slow_client_drops_total",
                "Clients dropped because their outbox was full",
                self.slow_client_drops.load(Relaxed) as f64,
            ),
            (
                "spa_hub_heartbeat_drops_total",
                "Clients dropped for missing the pong",
                self.heartbeat_drops.load(Relaxed) as f64,
            ),
            (
                "spa_hub_polling_sessions_total",
                "Engine.IO long-polling sessions opened",
                self.polling_sessions.load(Relaxed) as f64,
            ),
            (
                "spa_hub_upgrades_total",
                "Long-polling sessions upgraded to a WebSocket",
                self.upgrades.load(Relaxed) as f64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        self.broadcast_latency.render(
            &mut out,
            "spa_hub_broadcast_latency_seconds",
            "Time from commit to a frame handed to a client's socket",
        );
        flush.render(
            &mut out,
            "spa_hub_storage_flush_seconds",
            "Time to write and flush one batch",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(h: &Histogram) -> String {
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        out
    }

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::latency();
        h.observe_us(300); // ≤ 0.0005 s
        h.observe_us(3_000); // ≤ 0.005 s
        h.observe_us(10_000_000); // beyond every bound
        let out = rendered(&h);
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2"), "{out}");
        assert!(out.contains("x_bucket{le=\"5\"} 2"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3"), "{out}");
        assert!(out.contains("x_count 3"), "{out}");
    }

    #[test]
    fn observations_from_many_threads_all_count() {
        let h = std::sync::Arc::new(Histogram::latency());
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| h.observe_us(700)))
            })
            .collect();
        for t in threads {
            t.join().expect("observer thread");
        }
        let out = rendered(&h);
        assert!(out.contains("x_bucket{le=\"0.0005\"} 0"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.001\"} 6000"), "{out}");
        assert!(out.contains("x_count 6000"), "{out}");
        assert!(out.contains("x_sum 4.2\n"), "{out}");
    }
}
