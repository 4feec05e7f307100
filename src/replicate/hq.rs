//! `spa-hub hq`: head office. Consumes every site's subject of the stream
//! with one durable pull consumer, keeps each site's events in a sled tree
//! of its own (`site/<id>`: `seq` big-endian → the payload as received),
//! and computes a site's day report with the site's own code
//! (`domain::report::day_report_from` over that site's events, cut into days
//! in the site's time zone, from a report checkpoint kept like the site
//! keeps its own), so head office's figures are the site's.
//!
//! Robustness: a message that is not a site's event (wrong subject, no
//! `Spa-Seq`, a payload that does not decode, a `seq` that disagrees) is
//! acknowledged, counted and skipped; a re-delivered or re-published event
//! (`seq` already held) is counted as a duplicate; a jump is counted as a
//! gap. Nothing a message says can crash the consumer.
//!
//! Rebuilding: the position in the stream is kept with the events (tree
//! `meta`, `stream_seq`), flushed before the ack. On start, a durable
//! consumer whose ack floor disagrees (a new or restored data directory) is
//! replaced by one starting right after what this directory holds: delete
//! the data directory and head office reads the whole stream again.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::wire;
use crate::clock::SpaClock;
use crate::config::HqConfig;
use crate::domain::report::{checkpoint_wanted, day_report_from, DayReport};
use crate::domain::{Event, EventRecord};
use crate::store::CheckpointCache;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What head office knows of one site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteMeta {
    pub tz: String,
    pub pii: String,
    pub last_seq: u64,
    /// The last event's `at` (the site's clock, ms).
    pub last_event_at: i64,
    /// When head office stored it (ms).
    pub received_at: i64,
    pub gaps: u64,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct HqCounters {
    pub ingested: AtomicU64,
    pub duplicates: AtomicU64,
    pub malformed: AtomicU64,
    pub gaps: AtomicU64,
    pub failures: AtomicU64,
    pub connected: AtomicBool,
}

pub struct HqStore {
    db: sled::Db,
    meta: sled::Tree,
    sites: Mutex<BTreeMap<String, SiteMeta>>,
    /// The latest heartbeat per site, and when it came (ms).
    alive: Mutex<BTreeMap<String, (wire::Alive, i64)>>,
    pub counters: HqCounters,
    last_error: Mutex<String>,
}

const STREAM_SEQ: &[u8] = b"stream_seq";
const SITE_PREFIX: &str = "site/";
/// A site's report checkpoints: `checkpoints/<id>`, day big-endian →
/// postcard (zone, checkpoint). A cache: dropping the tree costs time only.
const CHECKPOINT_PREFIX: &str = "checkpoints/";

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One message as it came off the stream.
pub struct Incoming<'a> {
    pub subject: &'a str,
    pub seq_header: Option<&'a str>,
    pub tz_header: Option<&'a str>,
    pub pii_header: Option<&'a str>,
    pub payload: &'a [u8],
    pub stream_seq: u64,
}

/// What became of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Ingested {
    Stored,
    Duplicate,
    Malformed(String),
}

impl HqStore {
    pub fn open(dir: &Path) -> Result<HqStore, Error> {
        crate::store::private_dir(dir)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        let meta = db.open_tree("meta")?;
        let mut sites = BTreeMap::new();
        for item in meta.scan_prefix(SITE_PREFIX) {
            let (k, v) = item?;
            let site = String::from_utf8_lossy(&k[SITE_PREFIX.len()..]).into_owned();
            let m: SiteMeta = serde_json::from_slice(&v)?;
            sites.insert(site, m);
        }
        Ok(HqStore {
            db,
            meta,
            sites: Mutex::new(sites),
            alive: Mutex::new(BTreeMap::new()),
            counters: HqCounters::default(),
            last_error: Mutex::new(String::new()),
        })
    }

    /// The stream sequence of the last message this directory holds.
    pub fn stream_seq(&self) -> u64 {
        self.meta
            .get(STREAM_SEQ)
            .ok()
            .flatten()
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    }

    fn site_tree(&self, site: &str) -> Result<sled::Tree, sled::Error> {
        self.db.open_tree(format!("{SITE_PREFIX}{site}"))
    }

    pub fn sites(&self) -> BTreeMap<String, SiteMeta> {
        self.sites.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn alive(&self, site: &str) -> Option<(wire::Alive, i64)> {
        self.alive.lock().ok()?.get(site).copied()
    }

    pub fn heard(&self, subject: &str, payload: &[u8]) {
        let Some(site) = subject
            .strip_prefix("spa.")
            .and_then(|s| s.strip_suffix(".alive"))
        else {
            return;
        };
        if let (true, Ok(alive)) = (
            crate::config::nats::valid_site_id(site),
            serde_json::from_slice::<wire::Alive>(payload),
        ) {
            if let Ok(mut map) = self.alive.lock() {
                map.insert(site.to_string(), (alive, now_ms()));
            }
        }
    }

    /// Stores one message (not flushed: see `flush`).
    pub fn ingest(&self, m: &Incoming<'_>) -> Result<Ingested, Error> {
        let Some(site) = wire::site_of_subject(m.subject) else {
            return Ok(self.malformed(format!("not a site's subject: {:?}", m.subject)));
        };
        let Some(seq) = m.seq_header.and_then(|s| s.trim().parse::<u64>().ok()) else {
            return Ok(self.malformed(format!("{site}: no Spa-Seq header")));
        };
        let tz = m.tz_header.unwrap_or("UTC");
        if jiff::tz::TimeZone::get(tz).is_err() {
            return Ok(self.malformed(format!("{site}: unknown time zone {tz:?}")));
        }
        let record: EventRecord = match wire::decode(m.payload) {
            Ok(r) => r,
            Err(e) => return Ok(self.malformed(format!("{site} seq {seq}: {e}"))),
        };
        if record.seq != seq {
            return Ok(self.malformed(format!(
                "{site}: Spa-Seq {seq} but the event says {}",
                record.seq
            )));
        }
        let mut sites = self.sites.lock().map_err(|_| "site table poisoned")?;
        let meta = sites.entry(site.to_string()).or_default();
        if seq <= meta.last_seq {
            self.counters.duplicates.fetch_add(1, Relaxed);
            self.set_stream_seq(m.stream_seq)?;
            return Ok(Ingested::Duplicate);
        }
        if seq != meta.last_seq + 1 {
            log::warn!(
                "site {site}: seq {seq} follows {}: {} event(s) missing",
                meta.last_seq,
                seq - meta.last_seq - 1
            );
            meta.gaps += 1;
            self.counters.gaps.fetch_add(1, Relaxed);
        }
        // A customer's forget: blank that customer in this site's stored
        // events too (whatever the site's PII mode; see domain::privacy).
        if let Event::CustomerForgotten {
            customer_id,
            visit_ids,
            booking_ids,
            ..
        } = &record.event
        {
            self.forget(site, *customer_id, visit_ids, booking_ids)?;
        }
        self.site_tree(site)?.insert(seq.to_be_bytes(), m.payload)?;
        meta.tz = tz.to_string();
        meta.pii = m.pii_header.unwrap_or("omit").to_string();
        meta.last_seq = seq;
        meta.last_event_at = record.at;
        meta.received_at = now_ms();
        self.meta.insert(
            format!("{SITE_PREFIX}{site}").as_bytes(),
            serde_json::to_vec(meta)?,
        )?;
        self.set_stream_seq(m.stream_seq)?;
        self.counters.ingested.fetch_add(1, Relaxed);
        Ok(Ingested::Stored)
    }

    /// Rewrites a site's stored events about a forgotten customer blank.
    fn forget(
        &self,
        site: &str,
        customer_id: u64,
        visits: &[u64],
        bookings: &[u64],
    ) -> Result<(), Error> {
        let tree = self.site_tree(site)?;
        let mut blanked = 0;
        for item in tree.iter() {
            let (key, value) = item?;
            let Ok(mut record) = wire::decode(&value) else {
                continue;
            };
            if crate::domain::privacy::forget_in(&mut record, customer_id, visits, bookings) {
                tree.insert(key, wire::encode(&record)?.to_vec())?;
                blanked += 1;
            }
        }
        // The site's report checkpoints are copies of its state (with
        // names when the site sends them): rebuilt from the blanked events.
        self.db.drop_tree(format!("{CHECKPOINT_PREFIX}{site}"))?;
        log::info!(
            "site {site}: customer {customer_id} forgotten, {blanked} stored event(s) blanked"
        );
        Ok(())
    }

    fn set_stream_seq(&self, seq: u64) -> Result<(), sled::Error> {
        self.meta.insert(STREAM_SEQ, &seq.to_be_bytes())?;
        Ok(())
    }

    fn malformed(&self, why: String) -> Ingested {
        self.counters.malformed.fetch_add(1, Relaxed);
        log::warn!("skipped a message: {why}");
        Ingested::Malformed(why)
    }

    /// Makes everything ingested so far durable (before the ack).
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }

    /// A site's events in `seq` order.
    pub fn events(&self, site: &str) -> Result<Vec<EventRecord>, Error> {
        let mut out = Vec::new();
        for item in self.site_tree(site)?.iter() {
            let (_, v) = item?;
            out.push(wire::decode(&v)?);
        }
        Ok(out)
    }

    /// The site's day report for `day` (`yyyymmdd`), as the site computes it:
    /// replayed from the nearest report checkpoint at or before `day` (tree
    /// `checkpoints/<id>`, kept on the way like the site keeps its own), so
    /// today's figures cost a day's events, not the site's whole history.
    pub fn day_report(&self, site: &str, day: u32) -> Result<Option<DayReport>, Error> {
        let Some(meta) = self.sites().get(site).cloned() else {
            return Ok(None);
        };
        let clock = SpaClock::new(jiff::tz::TimeZone::get(&meta.tz)?);
        let checkpoints = self.db.open_tree(format!("{CHECKPOINT_PREFIX}{site}"))?;
        let cache = CheckpointCache {
            tree: &checkpoints,
            prefix: &[],
        };
        let start = cache.at_or_before(day, &meta.tz);
        let from = start.as_ref().map_or(1, |c| c.seq + 1);
        let have = start.as_ref().map_or(0, |c| c.day);
        let mut failed: Option<Error> = None;
        let events = self
            .site_tree(site)?
            .range(from.to_be_bytes()..)
            .map_while(|item| {
                let decoded = item
                    .map_err(Error::from)
                    .and_then(|(_, v)| wire::decode(&v).map_err(Error::from));
                match decoded {
                    Ok(record) => Some(record),
                    Err(e) => {
                        failed = Some(e);
                        None
                    }
                }
            });
        let report = day_report_from(
            start,
            events,
            day,
            |ms| clock.day_of(ms),
            checkpoint_wanted(have, day),
            |c| cache.keep(&meta.tz, &c),
        );
        match failed {
            Some(e) => Err(e),
            None => Ok(Some(report)),
        }
    }

    /// Today (`yyyymmdd`) in a site's time zone.
    pub fn today(&self, site: &str) -> Option<u32> {
        let meta = self.sites().get(site).cloned()?;
        let clock = SpaClock::new(jiff::tz::TimeZone::get(&meta.tz).ok()?);
        Some(clock.now().day)
    }

    fn failed(&self, error: &dyn std::fmt::Display) {
        self.counters.failures.fetch_add(1, Relaxed);
        self.counters.connected.store(false, Relaxed);
        let text = error.to_string();
        if let Ok(mut last) = self.last_error.lock() {
            if last.is_empty() {
                log::error!("NATS: {text}; retrying");
            }
            *last = text;
        }
    }

    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
}

/// Consumes the stream until `stop`; reconnects and re-binds by itself.
pub async fn consume(
    config: Arc<HqConfig>,
    store: Arc<HqStore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    while !*stop.borrow() {
        let result = async {
            let client = super::site::connect(&config.server, "spa-hub hq", {
                let store = store.clone();
                move |event| match event {
                    async_nats::Event::Disconnected => store.failed(&"disconnected"),
                    async_nats::Event::ServerError(e) => store.failed(&e),
                    _ => {}
                }
            })
            .await?;
            run(&client, &store, &mut stop, &mut backoff).await
        }
        .await;
        match result {
            Ok(()) => break,
            Err(e) => store.failed(&e),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
    if let Err(e) = store.flush() {
        log::warn!("flushing head office's store: {e}");
    }
}

async fn run(
    client: &async_nats::Client,
    store: &HqStore,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<(), Error> {
    let mut alive = client.subscribe("spa.*.alive").await?;
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: wire::STREAM.to_string(),
            subjects: vec![wire::STREAM_SUBJECTS.to_string()],
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    let held = store.stream_seq();
    let wanted = pull::Config {
        durable_name: Some(wire::HQ_CONSUMER.to_string()),
        filter_subject: wire::STREAM_SUBJECTS.to_string(),
        ack_policy: AckPolicy::All,
        deliver_policy: if held == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: held + 1,
            }
        },
        max_ack_pending: 20_000,
        ..Default::default()
    };
    // A durable consumer that is not where this directory is (a new or
    // restored directory) is replaced: the directory is the truth.
    if let Ok(mut existing) = stream.get_consumer::<pull::Config>(wire::HQ_CONSUMER).await {
        let floor = existing.info().await?.ack_floor.stream_sequence;
        if floor != held {
            log::warn!(
                "the durable consumer {} acknowledged up to stream seq {floor} but this directory holds up to {held}: reading again from {}",
                wire::HQ_CONSUMER,
                held + 1
            );
            stream.delete_consumer(wire::HQ_CONSUMER).await?;
        }
    }
    let consumer = stream
        .get_or_create_consumer(wire::HQ_CONSUMER, wanted)
        .await?;
    store.counters.connected.store(true, Relaxed);
    if let Ok(mut last) = store.last_error.lock() {
        if !last.is_empty() {
            log::warn!("NATS: consuming again");
            last.clear();
        }
    }
    *backoff = Duration::from_millis(250);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let mut batch = consumer
            .batch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        let mut last = None;
        loop {
            tokio::select! {
                m = batch.next() => {
                    let Some(m) = m else { break };
                    let m = m?;
                    let stream_seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
                    let header = |name: &str| {
                        m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str())
                    };
                    store.ingest(&Incoming {
                        subject: m.subject.as_str(),
                        seq_header: header(wire::HDR_SEQ),
                        tz_header: header(wire::HDR_TZ),
                        pii_header: header(wire::HDR_PII),
                        payload: &m.payload,
                        stream_seq,
                    })?;
                    last = Some(m);
                }
                Some(beat) = alive.next() => store.heard(beat.subject.as_str(), &beat.payload),
                _ = stop.changed() => break,
            }
        }
        if let Some(m) = last {
            // Durable first, then the ack (AckPolicy::All acks the batch).
            store.flush()?;
            m.ack().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, Event};

    fn payload(seq: u64) -> Vec<u8> {
        let r = EventRecord {
            seq,
            at: 1_795_700_000_000 + seq as i64,
            actor: Actor::System,
            event: Event::RoomRemoved { room_id: seq },
        };
        wire::encode(&r).expect("encodes").to_vec()
    }

    fn msg<'a>(subject: &'a str, seq: Option<&'a str>, payload: &'a [u8], n: u64) -> Incoming<'a> {
        Incoming {
            subject,
            seq_header: seq,
            tz_header: Some("Europe/Paris"),
            pii_header: Some("omit"),
            payload,
            stream_seq: n,
        }
    }

    #[test]
    fn foreign_and_malformed_messages_are_counted_and_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = HqStore::open(dir.path()).expect("open");
        let (p1, p2, p4) = (payload(1), payload(2), payload(4));
        let s = "spa.paris.events";
        assert_eq!(
            store.ingest(&msg(s, Some("1"), &p1, 1)).ok(),
            Some(Ingested::Stored)
        );
        // Redelivered or re-published: a duplicate, nothing changes.
        assert_eq!(
            store.ingest(&msg(s, Some("1"), &p1, 2)).ok(),
            Some(Ingested::Duplicate)
        );
        for bad in [
            msg("spa.paris.alive", Some("2"), &p2, 3),
            msg("spa.Bad Site.events", Some("2"), &p2, 3),
            msg("other.subject", Some("2"), &p2, 3),
            msg(s, None, &p2, 3),
            msg(s, Some("two"), &p2, 3),
            msg(s, Some("3"), &p2, 3),
            msg(s, Some("2"), b"not json", 3),
            msg(s, Some("2"), b"{\"seq\":2}", 3),
            msg(s, Some("2"), &[0xff, 0xfe, 0], 3),
        ] {
            assert!(
                matches!(store.ingest(&bad), Ok(Ingested::Malformed(_))),
                "{}",
                bad.subject
            );
        }
        let mut bad_tz = msg(s, Some("2"), &p2, 3);
        bad_tz.tz_header = Some("Mars/Olympus");
        assert!(matches!(store.ingest(&bad_tz), Ok(Ingested::Malformed(_))));
        assert_eq!(store.counters.malformed.load(Relaxed), 10);
        assert_eq!(store.sites()["paris"].last_seq, 1);
        // A jump is stored and counted as a gap.
        assert_eq!(
            store.ingest(&msg(s, Some("4"), &p4, 4)).ok(),
            Some(Ingested::Stored)
        );
        assert_eq!(store.counters.gaps.load(Relaxed), 1);
        assert_eq!(store.events("paris").expect("events").len(), 2);
        assert_eq!(store.stream_seq(), 4);
        // Everything survives a reopen.
        store.flush().expect("flush");
        drop(store);
        let store = HqStore::open(dir.path()).expect("reopen");
        assert_eq!(store.sites()["paris"].last_seq, 4);
        assert_eq!(store.sites()["paris"].tz, "Europe/Paris");
        assert_eq!(store.stream_seq(), 4);
    }

    #[test]
    fn reports_from_checkpoints_equal_a_full_replay_on_every_day() {
        let site_dir = tempfile::tempdir().expect("tmp");
        crate::bench_year::build(site_dir.path(), 3).expect("three days of a spa");
        let site = crate::store::Store::open(site_dir.path(), 16 << 20).expect("open");
        let events: Vec<EventRecord> = site
            .events_from(1)
            .collect::<Result<_, _>>()
            .expect("the log");
        drop(site);
        let dir = tempfile::tempdir().expect("tmp");
        let store = HqStore::open(dir.path()).expect("open");
        for (n, r) in events.iter().enumerate() {
            let payload = wire::encode(r).expect("encodes");
            let seq = r.seq.to_string();
            let mut m = msg("spa.lyon.events", Some(&seq), &payload, n as u64 + 1);
            m.tz_header = Some("UTC");
            assert_eq!(store.ingest(&m).ok(), Some(Ingested::Stored));
        }
        let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
        let mut days: Vec<u32> = events.iter().map(|r| clock.day_of(r.at)).collect();
        days.sort_unstable();
        days.dedup();
        assert!(days.len() >= 3, "{days:?}");
        let full: BTreeMap<u32, DayReport> = days
            .iter()
            .map(|&day| {
                let report =
                    crate::domain::report::day_report(events.clone(), day, |ms| clock.day_of(ms));
                (day, report)
            })
            .collect();
        // Newest first (checkpoints made on the way), then oldest first
        // (from them), then again: every time the full replay's figures.
        let mut order: Vec<u32> = days.iter().rev().copied().collect();
        order.extend(days.iter().copied());
        for day in order {
            let report = store
                .day_report("lyon", day)
                .expect("report")
                .expect("site");
            assert_eq!(report, full[&day], "day {day}");
        }
        let kept = store
            .db
            .open_tree(format!("{CHECKPOINT_PREFIX}lyon"))
            .expect("tree")
            .len();
        assert!((1..=4).contains(&kept), "{kept} checkpoints kept");
    }

    #[test]
    fn a_forget_from_a_site_blanks_its_stored_events_even_with_full_pii() {
        use crate::domain::customers::Customer;
        let dir = tempfile::tempdir().expect("tmp");
        let store = HqStore::open(dir.path()).expect("open");
        let s = "spa.paris.events";
        let customer = Customer {
            id: 5,
            name: "Maria Secret".into(),
            phone: Some("600111222".into()),
            email: None,
            notes: Some("nut oils".into()),
            created_at: 0,
            last_visit_at: None,
            forgotten: false,
            visit_ids: Vec::new(),
            booking_ids: Vec::new(),
            absorbed: Vec::new(),
        };
        let events = [
            Event::CustomerCreated { customer },
            Event::RoomRemoved { room_id: 1 },
            Event::CustomerForgotten {
                customer_id: 5,
                reason: "asked".into(),
                visit_ids: vec![],
                booking_ids: vec![],
                key_ids: vec![5],
            },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let seq = i as u64 + 1;
            let r = EventRecord {
                seq,
                at: 1_795_700_000_000,
                actor: Actor::AdminToken,
                event,
            };
            let p = wire::encode(&r).expect("encodes").to_vec();
            let n = seq.to_string();
            let mut m = msg(s, Some(&n), &p, seq);
            m.pii_header = Some("full");
            assert_eq!(store.ingest(&m).ok(), Some(Ingested::Stored));
        }
        let text = format!("{:?}", store.events("paris").expect("events"));
        assert!(
            !text.contains("Maria") && !text.contains("600111222"),
            "{text}"
        );
        assert!(text.contains("(forgotten)"));
    }
}
