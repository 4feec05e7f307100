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
    #[error("SPA_TLS_CERT/SPA_TLS_KEY: {0}")]
    Tls(String),
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
    /// The NATS publisher (a site in a chain).
    publisher: Option<tokio::task::JoinHandle<()>>,
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
    // Loading decodes (and unseals) every record once: what that left in
    // the allocator's free lists goes back to the system.
    crate::cpu::give_back_memory();
    let log = store.log_reader();
    // While the system clock is not synchronised, the floor's time never
    // goes back behind the newest event (a Pi without an RTC after a power cut).
    if let Some(Ok(last)) = log.events_from(state.seq().max(1)).next() {
        clock.note_event(last.at);
    }
    let (synced, source) = {
        let src = config.timesync.clone();
        tokio::task::spawn_blocking(move || crate::clock::probe_sync(&src))
            .await
            .unwrap_or((false, "none"))
    };
    clock.set_synchronized(synced, source);
    let clock_status = clock.status();
    if !synced {
        log::warn!(
            "the system clock is not synchronised (no NTP yet){}: times are kept from going back behind the newest event; an admin can set the time from a device",
            if clock_status.held_at_last_event {
                ", and it is behind the newest event in the log"
            } else {
                ""
            }
        );
    }
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
    let mut subscribers: Vec<Box<dyn Subscriber>> = vec![
        Box::new(Fanout::spawn(ring.clone())),
        Box::new(LightsFollower {
            lights: lights.clone(),
        }),
    ];
    // Receipts and Z reports to the printer, like the fan-out: the writer
    // only copies them into the printer's queue.
    let printer = config
        .counter
        .receipt_printer
        .clone()
        .map(crate::printer::Printer::spawn);
    if let Some(p) = &printer {
        log::info!("printing receipts on {}", p.addr);
        subscribers.push(Box::new(p.follower(config.time_zone())));
    }
    let seq = state.seq();
    // The NATS publisher follows committed batches like the fan-out: the
    // writer only moves a watch; the log on disk is the outbox.
    let replication = config.nats.as_ref().map(|settings| {
        let (tx, rx) = watch::channel(seq);
        let health = Arc::new(crate::replicate::site::ReplicationHealth::new(settings));
        subscribers.push(Box::new(crate::replicate::site::Follower {
            tx,
            health: health.clone(),
        }));
        let publisher = crate::replicate::site::Publisher {
            settings: settings.clone(),
            log: log.clone(),
            cursors: store.cursors(),
            tz: clock.tz_name(),
            health: health.clone(),
            committed: rx,
            stop: watch::channel(false).1,
        };
        (health, publisher)
    });
    let rules = crate::domain::Rules {
        giftcard_key: Some(store.giftcard_key()),
        ..config.rules()
    };
    let writer = Writer::spawn(store, state, clock.clone(), rules, subscribers)?;
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
        replication: replication.as_ref().map(|(h, _)| h.clone()),
        polls: Default::default(),
        printer,
    };
    hub.own_origins = crate::http::own_origins(&config, addr.port());
    let hub = Arc::new(hub);
    tokio::spawn(watch_sync(
        hub.clock.clone(),
        config.timesync.clone(),
        hub.shutdown.subscribe(),
    ));
    let publisher = replication.map(|(_, mut publisher)| {
        publisher.stop = hub.shutdown.subscribe();
        log::info!(
            "publishing the event log to NATS as {} (customer data: {})",
            publisher.health.subject,
            publisher.health.pii
        );
        crate::replicate::site::spawn_background(publisher)
    });

    let tls = match &config.tls {
        Some(files) => {
            let server = crate::tls::server_config(files, jiff::Timestamp::now().as_millisecond())
                .map_err(DaemonError::Tls)?;
            Some(tokio_rustls::TlsAcceptor::from(server))
        }
        None => None,
    };
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
        tls,
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
        publisher,
    })
}

/// Accepts TCP connections and serves HTTP/1.1 on each (with upgrades),
/// inside TLS when the client starts a handshake and TLS is configured,
/// until told to stop. A client must send its request headers within
/// `header_timeout` (idle or half-open sockets are closed).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    gate: Arc<crate::gate::Gate>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
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
        let conn = Conn {
            app: app.clone(),
            peer,
            local,
            header_timeout,
            tls_on: tls.is_some(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                conn.serve(ticket.watch(tcp), &ticket, false).await;
                return;
            };
            // HTTPS and plain HTTP share the port: a TLS client speaks
            // first with a handshake record (0x16).
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await;
            if !matches!(peeked, Ok(Ok(1))) {
                return;
            }
            if first[0] != 0x16 {
                conn.serve(ticket.watch(tcp), &ticket, false).await;
                return;
            }
            let accepted =
                tokio::time::timeout(header_timeout, acceptor.accept(ticket.watch(tcp))).await;
            match accepted {
                Ok(Ok(stream)) => conn.serve(stream, &ticket, true).await,
                Ok(Err(e)) => log::debug!("TLS handshake from {peer}: {e}"),
                Err(_) => log::debug!("TLS handshake from {peer}: timed out"),
            }
        });
    }
}

/// One accepted connection's HTTP/1.1 service (plain or inside TLS).
struct Conn {
    app: axum::Router,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    header_timeout: Duration,
    tls_on: bool,
}

impl Conn {
    async fn serve<I>(self, io: I, ticket: &crate::gate::HttpTicket, secure: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use axum::extract::ConnectInfo;
        use hyper_util::rt::TokioIo;
        let Conn {
            app,
            peer,
            local,
            header_timeout,
            tls_on,
        } = self;
        // A long-polling GET waiting on this connection marks it busy, so
        // it is never evicted as idle.
        let busy = ticket.busy_marker();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(busy.clone());
                if tls_on && !secure {
                    request.extensions_mut().insert(crate::http::PlainWhileTls);
                }
                if let Some(local) = local {
                    request
                        .extensions_mut()
                        .insert(crate::http::LocalAddr(local));
                }
                let app = app.clone();
                async move {
                    if tls_on && !secure {
                        let fallback = local.map(|l| l.to_string()).unwrap_or_default();
                        let path_and_query = request
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_else(|| "/".into());
                        if let Some(r) = crate::edge::refuse_plain(
                            &path_and_query,
                            request.uri().path(),
                            request.headers(),
                            &fallback,
                        ) {
                            return Ok(r);
                        }
                    }
                    crate::edge::respond(app, request.map(axum::body::Body::new)).await
                }
            },
        );
        let serving = crate::edge::http1(header_timeout)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::select! {
            _ = serving => {}
            // Made room for a new connection: close this idle one.
            _ = ticket.evicted() => {}
        }
    }
}

/// How often the clock's synchronisation is probed (a stat, or a
/// `timedatectl` run while the file is missing).
const SYNC_PROBE_EVERY: Duration = Duration::from_secs(15);

/// Probes the clock's synchronisation now and then; the moment it is
/// synchronised an admin's `clock.set` is dropped.
async fn watch_sync(
    clock: SpaClock,
    source: crate::clock::SyncSource,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SYNC_PROBE_EVERY) => {}
            _ = stop.changed() => return,
        }
        let src = source.clone();
        let Ok((synced, how)) =
            tokio::task::spawn_blocking(move || crate::clock::probe_sync(&src)).await
        else {
            continue;
        };
        if clock.set_synchronized(synced, how) {
            if synced {
                log::info!(
                    "the system clock is synchronised ({how}); a time set by an admin is dropped"
                );
            } else {
                log::warn!("the system clock is no longer synchronised");
            }
        }
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
        if let Some(publisher) = self.publisher {
            // It saw the shutdown too: let it store its cursor.
            let _ = tokio::time::timeout(Duration::from_secs(2), publisher).await;
        }
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
    // The addresses a tablet on the spa's network can use, not only
    // loopback: the first thing a new owner needs.
    let at = crate::edge::reachable_at(&running.hub.config, running.addr.port());
    log::info!("open the hub at {}", at.join("  "));
    log::info!(
        "phones and monitors get links to {} (SPA_PUBLIC_URL to change it)",
        crate::edge::public_base(&running.hub.config)
    );
    wait_for_signal().await;
    log::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    running.stop().await;
    log::info!("stopped");
    Ok(())
}

pub async fn wait_for_signal() {
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
    let (synced, how) = crate::clock::probe_sync(&config.timesync);
    writeln!(
        out,
        "clock: {}",
        if synced {
            format!("synchronised ({how})")
        } else {
            format!(
                "not synchronised (no {} and no NTPSynchronized=yes): the floor's time will not go back behind the newest event; an admin can set it from a device",
                config.timesync.file.display()
            )
        }
    )?;
    match &config.tls {
        Some(tls) => writeln!(
            out,
            "https: on ({}; staff pages redirect from plain http)",
            tls.cert.display()
        )?,
        None => writeln!(out, "https: off (plain http; see `spa-hub tls init`)")?,
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

/// `spa-hub export-customer ID` (daemon stopped): the customer record,
/// every visit (in memory or archived) and booking linked to it with the
/// visits' edits, as JSON; `None` when there is no such customer.
pub fn export_customer(
    config: &Config,
    id: crate::domain::Id,
) -> Result<Option<serde_json::Value>, StoreError> {
    use crate::domain::views::{self, Viewer};
    let store = Store::open(&config.data_dir, 8 * 1024 * 1024)?;
    let state = store.load_state()?;
    let Some(c) = state.customers.get(&id) else {
        return Ok(None);
    };
    let mut visits = Vec::new();
    for v in &c.visit_ids {
        let visit = match state.visits.get(v) {
            Some(v) => Some(v.clone()),
            None => store.archive().visit(*v)?,
        };
        if let Some(visit) = visit {
            let mut view = views::visit_full(&visit);
            if let Some(obj) = view.as_object_mut() {
                obj.insert(
                    "edits".into(),
                    serde_json::json!(state.visit_edits.get(v).cloned().unwrap_or_default()),
                );
            }
            visits.push(view);
        }
    }
    let gone: Vec<_> = c
        .booking_ids
        .iter()
        .filter(|b| !state.bookings.contains_key(b))
        .copied()
        .collect();
    let mut bookings: Vec<crate::domain::book::Booking> = c
        .booking_ids
        .iter()
        .filter_map(|b| state.bookings.get(b).cloned())
        .collect();
    if !gone.is_empty() {
        bookings.extend(store.archive().bookings_with(&gone)?);
    }
    let clock = crate::domain::Now { ms: 0, day: 0 };
    let bookings: Vec<serde_json::Value> = bookings
        .iter()
        .filter_map(|b| crate::domain::book::views::booking_for(Viewer::Office, b, &state, clock))
        .collect();
    Ok(Some(serde_json::json!({
        "customer": crate::domain::customers::view(c),
        "merged_from": c.absorbed,
        "visits": visits,
        "bookings": bookings,
    })))
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
