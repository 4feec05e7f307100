//! The daemon's life: start-up in order (config → logging → storage →
//! lights → writer → listener → READY), the signals, and a graceful stop
//! (stop accepting, close connections, finish the batch in flight, flush,
//! lights off, exit 0). Also the other CLI actions that need the same
//! pieces: `check`, `backup`, `restore`, `lights test`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use crate::auth::{self, Lockout};
use crate::clock::SpaClock;
use crate::config::Config;
use crate::domain::state::RoomStatus;
use crate::domain::State;
use crate::hub::fanout::{Fanout, Ring};
use crate::hub::metrics::Metrics;
use crate::hub::Hub;
use crate::lights::{self, LightStatus, Lights};
use crate::store::{Store, StoreError};
use crate::writer::{Committed, Subscriber, Writer};

/// Why the daemon could not run; the CLI maps each to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Storage(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("lights: {0}")]
    Lights(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Maps the rooms with a light channel to what their light shows.
pub fn light_map(state: &State) -> BTreeMap<u16, LightStatus> {
    state
        .rooms
        .values()
        .filter_map(|room| {
            let status = match room.status {
                RoomStatus::Available => LightStatus::Available,
                RoomStatus::Held => LightStatus::Held,
                RoomStatus::Occupied if room.overtime => LightStatus::Overtime,
                RoomStatus::Occupied => LightStatus::Occupied,
                RoomStatus::Cleaning => LightStatus::Cleaning,
                RoomStatus::OutOfService => LightStatus::OutOfService,
            };
            Some((room.light_channel?, status))
        })
        .collect()
}

/// Keeps the lights in step with committed room changes (never blocks: the
/// lights run on their own thread).
struct LightsFollower {
    lights: Lights,
}

impl Subscriber for LightsFollower {
    fn committed(&mut self, batch: &Committed<'_>) {
        self.lights.set_rooms(light_map(batch.state));
    }
    fn storage_failing(&mut self, failing: bool) {
        self.lights.set_storage_failing(failing);
    }
}

/// A started hub (used by `serve` and by the integration tests).
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    pub admin_token: String,
    /// Test seam: while set, every commit fails as a broken disk would.
    #[doc(hidden)]
    pub storage_fault: Arc<std::sync::atomic::AtomicBool>,
    server: tokio::task::JoinHandle<()>,
    writer: Writer,
    stop_accepting: watch::Sender<bool>,
}

/// Opens everything and starts listening; returns once connections are
/// accepted (the lights already show the persisted state).
pub async fn start(config: Config) -> Result<Running, DaemonError> {
    let config = Arc::new(config);
    let clock = SpaClock::new(config.time_zone());
    let started = Instant::now();
    crate::store::private_dir(&config.data_dir)?;
    let store = Store::open(&config.data_dir, config.sled_cache_mb * 1024 * 1024)?;
    let state = store.load_state()?;
    let log = store.log_reader();
    let storage_fault = store.failure_switch();
    let (admin_token, generated) =
        auth::admin_token(config.admin_token.as_deref(), &config.data_dir)?;
    if let Some(path) = generated {
        // Never the token itself: the journal is read by more people than
        // the data directory. `spa-hub check` shows it to root.
        log::warn!(
            "admin token generated into {} (mode 0600); show it with `spa-hub check`",
            path.display()
        );
    }

    // Lights before the listener: they show the persisted state first.
    let pins = lights::pins_of(&config.light_channels);
    let (backend, why) =
        lights::open_backend_with_level(config.lights, &pins, config.lights_active_low)
            .map_err(|e| DaemonError::Lights(e.to_string()))?;
    log::info!("{why}");
    let lights = lights::spawn(
        backend,
        config.light_channels.clone(),
        config.lights_active_low,
    );
    lights.set_rooms(light_map(&state));

    let ring = Ring::new(ring_capacity(config.client_queue));
    let subscribers: Vec<Box<dyn Subscriber>> = vec![
        Box::new(Fanout::spawn(ring.clone())),
        Box::new(LightsFollower {
            lights: lights.clone(),
        }),
    ];
    let seq = state.seq();
    let writer = Writer::spawn(store, state, clock.clone(), config.rules(), subscribers)?;
    let (shutdown, _) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let mut hub = Hub {
        config: config.clone(),
        writer: writer.handle.clone(),
        ring,
        metrics: Arc::new(Metrics::default()),
        shutdown,
        budget: Arc::new(Semaphore::new(config.max_connections)),
        admin_token_hash: auth::hash_token(&admin_token),
        lockout: Arc::new(Lockout::default()),
        pin_checks: auth::PinChecks::new(config.login_concurrency),
        gate: crate::gate::Gate::new(crate::gate::Limits::from_config(&config)),
        own_origins: Vec::new(),
        lights: Some(lights),
        started,
        clock,
        log,
        polls: Default::default(),
    };
    hub.own_origins = crate::http::own_origins(&config, addr.port());
    let hub = Arc::new(hub);

    let (stop_accepting, stop_rx) = watch::channel(false);
    let app = crate::http::router(hub.clone());
    // Headers within the request timeout (and never later than a CONNECT
    // is due); bodies are timed by the handlers that read them.
    let header_timeout =
        Duration::from_millis(config.request_timeout_ms.min(config.connect_timeout_ms));
    let server = tokio::spawn(accept_loop(
        listener,
        app,
        header_timeout,
        hub.gate.clone(),
        stop_rx,
    ));
    log::info!(
        "listening on {addr}, seq {seq}, ready in {} ms",
        started.elapsed().as_millis()
    );
    Ok(Running {
        addr,
        hub,
        admin_token,
        storage_fault,
        server,
        writer,
        stop_accepting,
    })
}

/// Accepts TCP connections and serves HTTP/1.1 on each (with upgrades),
/// until told to stop. A client must send its request headers within
/// `header_timeout` (idle or half-open sockets are closed).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    gate: Arc<crate::gate::Gate>,
    mut stop: watch::Receiver<bool>,
) {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    loop {
        if *stop.borrow() {
            return;
        }
        let (tcp, peer) = tokio::select! {
            changed = stop.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // HTTP connections (before any upgrade) have their own pool and a
        // per-address cap, apart from the WebSocket budget: idle sockets
        // give way to new ones and cannot eat the descriptors it needs.
        let Some(ticket) = gate.admit_http(crate::gate::address_key(peer.ip())) else {
            drop(tcp);
            continue;
        };
        let local = tcp.local_addr().ok();
        // Small frames must not wait for Nagle's algorithm (40 ms stalls
        // with delayed ACKs), and a client that stops reading may hold at
        // most a bounded kernel send buffer (Linux would otherwise grow it
        // to 4 MB per socket): past it, writes stall and it is dropped.
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER_BYTES);
        let app = app.clone();
        let busy = ticket.busy_marker();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(busy.clone());
                    if let Some(local) = local {
                        request
                            .extensions_mut()
                            .insert(crate::http::LocalAddr(local));
                    }
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let io = TokioIo::new(ticket.watch(tcp));
            let serving = builder.serve_connection(io, service).with_upgrades();
            tokio::select! {
                _ = serving => {}
                // Made room for a new connection: close this idle one.
                _ = ticket.evicted() => {}
            }
        });
    }
}

/// Kernel send buffer per client socket (the kernel doubles it).
const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// The ring holds every connection's outbox: big enough for the per-client
/// queue plus slack, as a power of two.
fn ring_capacity(client_queue: usize) -> usize {
    (client_queue + 64).next_power_of_two()
}

impl Running {
    /// Graceful stop: no new connections, close the open ones, let the
    /// writer finish its batch and flush, switch the lights off.
    pub async fn stop(self) {
        let _ = self.stop_accepting.send(true);
        let _ = self.hub.shutdown.send(true);
        // Give connections a moment to send their close frames.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.hub.metrics.connections_total() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), self.server).await;
        self.writer.stop().await;
        if let Some(lights) = &self.hub.lights {
            lights.shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), lights.stopped()).await;
        }
    }
}

/// `spa-hub serve`: runs until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> Result<(), DaemonError> {
    log::info!("spa-hub {} starting", env!("CARGO_PKG_VERSION"));
    log::info!("listen address {}", config.listen);
    log::info!("data dir {}", config.data_dir.display());
    log::info!("connection budget {}", config.max_connections);
    let running = start(config).await?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let host = if running.addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", running.addr.port())
    } else {
        running.addr.to_string()
    };
    log::info!("connect to http://{host}/ (Socket.IO at ws://{host}/socket.io/)");
    wait_for_signal().await;
    log::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    running.stop().await;
    log::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The soft limit on open files (Linux: from /proc/self/limits).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// `spa-hub check`: prints the configuration and what the daemon would find;
/// returns the number of problems that would stop it.
pub fn check(config: &Config, out: &mut dyn std::io::Write) -> std::io::Result<usize> {
    let mut problems = 0;
    writeln!(out, "spa-hub {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "configuration:")?;
    for (key, value) in config.describe() {
        writeln!(out, "  {key}={value}")?;
    }
    writeln!(out, "storage:")?;
    match Store::open(&config.data_dir, 4 * 1024 * 1024) {
        Ok(store) => match store.info() {
            Ok(info) => {
                writeln!(
                    out,
                    "  schema version {} (this binary: {})",
                    info.schema_version,
                    crate::store::SCHEMA_VERSION
                )?;
                writeln!(
                    out,
                    "  events {} (last seq {})",
                    info.event_count, info.last_seq
                )?;
                writeln!(out, "  size on disk {} bytes", info.size_on_disk)?;
                if let Err(e) = store.load_state() {
                    problems += 1;
                    writeln!(out, "  PROBLEM: {e}")?;
                }
            }
            Err(e) => {
                problems += 1;
                writeln!(out, "  PROBLEM: {e}")?;
            }
        },
        Err(StoreError::Locked { dir }) => {
            writeln!(
                out,
                "  in use by a running spa-hub (lock held in {dir}); not inspected"
            )?;
        }
        Err(e) => {
            problems += 1;
            writeln!(out, "  PROBLEM: {e}")?;
        }
    }
    let token_file = config.data_dir.join("admin-token");
    match (&config.admin_token, token_file.exists()) {
        (Some(_), _) => writeln!(out, "admin token: set in SPA_ADMIN_TOKEN")?,
        (None, true) => match std::fs::read_to_string(&token_file) {
            Ok(t) => writeln!(
                out,
                "admin token: {} (from {})",
                t.trim(),
                token_file.display()
            )?,
            Err(e) => writeln!(
                out,
                "admin token: in {} (not readable here: {e})",
                token_file.display()
            )?,
        },
        (None, false) => writeln!(
            out,
            "admin token: not generated yet (generated on first start)"
        )?,
    }
    writeln!(out, "lights:")?;
    writeln!(
        out,
        "  backend {} (active {})",
        config.lights.as_str(),
        if config.lights_active_low {
            "low"
        } else {
            "high"
        }
    )?;
    if let Some(model) = lights::board_model() {
        writeln!(out, "  board {model}")?;
    }
    if config.light_channels.is_empty() {
        writeln!(out, "  no channels (SPA_LIGHT_CHANNELS is empty)")?;
    }
    for (ch, pins) in &config.light_channels {
        writeln!(
            out,
            "  channel {ch}: red BCM {}, amber BCM {}, green BCM {}",
            pins.red, pins.amber, pins.green
        )?;
    }
    let needed = config.max_connections as u64 + 64;
    match open_file_limit() {
        Some(limit) if limit < needed => {
            problems += 1;
            writeln!(out, "open files: PROBLEM: limit {limit} is below SPA_MAX_CONNECTIONS {} + 64 for files and listeners (raise LimitNOFILE)", config.max_connections)?;
        }
        Some(limit) => writeln!(
            out,
            "open files: limit {limit} (enough for SPA_MAX_CONNECTIONS {})",
            config.max_connections
        )?,
        None => writeln!(out, "open files: limit unknown")?,
    }
    writeln!(
        out,
        "{}",
        if problems == 0 {
            "ok".to_string()
        } else {
            format!("{problems} problem(s)")
        }
    )?;
    Ok(problems)
}

/// `spa-hub backup FILE` (daemon stopped).
pub fn backup(config: &Config, file: &Path) -> Result<u64, StoreError> {
    let store = Store::open(&config.data_dir, 8 * 1024 * 1024)?;
    store.load_state()?;
    store.backup(file)
}

/// `spa-hub restore FILE` (daemon stopped): the current database is first
/// moved aside to `db.before-restore-<unix time>`, never deleted.
pub fn restore(
    config: &Config,
    file: &Path,
) -> Result<(u64, Option<std::path::PathBuf>), StoreError> {
    let db = config.data_dir.join("db");
    let mut moved = None;
    {
        // Take the lock first so a running daemon is never touched.
        let probe = Store::open(&config.data_dir, 4 * 1024 * 1024)?;
        let empty = probe.info()?.event_count == 0;
        drop(probe);
        if !empty {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut aside = config.data_dir.join(format!("db.before-restore-{secs}"));
            let mut n = 1;
            while aside.exists() {
                aside = config
                    .data_dir
                    .join(format!("db.before-restore-{secs}-{n}"));
                n += 1;
            }
            std::fs::rename(&db, &aside).map_err(|source| StoreError::Io {
                dir: config.data_dir.display().to_string(),
                source,
            })?;
            moved = Some(aside);
        }
    }
    let store = Store::open(&config.data_dir, 8 * 1024 * 1024)?;
    let n = store.restore(file)?;
    Ok((n, moved))
}
