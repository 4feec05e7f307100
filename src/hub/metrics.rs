//! Counters and histograms for `/metrics` (Prometheus text format) and
//! `/healthz`. Lock-free where it is hot (atomics); the per-command table
//! takes a mutex once per command.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::domain::Role;

/// A fixed-bucket histogram (upper bounds in seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    total: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

impl Histogram {
    pub fn latency() -> Self {
        Histogram {
            bounds: LATENCY_BOUNDS,
            counts: LATENCY_BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Counts one observation in its own bucket only (three atomic adds on
    /// the hot path); `render` makes the buckets cumulative.
    pub fn observe_us(&self, us: u64) {
        let secs = us as f64 / 1e6;
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.total.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

pub struct Metrics {
    connections: [AtomicU64; 6],
    pub rejected_upgrades: AtomicU64,
    pub slow_client_drops: AtomicU64,
    pub heartbeat_drops: AtomicU64,
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

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::latency();
        h.observe_us(300); // ≤ 0.0005 s
        h.observe_us(3_000); // ≤ 0.005 s
        h.observe_us(10_000_000); // beyond every bound
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2"), "{out}");
        assert!(out.contains("x_bucket{le=\"5\"} 2"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3"), "{out}");
        assert!(out.contains("x_count 3"), "{out}");
    }
}
