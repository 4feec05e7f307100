//! `spa-hub bench chain`: the chain's targets (#20) on this machine, with a
//! real `nats-server` (JetStream, temporary store) started on 127.0.0.1:
//!
//! - catch-up: a site whose log holds N events (built straight through the
//!   store, as `bench startup` does) starts with replication on; the time
//!   until JetStream confirmed all N gives events/s; then a fresh
//!   `spa-hub hq` ingests them all: events/s;
//! - steady state: the same `bench hub` load (monitors + a driver changing
//!   room statuses) against a fresh hub with replication off, on, off, on,
//!   … (`--pairs`) in one sitting: fan-out (delivery) latency as `bench hub`
//!   prints it, each pair's ratio on/off and their median,
//!   the replication lag p99 (commit → JetStream ack, from the hub's
//!   histogram) and the hub's RSS after each run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::rss_kb;
use crate::bench_hub::{HubArgs, HubFigures};

#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// Events in the site's backlog.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Monitors connected during the steady-state runs.
    #[arg(long, default_value_t = 200)]
    pub monitors: usize,
    /// Commands per second during the steady-state runs.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds per steady-state run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Steady-state pairs (replication off, then on).
    #[arg(long, default_value_t = 3)]
    pub pairs: usize,
    /// The nats-server binary.
    #[arg(long, default_value = "/usr/sbin/nats-server")]
    pub nats_server: PathBuf,
    /// Where to put the temporary data (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const TOKEN: &str = "bench-admin-token-000000";
const HQ_TOKEN: &str = "bench-hq-token-0000000000";

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn get(port: u16, path: &str, token: Option<&str>) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    if !buf.starts_with("HTTP/1.1 200") {
        return None;
    }
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The upper bound (ms) of the histogram bucket holding the p99.
fn histogram_p99_ms(body: &str, name: &str) -> Option<f64> {
    let bucket = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = body
        .lines()
        .filter_map(|l| l.strip_prefix(&bucket))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, c)| *c >= total * 0.99)
        .map(|(le, _)| le * 1000.0)
}

/// A child that is killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], env: &[(&str, String)]) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("SPA_LOG", "warn")
        .env("SPA_LOG_TARGET", "stderr")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().map(Proc).map_err(|e| e.to_string())
}

async fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > limit {
            return Err(format!("{what}: not within {} s", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

fn start_nats(bin: &Path, store: &Path) -> Result<(Proc, String), String> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e} (apt-get install nats-server)", bin.display()))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("nats-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((Proc(child), format!("nats://127.0.0.1:{port}")))
}

/// `spa-hub serve` on `data`; with `nats`, as site `site` of a chain.
async fn hub(data: &Path, nats: Option<(&str, &str)>) -> Result<(Proc, u16), String> {
    let port = free_port()?;
    let mut env = vec![
        ("SPA_DATA_DIR", data.display().to_string()),
        ("SPA_LISTEN", format!("127.0.0.1:{port}")),
        ("SPA_LIGHTS", "sim".to_string()),
        ("SPA_ADMIN_TOKEN", TOKEN.to_string()),
        ("SPA_MAX_CONNECTIONS", "2000".to_string()),
        // The monitors share one device token and one address.
        ("SPA_MAX_CONNECTIONS_PER_TOKEN", "100000".to_string()),
        ("SPA_MAX_PENDING_PER_ADDRESS", "100000".to_string()),
    ];
    if let Some((url, site)) = nats {
        env.push(("SPA_NATS_URL", url.to_string()));
        env.push(("SPA_SITE_ID", site.to_string()));
    }
    let child = spawn(&["serve"], &env)?;
    wait_for("the hub to start", Duration::from_secs(60), || {
        get(port, "/healthz", None).is_some()
    })
    .await?;
    Ok((child, port))
}

fn confirmed(port: u16) -> u64 {
    get(port, "/metrics", None)
        .and_then(|m| metric(&m, "spa_hub_nats_confirmed_seq"))
        .unwrap_or(0.0) as u64
}

pub async fn run(a: ChainArgs) -> Result<(), String> {
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("spa-hub-bench-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = run_in(&a, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(a: &ChainArgs, dir: &Path) -> Result<(), String> {
    let (_nats, url) = start_nats(&a.nats_server, &dir.join("nats"))?;
    println!("bench chain: nats-server at {url}");

    // Catch-up after an outage: the whole log is the backlog.
    let site_data = dir.join("site");
    let built = Instant::now();
    crate::bench::build_database(&site_data, a.events)?;
    println!(
        "  backlog: {} events built in {:.1} s",
        a.events,
        built.elapsed().as_secs_f64()
    );
    let (site, port) = hub(&site_data, Some((&url, "bench"))).await?;
    let took = wait_for(
        "the backlog to be confirmed",
        Duration::from_secs(600),
        || confirmed(port) >= a.events,
    )
    .await?;
    println!(
        "  catch-up: {} events confirmed by JetStream in {:.2} s: {:.0} events/s (target >= 10000)",
        a.events,
        took.as_secs_f64(),
        a.events as f64 / took.as_secs_f64()
    );
    drop(site);

    // Head office ingests the stream from scratch.
    let hq_port = free_port()?;
    let _hq = spawn(
        &["hq"],
        &[
            ("SPA_HQ_LISTEN", format!("127.0.0.1:{hq_port}")),
            ("SPA_HQ_DATA_DIR", dir.join("hq").display().to_string()),
            ("SPA_HQ_TOKEN", HQ_TOKEN.to_string()),
            ("SPA_NATS_URL", url.clone()),
        ],
    )?;
    let took = wait_for("head office to ingest", Duration::from_secs(600), || {
        get(hq_port, "/metrics", Some(HQ_TOKEN))
            .and_then(|m| metric(&m, "spa_hq_events_ingested_total"))
            .unwrap_or(0.0) as u64
            >= a.events
    })
    .await?;
    println!(
        "  head office: {} events ingested in {:.2} s from its start: {:.0} events/s (target >= 10000)",
        a.events,
        took.as_secs_f64(),
        a.events as f64 / took.as_secs_f64()
    );

    // Steady state: off, on, off, on, … in one sitting; each pair's ratio.
    let mut off: Option<HubFigures> = None;
    let mut ratios: Vec<(f64, f64)> = Vec::new();
    let runs = (0..a.pairs * 2).map(|i| i % 2 == 1);
    for (run, on) in runs.enumerate() {
        let data = dir.join(format!("steady-{run}"));
        let site = format!("steady{run}");
        let (child, port) = hub(&data, on.then_some((url.as_str(), site.as_str()))).await?;
        let pid = child.0.id();
        let label = format!("replication {}", if on { "on" } else { "off" });
        let figures = crate::bench_hub::run(HubArgs {
            url: format!("ws://127.0.0.1:{port}"),
            token: TOKEN.to_string(),
            monitor_token: None,
            monitors: a.monitors,
            rate: a.rate,
            closed_loop: false,
            drivers: 1,
            duration: a.duration,
            idle: 0.0,
            server_pid: None,
            connect_parallel: 100,
            label: label.clone(),
            transport: "websocket".into(),
        })
        .await?;
        let rss = rss_kb(pid).unwrap_or(0);
        let metrics = get(port, "/metrics", None).unwrap_or_default();
        match on {
            true => println!(
                "  {label}: hub RSS {rss} KB; replication lag p99 <= {:.1} ms (histogram bucket), {} events confirmed",
                histogram_p99_ms(&metrics, "spa_hub_nats_lag_seconds_hist").unwrap_or(f64::NAN),
                metric(&metrics, "spa_hub_nats_confirmed_seq").unwrap_or(0.0)
            ),
            false => println!("  {label}: hub RSS {rss} KB"),
        }
        drop(child);
        match (on, off.take()) {
            (false, _) => off = Some(figures),
            (true, Some(o)) => {
                let pair = (
                    figures.delivery_p50 / o.delivery_p50,
                    figures.delivery_p99 / o.delivery_p99,
                );
                println!(
                    "  pair {}: fan-out with replication on / off: p50 {:.2}x, p99 {:.2}x",
                    ratios.len() + 1,
                    pair.0,
                    pair.1
                );
                ratios.push(pair);
            }
            (true, None) => {}
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "fan-out with replication on / off over {} pairs: median p50 {:.2}x, median p99 {:.2}x (target <= 1.1x)",
        ratios.len(),
        median(ratios.iter().map(|r| r.0).collect()),
        median(ratios.iter().map(|r| r.1).collect())
    );
    Ok(())
}
