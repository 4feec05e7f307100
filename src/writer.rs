//! The single writer: the one place that owns the floor's state and the
//! database.
//!
//! It runs on its own OS thread (with a small current-thread runtime for its
//! timers), so sled's blocking calls never stall the network runtime. Each
//! turn of its loop takes every request waiting on the channel as one batch:
//! commands are decided by the pure core against the state as it grows
//! through the batch, all resulting events and changed records go to disk in
//! one transaction and one flush, and only then are the replies sent and the
//! batch published to the subscribers (hub fan-out, lights). If the disk
//! fails, the batch's changes are undone in memory and every command that
//! would have changed something is answered `unavailable`.
//!
//! The writer also owns the floor's timers (cleanup ends, session overtime):
//! deadlines are tokio `Instant`s (monotonic), computed from the wall clock
//! but clamped to the event's own duration, so a wall-clock jump can neither
//! end a cleanup early by more than it lasts nor stretch it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::clock::SpaClock;
use crate::domain::book::BookingState;
use crate::domain::state::{Record, RecordKey, RoomStatus, State, VisitState};
use crate::domain::{decide, Actor, Command, DomainError, ErrorCode, EventRecord, Id, Now, Rules};
use crate::store::Store;

/// Most requests taken as one batch.
const MAX_BATCH: usize = 512;

/// What a committed batch hands to subscribers.
pub struct Committed<'a> {
    /// The state after the batch (read-only).
    pub state: &'a State,
    /// The batch's events in `seq` order.
    pub events: &'a [EventRecord],
    /// For each event, the records it changed (same order as `events`).
    pub touched: &'a [Vec<RecordKey>],
    pub now: Now,
}

/// Something that follows committed changes (the hub's fan-out, the lights).
/// Called on the writer thread right after the flush: it must not block.
pub trait Subscriber: Send {
    fn committed(&mut self, batch: &Committed<'_>);
    /// Storage started or stopped failing.
    fn storage_failing(&mut self, _failing: bool) {}
}

type Reply = oneshot::Sender<Result<Value, DomainError>>;
type ReadFn = Box<dyn FnOnce(&State, Now) + Send>;

// Short-lived (sent, handled, dropped): boxing the command buys nothing.
#[allow(clippy::large_enum_variant)]
enum Request {
    Command {
        actor: Actor,
        command: Command,
        reply: Option<Reply>,
    },
    Read(ReadFn),
    Stop,
}

/// The handle everyone else uses to reach the writer. Cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Request>,
    health: Arc<Health>,
}

/// Facts the writer publishes for `/healthz` and `/metrics` without a round trip.
pub struct Health {
    pub storage_failing: std::sync::atomic::AtomicBool,
    pub seq: std::sync::atomic::AtomicU64,
    pub batches: std::sync::atomic::AtomicU64,
    pub commands: std::sync::atomic::AtomicU64,
    /// Time to write and flush each batch.
    pub flush_latency: crate::hub::metrics::Histogram,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            storage_failing: Default::default(),
            seq: Default::default(),
            batches: Default::default(),
            commands: Default::default(),
            flush_latency: crate::hub::metrics::Histogram::latency(),
        }
    }
}

fn unavailable() -> DomainError {
    DomainError::new(
        ErrorCode::Unavailable,
        "storage is failing; nothing was changed",
    )
}

impl WriterHandle {
    /// Runs a command and waits for its durable outcome.
    pub async fn execute(&self, actor: Actor, command: Command) -> Result<Value, DomainError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Command {
                actor,
                command,
                reply: Some(reply),
            })
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    /// Runs a command whose result nobody waits for (no ack id).
    pub async fn submit(&self, actor: Actor, command: Command) {
        let _ = self
            .tx
            .send(Request::Command {
                actor,
                command,
                reply: None,
            })
            .await;
    }

    /// Reads the committed state on the writer thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&State, Now) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let (tx, rx) = oneshot::channel();
        let job: ReadFn = Box::new(move |state, now| {
            let _ = tx.send(f(state, now));
        });
        self.tx
            .send(Request::Read(job))
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}

/// The running writer: its handle and its thread.
pub struct Writer {
    pub handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer on its own thread with the loaded state.
    pub fn spawn(
        store: Store,
        state: State,
        clock: SpaClock,
        rules: Rules,
        subscribers: Vec<Box<dyn Subscriber>>,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(4096);
        let health = Arc::new(Health::default());
        health
            .seq
            .store(state.seq(), std::sync::atomic::Ordering::Relaxed);
        let core = Core {
            store,
            state,
            clock,
            rules,
            subscribers,
            timers: HashMap::new(),
            health: health.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("spa-hub-writer".into())
            .spawn(move || {
                match crate::cpu::pin_commit_path() {
                    Ok(cpu) => {
                        log::info!("commit path (writer and sled's I/O threads) on CPU {cpu}")
                    }
                    Err(why) => log::info!("commit path not pinned: {why}"),
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(core.run(rx)),
                    Err(e) => log::error!("writer runtime: {e}"),
                }
            })?;
        Ok(Writer {
            handle: WriterHandle { tx, health },
            thread: Some(thread),
        })
    }

    /// Finishes the batch in flight, flushes, and stops the thread.
    pub async fn stop(mut self) {
        let _ = self.handle.tx.send(Request::Stop).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimerKey {
    Cleanup(Id),
    Overtime(Id),
    /// A booking's no-show (booked) or due alert (checked in, waiting).
    Booking(Id),
    /// The hourly pass that moves finished history out of memory.
    Archive,
}

/// How often the writer looks for history to move out of memory.
const ARCHIVE_EVERY: Duration = Duration::from_secs(3600);
/// Event packs made per archive pass (2,048 events: a few ms of the
/// writer's time), and how soon the pass comes back while more are due.
const PACKS_PER_STEP: usize = 32;
const PACK_AGAIN: Duration = Duration::from_secs(1);

/// A batch in the making: its events, the records they touched (with the
/// values before the batch, for an undo) and what goes to the archive.
#[derive(Default)]
struct Pending {
    log: Vec<EventRecord>,
    touched_by_event: Vec<Vec<RecordKey>>,
    saved: Vec<(RecordKey, Option<Record>)>,
    touched: BTreeSet<RecordKey>,
    archived: Vec<Record>,
    archive_full: bool,
}

struct Core {
    store: Store,
    state: State,
    clock: SpaClock,
    rules: Rules,
    subscribers: Vec<Box<dyn Subscriber>>,
    timers: HashMap<TimerKey, (Instant, Command)>,
    health: Arc<Health>,
}

impl Core {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let all_rooms: Vec<RecordKey> = self
            .state
            .rooms
            .keys()
            .map(|id| RecordKey::Room(*id))
            .collect();
        let all_visits: Vec<RecordKey> = self
            .state
            .visits
            .keys()
            .map(|id| RecordKey::Visit(*id))
            .collect();
        let all_bookings: Vec<RecordKey> = self
            .state
            .bookings
            .values()
            .filter(|b| matches!(b.state, BookingState::Booked | BookingState::CheckedIn))
            .map(|b| RecordKey::Booking(b.id))
            .collect();
        let now = self.clock.now();
        self.schedule(
            all_rooms
                .iter()
                .chain(all_visits.iter())
                .chain(all_bookings.iter()),
            now,
        );

        // The first archive pass right away: a database from before
        // version 3, or a box that was off for days, is trimmed at start-up.
        self.timers
            .insert(TimerKey::Archive, (Instant::now(), Command::ArchiveDue));

        let mut watchdog_usec = 0u64;
        let watchdog_enabled = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
        let period = if watchdog_enabled && watchdog_usec > 0 {
            Duration::from_micros(watchdog_usec / 2)
        } else {
            Duration::from_secs(3600)
        };
        let mut watchdog = tokio::time::interval(period);
        let mut retry_storage = tokio::time::interval(Duration::from_secs(5));

        loop {
            let next_timer = self.timers.values().map(|(at, _)| *at).min();
            let first = tokio::select! {
                req = rx.recv() => match req {
                    Some(req) => Some(req),
                    None => break,
                },
                _ = sleep_until_opt(next_timer) => None,
                _ = watchdog.tick() => {
                    if watchdog_enabled {
                        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                    }
                    continue;
                }
                _ = retry_storage.tick() => {
                    self.probe_storage();
                    continue;
                }
            };
            let mut batch: Vec<Request> = Vec::new();
            batch.extend(self.due_timers());
            if let Some(first) = first {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(req) => batch.push(req),
                        Err(_) => break,
                    }
                }
            }
            if self.process(batch) {
                break;
            }
        }
        log::info!("writer stopped at seq {}", self.state.seq());
    }

    fn due_timers(&mut self) -> Vec<Request> {
        let now = Instant::now();
        let due: Vec<TimerKey> = self
            .timers
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| *k)
            .collect();
        let mut commands: Vec<Command> = due
            .iter()
            .filter_map(|k| self.timers.remove(k))
            .map(|(_, command)| command)
            .collect();
        if due.contains(&TimerKey::Archive) {
            // The oldest events are packed (see `store::event_log`) a step
            // at a time between batches; while more are due, the pass comes
            // back within a second instead of an hour.
            let more = match self.store.pack_events(PACKS_PER_STEP) {
                Ok(more) => more,
                Err(e) => {
                    log::warn!("packing old events: {e}");
                    false
                }
            };
            // Periodic: armed again for the next pass.
            let again = if more { PACK_AGAIN } else { ARCHIVE_EVERY };
            self.timers
                .insert(TimerKey::Archive, (now + again, Command::ArchiveDue));
        }
        commands
            .drain(..)
            .map(|command| Request::Command {
                actor: Actor::System,
                command,
                reply: None,
            })
            .collect()
    }

    /// Applies `events` as `actor`'s at `now`, noting in `b` what they
    /// touched (with its value before the batch, for an undo) and what an
    /// `Archived` event moves to the archive. Returns the last seq.
    fn push_events(
        &mut self,
        b: &mut Pending,
        events: Vec<crate::domain::Event>,
        actor: &Actor,
        now: Now,
    ) -> u64 {
        let mut last_seq = self.state.seq();
        for event in events {
            let keys = self.state.touched(&event);
            for key in &keys {
                if b.touched.insert(key.clone()) {
                    b.saved.push((key.clone(), self.state.record(key)));
                }
            }
            if let Some((records, full)) = crate::domain::archive::moved_out(&self.state, &event) {
                b.archived.extend(records);
                b.archive_full |= full;
            }
            b.touched_by_event.push(keys);
            last_seq += 1;
            let record = EventRecord {
                seq: last_seq,
                at: now.ms,
                actor: actor.clone(),
                event,
            };
            self.state.apply(&record);
            b.log.push(record);
        }
        last_seq
    }

    /// What a command about archived history needs from the store before
    /// `decide`: a past date's bookings or a customer's archived history
    /// (filled into the command), or the events that restore an archived
    /// visit or receipts first (`archive::restore_for` says which).
    fn read_archive_for(
        &self,
        command: &mut Command,
        now: Now,
    ) -> Result<Vec<crate::domain::Event>, DomainError> {
        let logged = |e: crate::store::StoreError| log::error!("reading the archive: {e}");
        match command {
            Command::VisitRefund(_) | Command::VisitRetip(_) | Command::SaleRefund(_) => {
                crate::domain::archive::restore_for(&self.state, command, &self.store.archive())
            }
            Command::CustomerHistory(h) => {
                let archive = self.store.archive();
                if let Some(c) = self.state.customers.get(&h.customer_id) {
                    for id in c
                        .visit_ids
                        .iter()
                        .filter(|v| !self.state.visits.contains_key(v))
                    {
                        match archive.visit(*id) {
                            Ok(v) => h.archived_visits.extend(v),
                            Err(e) => logged(e),
                        }
                    }
                    let gone: Vec<Id> = c
                        .booking_ids
                        .iter()
                        .filter(|b| !self.state.bookings.contains_key(b))
                        .copied()
                        .collect();
                    if !gone.is_empty() {
                        match archive.bookings_with(&gone) {
                            Ok(list) => h.archived_bookings = list,
                            Err(e) => logged(e),
                        }
                    }
                }
                Ok(Vec::new())
            }
            Command::BookingList(l) => {
                let date = l
                    .date
                    .as_deref()
                    .and_then(|t| crate::domain::book::time::parse_date("date", t).ok());
                if let Some(date) =
                    date.filter(|d| *d < crate::domain::archive::cutoff_day(now.day))
                {
                    match self.store.archive().bookings_on(date) {
                        Ok(list) => l.archived = list,
                        Err(e) => logged(e),
                    }
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Handles one batch; returns true when asked to stop.
    fn process(&mut self, batch: Vec<Request>) -> bool {
        let mut stop = false;
        let mut reads: Vec<ReadFn> = Vec::new();
        let mut replies: Vec<(Option<Reply>, Result<Value, DomainError>, bool)> = Vec::new();
        let mut b = Pending::default();
        let mut last_now = self.clock.now();

        for request in batch {
            match request {
                Request::Stop => stop = true,
                Request::Read(f) => reads.push(f),
                Request::Command {
                    actor,
                    mut command,
                    reply,
                } => {
                    let now = self.clock.now();
                    last_now = now;
                    // An archived visit or receipts come back (by events)
                    // before a command about them is decided; taken back
                    // out if it is refused.
                    let restore = match self.read_archive_for(&mut command, now) {
                        Ok(events) => events,
                        Err(err) => {
                            log::error!(command = command.name(); "{} not decided: {err}", command.name());
                            replies.push((reply, Err(err), false));
                            continue;
                        }
                    };
                    let restored = (!restore.is_empty()).then(|| {
                        let keys: Vec<RecordKey> =
                            restore.iter().flat_map(|e| self.state.touched(e)).collect();
                        let undo = (
                            b.log.len(),
                            b.touched_by_event.len(),
                            self.state.counters.clone(),
                        );
                        self.push_events(&mut b, restore, &actor, now);
                        (keys, undo)
                    });
                    match decide(&self.state, &actor, &command, now, &self.rules) {
                        Ok(decided) => {
                            let produced = !decided.events.is_empty() || restored.is_some();
                            let last_seq = self.push_events(&mut b, decided.events, &actor, now);
                            let viewer = crate::domain::views::Viewer::of(&actor);
                            let mut data = decided.reply.render_for(viewer, &self.state, now);
                            if let Value::Object(map) = &mut data {
                                // The seq of the command's own last event; only a
                                // replayed checkout (no event) keeps its original seq.
                                let missing = map.get("seq").is_none_or(Value::is_null);
                                if produced || (missing && !command.is_read_only()) {
                                    map.insert("seq".into(), json!(last_seq));
                                }
                            }
                            if actor != Actor::System {
                                log::info!(command = command.name(), seq = last_seq; "{} ok", command.name());
                            }
                            replies.push((reply, Ok(data), true));
                        }
                        Err(err) => {
                            if let Some((keys, (log_len, events_len, counters))) = restored {
                                for key in &keys {
                                    self.state.put_record(key, None);
                                }
                                self.state.counters = counters;
                                b.log.truncate(log_len);
                                b.touched_by_event.truncate(events_len);
                            }
                            if actor != Actor::System {
                                log::debug!(command = command.name(); "{} refused: {err}", command.name());
                            }
                            replies.push((reply, Err(err), false));
                        }
                    }
                }
            }
        }
        let Pending {
            mut log,
            mut touched_by_event,
            saved,
            touched,
            archived,
            archive_full,
        } = b;
        if archive_full {
            // More is due: come back at once rather than in an hour.
            self.timers
                .insert(TimerKey::Archive, (Instant::now(), Command::ArchiveDue));
        }

        if !log.is_empty() {
            let records: Vec<(RecordKey, Option<Record>)> = touched
                .iter()
                .map(|k| (k.clone(), self.state.record(k)))
                .collect();
            let started = std::time::Instant::now();
            let result = self
                .store
                .commit_sealed(&log, &records, &archived, Some(&self.state));
            let flush_us = started.elapsed().as_micros() as u64;
            use std::sync::atomic::Ordering::Relaxed;
            self.health.flush_latency.observe_us(flush_us);
            self.health.batches.fetch_add(1, Relaxed);
            match result {
                Ok(()) => {
                    // A forget is committed (the state and records are
                    // blank): now its keys go, and every sealed copy with them.
                    for record in &log {
                        if let crate::domain::Event::CustomerForgotten { key_ids, .. } =
                            &record.event
                        {
                            if let Err(e) = self.store.keys().destroy(key_ids) {
                                log::error!("destroying a forgotten customer's keys: {e} (retried at the next start)");
                            }
                        }
                    }
                    self.health.seq.store(self.state.seq(), Relaxed);
                    self.set_storage_failing(false);
                    for record in &log {
                        self.clock.note_event(record.at);
                        if let crate::domain::Event::ClockSet { to_ms, .. } = record.event {
                            let offset = self.clock.set_forward(to_ms);
                            log::warn!("the floor's time was set forward by an admin ({} s ahead of the system clock) until NTP synchronises", offset / 1000);
                        }
                    }
                }
                Err(err) => {
                    log::error!("storage failed, {} commands refused: {err}", log.len());
                    for (key, record) in saved.into_iter().rev() {
                        self.state.put_record(&key, record);
                    }
                    for (_, result, changed) in replies.iter_mut() {
                        if *changed {
                            *result = Err(unavailable());
                        }
                    }
                    log.clear();
                    touched_by_event.clear();
                    self.set_storage_failing(true);
                }
            }
        }
        self.health
            .commands
            .fetch_add(replies.len() as u64, std::sync::atomic::Ordering::Relaxed);

        // Durable (or refused): now the replies, then the subscribers. (A
        // connection drains the ring before it reads its next command, so a
        // client sending command after command still gets its events.)
        for (reply, result, _) in replies {
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        }
        if !log.is_empty() {
            let batch = Committed {
                state: &self.state,
                events: &log,
                touched: &touched_by_event,
                now: last_now,
            };
            for s in self.subscribers.iter_mut() {
                s.committed(&batch);
            }
            self.schedule(touched.iter(), last_now);
        }
        for read in reads {
            read(&self.state, last_now);
        }
        stop
    }

    fn set_storage_failing(&mut self, failing: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let was = self.health.storage_failing.swap(failing, Relaxed);
        if was != failing {
            if !failing {
                log::warn!("storage recovered");
                // Timers that fired while the disk failed were lost with their batch.
                let keys: Vec<RecordKey> = self
                    .state
                    .rooms
                    .keys()
                    .map(|id| RecordKey::Room(*id))
                    .chain(self.state.visits.keys().map(|id| RecordKey::Visit(*id)))
                    .chain(self.state.bookings.keys().map(|id| RecordKey::Booking(*id)))
                    .collect();
                let now = self.clock.now();
                self.schedule(keys.iter(), now);
            }
            for s in self.subscribers.iter_mut() {
                s.storage_failing(failing);
            }
        }
    }

    /// While storage is failing, try a flush now and then so the hub
    /// recovers by itself when the disk does.
    fn probe_storage(&mut self) {
        if !self
            .health
            .storage_failing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let counters = [(RecordKey::Counters, self.state.record(&RecordKey::Counters))];
        if self.store.commit(&[], &counters).is_ok() {
            self.set_storage_failing(false);
            return;
        }
        // After an I/O error sled refuses everything until it is reopened.
        match self.store.reopen() {
            Ok(()) if self.store.commit(&[], &counters).is_ok() => self.set_storage_failing(false),
            Ok(()) => {}
            Err(e) => log::warn!("storage still failing: {e}"),
        }
    }

    /// (Re)sets the timers of the rooms and visits in `keys`.
    fn schedule<'a>(&mut self, keys: impl Iterator<Item = &'a RecordKey>, now: Now) {
        let base = Instant::now();
        for key in keys {
            match key {
                RecordKey::Room(id) => {
                    let timer = self.state.rooms.get(id).and_then(|room| {
                        let until = room.cleaning_until?;
                        (room.status == RoomStatus::Cleaning).then(|| {
                            // Clamp: never longer than the cleanup, never negative.
                            let left = until
                                .saturating_sub(now.ms)
                                .clamp(0, room.cleaning_ms.max(0));
                            (
                                base + Duration::from_millis(left as u64),
                                Command::CleanupElapsed { room_id: *id },
                            )
                        })
                    });
                    match timer {
                        Some(t) => self.timers.insert(TimerKey::Cleanup(*id), t),
                        None => self.timers.remove(&TimerKey::Cleanup(*id)),
                    };
                }
                RecordKey::Visit(id) => {
                    let timer = self.state.visits.get(id).and_then(|v| {
                        let end = v.planned_end?;
                        let started = v.started_at?;
                        (v.state == VisitState::InService && !v.overtime).then(|| {
                            let left = remaining(end, now.ms, end.saturating_sub(started));
                            (
                                base + left,
                                Command::OvertimeReached {
                                    visit_id: *id,
                                    planned_end: end,
                                },
                            )
                        })
                    });
                    match timer {
                        Some(t) => self.timers.insert(TimerKey::Overtime(*id), t),
                        None => self.timers.remove(&TimerKey::Overtime(*id)),
                    };
                }
                RecordKey::Booking(id) => {
                    let timer = self
                        .state
                        .bookings
                        .get(id)
                        .and_then(|b| booking_timer(&self.state, b, now.ms, &self.rules));
                    match timer {
                        Some((at_ms, length_ms, command)) => {
                            let left = remaining(at_ms, now.ms, length_ms);
                            self.timers
                                .insert(TimerKey::Booking(*id), (base + left, command))
                        }
                        None => self.timers.remove(&TimerKey::Booking(*id)),
                    };
                }
                _ => {}
            }
        }
    }
}

/// A booking's next timer: its no-show at start + grace while booked, or,
/// checked in with its visit waiting, the due alert at its start. With the
/// wall-clock moment, the longest it may take (for the clamp), the command.
fn booking_timer(
    state: &State,
    b: &crate::domain::book::Booking,
    now_ms: i64,
    rules: &Rules,
) -> Option<(i64, i64, Command)> {
    let grace = i64::from(rules.no_show_grace_min) * 60_000;
    match b.state {
        BookingState::Booked => {
            let at = b.start_ms.saturating_add(grace);
            Some((
                at,
                at.saturating_sub(b.created_at.min(now_ms)).max(grace),
                Command::NoShowDue {
                    booking_id: b.id,
                    start_ms: b.start_ms,
                },
            ))
        }
        BookingState::CheckedIn if !b.late_alerted => {
            let waiting = b
                .visit_id
                .and_then(|v| state.visits.get(&v))
                .is_some_and(|v| v.state == VisitState::Waiting);
            waiting.then(|| {
                (
                    b.start_ms,
                    b.start_ms.saturating_sub(b.state_since.min(now_ms)).max(0),
                    Command::BookingDue { booking_id: b.id },
                )
            })
        }
        _ => None,
    }
}

/// Time left until the wall-clock moment `until`, clamped to `[0, length]`:
/// a wall clock that jumped forward ends the wait now, one that jumped back
/// can never stretch it beyond its own length.
pub fn remaining(until_ms: i64, now_ms: i64, length_ms: i64) -> Duration {
    let left = until_ms.saturating_sub(now_ms).clamp(0, length_ms.max(0));
    Duration::from_millis(left as u64)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
