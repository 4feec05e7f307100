//! A site's publisher: the event log on disk is the outbox, JetStream the
//! destination.
//!
//! The writer only nudges a `watch` with the last committed `seq` (see
//! [`Follower`]): it never waits for NATS. A task on the network runtime
//! reads the log from the last `seq` JetStream confirmed, publishes each
//! event to `spa.<site>.events` with the message id `<site>:<seq>`, and keeps
//! up to `SPA_NATS_MAX_IN_FLIGHT` publishes awaiting their acks. Confirmed
//! `seq`s are kept in sled (tree `cursors`) as they come in.
//!
//! Why a retry never duplicates and a gap cannot happen:
//! - every publish carries its message id, so a re-publish inside the
//!   stream's duplicate window is dropped by JetStream;
//! - a (re)start of a session first asks the stream for the last message on
//!   the site's subject and resumes after it (so a re-publish after the
//!   window is not needed: the stream itself says what it holds);
//! - a publish sent when the previous one's ack is known carries that ack's
//!   stream sequence as the expected last subject sequence; the rest of a
//!   pipelined burst goes in order on one connection, whose acks come back
//!   in order; the first failed ack ends the session, and the next one
//!   starts again from what the stream holds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use tokio::sync::watch;

use super::wire;
use crate::config::{NatsCreds, NatsServer, NatsSettings};
use crate::domain::privacy::for_head_office;
use crate::hub::metrics::Histogram;
use crate::store::{Cursors, LogReader};
use crate::writer::{Committed, Subscriber};

/// The sled cursor holding the last `seq` JetStream confirmed.
pub const CURSOR: &str = "nats_confirmed";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where replication stands, for `/healthz` and `/metrics`.
pub struct ReplicationHealth {
    pub site: String,
    pub subject: String,
    pub pii: &'static str,
    /// 0 connecting, 1 publishing, 2 failing (see `state_name`).
    pub state: AtomicU8,
    /// The last committed `seq` the publisher was told of.
    pub committed: AtomicU64,
    /// The last `seq` JetStream confirmed.
    pub confirmed: AtomicU64,
    /// `at` (ms) of the oldest event not yet confirmed; 0 when none.
    pub oldest_unconfirmed_at: AtomicI64,
    pub published: AtomicU64,
    /// Acks that said "duplicate" (a retry JetStream dropped).
    pub duplicates: AtomicU64,
    /// Failed connects, publishes and stream checks.
    pub failures: AtomicU64,
    /// From an event's commit to JetStream's ack.
    pub lag: Histogram,
    pub last_error: Mutex<String>,
}

pub const CONNECTING: u8 = 0;
pub const PUBLISHING: u8 = 1;
pub const FAILING: u8 = 2;

impl ReplicationHealth {
    pub fn new(settings: &NatsSettings) -> Self {
        ReplicationHealth {
            site: settings.site.clone(),
            subject: settings.subject(),
            pii: settings.pii.as_str(),
            state: AtomicU8::new(CONNECTING),
            committed: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            oldest_unconfirmed_at: AtomicI64::new(0),
            published: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            lag: Histogram::latency(),
            last_error: Mutex::new(String::new()),
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state.load(Relaxed) {
            PUBLISHING => "publishing",
            FAILING => "failing",
            _ => "connecting",
        }
    }

    pub fn lag_events(&self) -> u64 {
        self.committed
            .load(Relaxed)
            .saturating_sub(self.confirmed.load(Relaxed))
    }

    /// How old the oldest unconfirmed event is, in seconds (0 when none).
    pub fn lag_seconds(&self, now_ms: i64) -> f64 {
        match self.oldest_unconfirmed_at.load(Relaxed) {
            0 => 0.0,
            at => (now_ms - at).max(0) as f64 / 1000.0,
        }
    }

    pub fn json(&self, now_ms: i64) -> serde_json::Value {
        serde_json::json!({
            "site": self.site,
            "subject": self.subject,
            "pii": self.pii,
            "state": self.state_name(),
            "committed": self.committed.load(Relaxed),
            "confirmed": self.confirmed.load(Relaxed),
            "lag_events": self.lag_events(),
            "lag_seconds": self.lag_seconds(now_ms),
            "last_error": self.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        })
    }

    /// Prometheus lines.
    pub fn render(&self, out: &mut String, now_ms: i64) {
        use std::fmt::Write;
        for (name, help, value) in [
            (
                "spa_hub_nats_state",
                "0 connecting, 1 publishing, 2 failing",
                self.state.load(Relaxed) as f64,
            ),
            (
                "spa_hub_nats_confirmed_seq",
                "Last seq JetStream confirmed",
                self.confirmed.load(Relaxed) as f64,
            ),
            (
                "spa_hub_nats_lag_events",
                "Committed events not yet confirmed by JetStream",
                self.lag_events() as f64,
            ),
            (
                "spa_hub_nats_lag_seconds",
                "Age of the oldest event not yet confirmed by JetStream",
                self.lag_seconds(now_ms),
            ),
            (
                "spa_hub_nats_published_total",
                "Events JetStream confirmed",
                self.published.load(Relaxed) as f64,
            ),
            (
                "spa_hub_nats_duplicates_total",
                "Re-publishes JetStream dropped as duplicates",
                self.duplicates.load(Relaxed) as f64,
            ),
            (
                "spa_hub_nats_failures_total",
                "Failed connects, publishes and stream checks",
                self.failures.load(Relaxed) as f64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        self.lag.render(
            out,
            "spa_hub_nats_lag_seconds_hist",
            "From an event's commit to JetStream's ack",
        );
    }

    /// Records a failure: counted always, logged at the start of an outage
    /// (one line per outage, not one per retry; the latest in `last_error`).
    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.failures.fetch_add(1, Relaxed);
        self.state.store(FAILING, Relaxed);
        let text = format!("{what}: {error}");
        if let Ok(mut last) = self.last_error.lock() {
            if last.is_empty() {
                log::error!(
                    "NATS replication of {}: {text}; the site keeps working and catches up later",
                    self.subject
                );
            } else if *last != text {
                log::debug!("NATS replication of {}: {text}", self.subject);
            }
            *last = text;
        }
    }

    fn recovered(&self, from_seq: u64) {
        self.state.store(PUBLISHING, Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            if !last.is_empty() {
                log::warn!(
                    "NATS replication of {}: publishing again from seq {from_seq}",
                    self.subject
                );
                last.clear();
            }
        }
    }
}

/// The writer's side: after each committed batch, the new last `seq`.
pub struct Follower {
    pub tx: watch::Sender<u64>,
    pub health: Arc<ReplicationHealth>,
}

impl Subscriber for Follower {
    fn committed(&mut self, batch: &Committed<'_>) {
        if let Some(last) = batch.events.last() {
            self.health.committed.store(last.seq, Relaxed);
            self.tx.send_replace(last.seq);
        }
    }
}

/// Connects with the settings' credentials and TLS (no retry: the caller
/// retries and reports).
pub async fn connect(
    server: &NatsServer,
    name: &str,
    on_event: impl Fn(async_nats::Event) + Send + Sync + 'static,
) -> Result<async_nats::Client, Error> {
    let mut options = match &server.creds {
        None => async_nats::ConnectOptions::new(),
        Some(NatsCreds::File(path)) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| format!("creds file {}: {e}", path.display()))?,
        Some(NatsCreds::UserPassword { user, password }) => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
    };
    if server.requires_tls() {
        options = options.require_tls(true);
    }
    if let Some(ca) = &server.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    let on_event = Arc::new(on_event);
    let options = options
        .event_callback(move |event| {
            let on_event = on_event.clone();
            async move { on_event(event) }
        })
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(10));
    let urls: Vec<async_nats::ServerAddr> = server
        .urls
        .iter()
        .map(|u| u.parse())
        .collect::<Result<_, _>>()?;
    Ok(options.connect(urls.as_slice()).await?)
}

/// Everything the publisher task needs.
pub struct Publisher {
    pub settings: NatsSettings,
    pub log: LogReader,
    pub cursors: Cursors,
    /// The site's IANA zone, for head office's day boundaries.
    pub tz: String,
    pub health: Arc<ReplicationHealth>,
    pub committed: watch::Receiver<u64>,
    pub stop: watch::Receiver<bool>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The publisher's nice value: replication may lag a little when the CPU is
/// busy, the floor's fan-out may not.
const BACKGROUND_NICE: i32 = 10;

/// Runs `publisher` on a thread of its own, with its own single-threaded
/// runtime (the NATS client's tasks live there too) at a lower CPU priority,
/// so that publishing competes with the floor's connections only for what
/// they leave idle. The handle completes when the publisher has stopped.
pub fn spawn_background(publisher: Publisher) -> tokio::task::JoinHandle<()> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("spa-nats".into())
        .spawn(move || {
            crate::cpu::lower_this_threads_priority(BACKGROUND_NICE);
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(publisher.run()),
                Err(e) => log::error!("replication cannot start its runtime: {e}"),
            }
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        log::error!("replication cannot start its thread: {e}");
    }
    tokio::spawn(async move {
        let _ = done_rx.await;
    })
}

impl Publisher {
    /// Runs until the stop signal, through any number of NATS outages.
    pub async fn run(mut self) {
        let mut confirmed = match self.cursors.get(CURSOR) {
            Ok(v) => v.unwrap_or(0),
            Err(e) => {
                log::error!("reading the NATS cursor: {e}; asking the stream instead");
                0
            }
        };
        self.health.confirmed.store(confirmed, Relaxed);
        self.health
            .committed
            .store(*self.committed.borrow(), Relaxed);
        let mut backoff = Duration::from_millis(250);
        let name = format!("spa-hub site {}", self.settings.site);
        let mut client = None;
        while !*self.stop.borrow() {
            let c = match &client {
                Some(c) => Ok::<_, Error>(c),
                None => match connect(&self.settings.server, &name, {
                    let health = self.health.clone();
                    move |event| match event {
                        async_nats::Event::Disconnected => health.failed("NATS", &"disconnected"),
                        async_nats::Event::ServerError(e) => health.failed("NATS server", &e),
                        _ => {}
                    }
                })
                .await
                {
                    Ok(c) => Ok(&*client.insert(c)),
                    Err(e) => Err(e),
                },
            };
            let result = match c {
                Ok(c) => {
                    let c = c.clone();
                    self.session(&c, &mut confirmed, &mut backoff).await
                }
                Err(e) => Err(format!(
                    "connecting to {}: {e}",
                    self.settings.server.urls.join(",")
                )
                .into()),
            };
            match result {
                Ok(()) => break,
                Err(e) => self.health.failed("NATS", &e),
            }
            self.update_oldest(confirmed);
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        if let Err(e) = self.cursors.flush() {
            log::warn!("flushing the NATS cursor: {e}");
        }
    }

    /// Marks the age of the oldest unconfirmed event from the log.
    fn update_oldest(&self, confirmed: u64) {
        let committed = *self.committed.borrow();
        self.health.committed.store(committed, Relaxed);
        let at = if committed > confirmed {
            match self.log.events_from(confirmed + 1).next() {
                Some(Ok(e)) => e.at,
                _ => 0,
            }
        } else {
            0
        };
        self.health.oldest_unconfirmed_at.store(at, Relaxed);
    }

    /// The stream as the hub needs it: created if missing, or the
    /// operator's, which must take this site's subject.
    async fn stream(&self, js: &jetstream::Context) -> Result<stream::Stream, Error> {
        let subject = self.settings.subject();
        match js.get_stream(wire::STREAM).await {
            Ok(mut s) => {
                let info = s.info().await?;
                let takes = info
                    .config
                    .subjects
                    .iter()
                    .any(|pattern| subject_matches(pattern, &subject));
                if !takes {
                    return Err(format!(
                        "stream {} exists but does not take {subject} (its subjects: {})",
                        wire::STREAM,
                        info.config.subjects.join(", ")
                    )
                    .into());
                }
                let max_age = info.config.max_age;
                let oldest = self.health.oldest_unconfirmed_at.load(Relaxed);
                if !max_age.is_zero()
                    && oldest > 0
                    && now_ms() - oldest > max_age.as_millis() as i64
                {
                    log::warn!(
                        "stream {} keeps messages {} h; events of this site waiting since {} s would be dropped by it on arrival: raise its max age",
                        wire::STREAM,
                        max_age.as_secs() / 3600,
                        (now_ms() - oldest) / 1000
                    );
                }
                Ok(s)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                log::info!("creating the JetStream stream {}", wire::STREAM);
                Ok(js
                    .get_or_create_stream(stream::Config {
                        name: wire::STREAM.to_string(),
                        subjects: vec![wire::STREAM_SUBJECTS.to_string()],
                        max_age: Duration::from_secs(self.settings.stream_max_age_hours * 3600),
                        duplicate_window: Duration::from_secs(120),
                        storage: stream::StorageType::File,
                        retention: stream::RetentionPolicy::Limits,
                        ..Default::default()
                    })
                    .await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One connected stretch: check the stream, resume after what it holds,
    /// publish until an error (returned) or the stop signal (`Ok`).
    async fn session(
        &mut self,
        client: &async_nats::Client,
        confirmed: &mut u64,
        backoff: &mut Duration,
    ) -> Result<(), Error> {
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .max_ack_inflight(self.settings.max_in_flight.max(1))
            .build(client.clone());
        let stream = self.stream(&js).await?;
        let subject = self.settings.subject();
        // What the stream already holds of this site decides where to go on.
        let (held_seq, held_stream_seq) = match stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) => match m
                .headers
                .get(wire::HDR_SEQ)
                .and_then(|v| v.as_str().parse::<u64>().ok())
            {
                Some(seq) => (seq, m.sequence),
                None => {
                    // Someone else's message on our subject: it says
                    // nothing of our log; go on from the cursor,
                    // chained after it.
                    log::warn!(
                            "the last message on {subject} (stream seq {}) is not this hub's; going on from the cursor",
                            m.sequence
                        );
                    (0, m.sequence)
                }
            },
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => (0, 0),
            Err(e) => return Err(e.into()),
        };
        let committed_now = *self.committed.borrow();
        if held_seq > committed_now {
            return Err(format!(
                "the stream holds seq {held_seq} for {subject} but this log ends at {committed_now}: another box uses SPA_SITE_ID {:?}, or this one was restored from a backup; not publishing",
                self.settings.site
            )
            .into());
        }
        if held_seq < *confirmed {
            log::warn!(
                "stream {} holds {subject} up to seq {held_seq} but seq {} was confirmed (aged out or purged there); going on from {}",
                wire::STREAM,
                *confirmed,
                *confirmed + 1
            );
        }
        *confirmed = (*confirmed).max(held_seq);
        self.save(*confirmed);
        self.health.recovered(*confirmed + 1);
        *backoff = Duration::from_millis(250);

        let heartbeat = tokio::spawn(heartbeat(
            client.clone(),
            self.settings.site.clone(),
            self.health.clone(),
        ));
        let result = self.pipeline(&js, confirmed, held_stream_seq).await;
        heartbeat.abort();
        result
    }

    async fn pipeline(
        &mut self,
        js: &jetstream::Context,
        confirmed: &mut u64,
        mut last_stream_seq: u64,
    ) -> Result<(), Error> {
        let subject = self.settings.subject();
        let max = self.settings.max_in_flight.max(1);
        let mut in_flight: VecDeque<(u64, i64, jetstream::context::PublishAckFuture)> =
            VecDeque::with_capacity(max);
        let mut next = *confirmed + 1;
        loop {
            if *self.stop.borrow() {
                return Ok(());
            }
            let committed = *self.committed.borrow_and_update();
            self.health.committed.store(committed, Relaxed);
            if in_flight.len() < max && next <= committed {
                let room = (max - in_flight.len()) as u64;
                let upto = committed.min(next + room - 1);
                for record in self.log.events_from(next) {
                    let record = record?;
                    if record.seq != next {
                        return Err(format!(
                            "the log jumps from seq {} to {}",
                            next - 1,
                            record.seq
                        )
                        .into());
                    }
                    let shared = for_head_office(&record, self.settings.pii);
                    let mut publish = PublishMessage::build()
                        .payload(wire::encode(&shared)?)
                        .message_id(wire::message_id(&self.settings.site, record.seq))
                        .header(wire::HDR_SITE, self.settings.site.as_str())
                        .header(wire::HDR_SEQ, record.seq.to_string().as_str())
                        .header(wire::HDR_TZ, self.tz.as_str())
                        .header(wire::HDR_PII, self.health.pii);
                    if in_flight.is_empty() {
                        // The previous event's place in the stream is known.
                        publish = publish.expected_last_subject_sequence(last_stream_seq);
                    }
                    let ack = js.send_publish(subject.clone(), publish).await?;
                    in_flight.push_back((record.seq, record.at, ack));
                    next += 1;
                    if next > upto {
                        break;
                    }
                }
            }
            match in_flight.front() {
                Some((_, at, _)) => self.health.oldest_unconfirmed_at.store(*at, Relaxed),
                None => self.update_oldest(*confirmed),
            }
            let Some((seq, at, ack)) = in_flight.pop_front() else {
                // Caught up: wait for the writer's next batch.
                let mut stop = self.stop.clone();
                tokio::select! {
                    changed = self.committed.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    _ = stop.changed() => {}
                }
                continue;
            };
            let ack = ack.await?;
            if ack.duplicate {
                self.health.duplicates.fetch_add(1, Relaxed);
            }
            last_stream_seq = ack.sequence;
            *confirmed = seq;
            self.health.confirmed.store(seq, Relaxed);
            self.health.published.fetch_add(1, Relaxed);
            self.health
                .lag
                .observe_us(((now_ms() - at).max(0) as u64) * 1000);
            self.save(seq);
        }
    }

    fn save(&self, seq: u64) {
        if let Err(e) = self.cursors.set(CURSOR, seq) {
            // The stream itself says where to resume; the cursor is a hint.
            log::warn!("saving the NATS cursor: {e}");
        }
    }
}

/// Tells head office every few seconds that the site is up and where its
/// log is (core NATS, not stored): "live" and lag in events at head office.
async fn heartbeat(client: async_nats::Client, site: String, health: Arc<ReplicationHealth>) {
    let subject = wire::alive_subject(&site);
    loop {
        let alive = wire::Alive {
            seq: health.committed.load(Relaxed),
            confirmed: health.confirmed.load(Relaxed),
            at: now_ms(),
        };
        if let Ok(body) = serde_json::to_vec(&alive) {
            let _ = client.publish(subject.clone(), body.into()).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// NATS subject matching with `*` and `>` wildcards.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_with_wildcards() {
        assert!(subject_matches("spa.*.events", "spa.hanoi-1.events"));
        assert!(subject_matches("spa.>", "spa.hanoi-1.events"));
        assert!(subject_matches("spa.hanoi-1.events", "spa.hanoi-1.events"));
        assert!(!subject_matches("spa.*.events", "spa.hanoi-1.alive"));
        assert!(!subject_matches("spa.*", "spa.hanoi-1.events"));
    }
}
