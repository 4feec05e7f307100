//! The fan-out: turns each committed batch into Socket.IO frames, one per
//! distinct role view, serialised once and shared by every connection that
//! may see it (`Utf8Bytes` is reference-counted), and publishes them on a
//! broadcast ring. A connection that falls too far behind the ring is a slow
//! client and is dropped by its own task; nobody else waits for it.
//!
//! Every event carries `seq`. So that each client's `seq` stays gap-free
//! even though roles see different things, an event that has nothing for a
//! client is announced to it with a tiny shared frame `42["seq",{"seq":N}]`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::domain::event::Event;
use crate::domain::state::{RecordKey, State, VisitState};
use crate::domain::views::{self, Viewer};
use crate::domain::{book, rotation, Id, Now, Role};
use crate::writer::{Committed, Subscriber};

use super::socketio;

/// Who a frame is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Admins and cashiers.
    Office,
    /// Office and every therapist.
    Staff,
    /// Every therapist.
    Therapists,
    /// One therapist.
    Therapist(Id),
    /// Every therapist but these.
    TherapistsExcept(Vec<Id>),
    Monitors,
    /// The customer of one visit.
    Customer(Id),
    /// The customer of one booking (through its link, before check-in).
    BookingCustomer(Id),
    /// Admins only.
    Admins,
    /// One staff member (e.g. a cashier and their own drawer).
    StaffMember(Id),
}

impl Audience {
    /// Whether a client with this view, role and staff id gets the frame.
    pub fn includes(&self, viewer: Viewer, role: Role, staff_id: Option<Id>) -> bool {
        match (self, viewer) {
            (Audience::Admins, _) => role == Role::Admin,
            (Audience::StaffMember(id), _) => staff_id == Some(*id),
            (Audience::Office | Audience::Staff, Viewer::Office) => true,
            (Audience::Staff | Audience::Therapists, Viewer::Therapist(_)) => true,
            (Audience::Therapist(id), Viewer::Therapist(me)) => *id == me,
            (Audience::TherapistsExcept(ids), Viewer::Therapist(me)) => !ids.contains(&me),
            (Audience::Monitors, Viewer::Monitor) => true,
            (Audience::Customer(id), Viewer::Customer(mine)) => *id == mine,
            (Audience::BookingCustomer(id), Viewer::BookingCustomer(mine)) => *id == mine,
            _ => false,
        }
    }
}

/// A credential that stopped being valid: its live connections must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    Session(String),
    Staff(Id),
    Device(Id),
}

/// One committed event as the connections receive it.
#[derive(Debug, Clone)]
pub struct OutEvent {
    pub seq: u64,
    pub frames: Vec<(Audience, Utf8Bytes)>,
    /// `42["seq",{"seq":N}]` for clients with no frame in this event.
    pub marker: Utf8Bytes,
}

impl OutEvent {
    /// The frames of this event that a client with this view, role and
    /// staff id receives, each once: the same frame may reach a client
    /// through two audiences (an admin who owns a drawer).
    pub fn frames_for(
        &self,
        viewer: Viewer,
        role: Role,
        staff_id: Option<Id>,
    ) -> impl Iterator<Item = &Utf8Bytes> + '_ {
        let mine = move |audience: &Audience| audience.includes(viewer, role, staff_id);
        self.frames
            .iter()
            .enumerate()
            .filter(move |(index, (audience, frame))| {
                mine(audience)
                    && !self.frames[..*index]
                        .iter()
                        .any(|(earlier, same)| same == frame && mine(earlier))
            })
            .map(|(_, (_, frame))| frame)
    }
}

/// One batch as published on the ring.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub events: Vec<OutEvent>,
    pub revoked: Vec<Revoked>,
    /// When the batch was committed (for the delivery-latency histogram).
    pub committed_at: Instant,
    /// Its place on the ring (1, 2, …), set when it is published.
    pub number: u64,
}

impl Broadcast {
    pub fn last_seq(&self) -> u64 {
        self.events.last().map(|e| e.seq).unwrap_or(0)
    }
}

/// The broadcast ring with a count of the batches published on it, so a
/// connection can tell how far behind it is with one atomic load (the
/// channel's own `len()` takes the ring's lock, 500 times per event).
#[derive(Debug, Clone)]
pub struct Ring {
    sender: broadcast::Sender<Arc<Broadcast>>,
    published: Arc<AtomicU64>,
}

impl Ring {
    /// A ring holding up to `capacity` batches (rounded up to a power of two).
    pub fn new(capacity: usize) -> Ring {
        let (sender, _) = broadcast::channel(capacity);
        Ring {
            sender,
            published: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Broadcast>> {
        self.sender.subscribe()
    }

    /// Numbers the batch and sends it to every subscriber.
    pub fn publish(&self, mut batch: Broadcast) {
        batch.number = self.published.fetch_add(1, Relaxed) + 1;
        // No receivers is fine: nobody is connected.
        let _ = self.sender.send(Arc::new(batch));
    }

    /// How many batches were published after `batch`.
    pub fn published_after(&self, batch: &Broadcast) -> u64 {
        self.published.load(Relaxed).saturating_sub(batch.number)
    }
}

fn frame(name: &str, payload: &Value) -> Utf8Bytes {
    let json = payload.to_string();
    Utf8Bytes::from(socketio::encode_event_frame(name, &json))
}

fn with_seq(seq: u64, key: &str, value: Value) -> Value {
    json!({ "seq": seq, key: value })
}

/// The writer-side half: renders frames on the writer's thread and hands
/// the batch to a task on the async runtime, which publishes it on the ring.
///
/// Publishing wakes every connection. Done from the writer's own thread,
/// each of those 500 wake-ups is a push onto the runtime's shared queue
/// under its lock; done from a runtime thread they go to that worker's own
/// queue, and the other worker steals half. One hand-off instead of 500.
pub struct Fanout {
    publish: tokio::sync::mpsc::UnboundedSender<Broadcast>,
}

impl Fanout {
    /// Starts the publishing task; call from within the async runtime.
    pub fn spawn(ring: Ring) -> Self {
        let (publish, mut batches) = tokio::sync::mpsc::unbounded_channel::<Broadcast>();
        tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                ring.publish(batch);
            }
        });
        Fanout { publish }
    }
}

impl Subscriber for Fanout {
    fn committed(&mut self, batch: &Committed<'_>) {
        let out = render(batch.state, batch.events, batch.touched, batch.now);
        // Fails only once the runtime is gone (shutdown): nobody to tell.
        let _ = self.publish.send(out);
    }
}

/// Events that move history in or out of memory: nobody is told.
fn quiet(event: &Event) -> bool {
    matches!(
        event,
        Event::Archived { .. }
            | Event::VisitRestored { .. }
            | Event::ReceiptsArchived { .. }
            | Event::ReceiptsRestored { .. }
    )
}

/// Renders a batch (pure apart from the clock stamp; used by tests too).
pub fn render(
    state: &State,
    events: &[crate::domain::EventRecord],
    touched: &[Vec<RecordKey>],
    now: Now,
) -> Broadcast {
    let committed_at = Instant::now();
    let mut revoked = Vec::new();
    let mut out = Vec::with_capacity(events.len());
    // The queue is rendered once per batch, with the last event that moved it.
    let last_queue_event = events.iter().zip(touched).rposition(|(record, keys)| {
        !quiet(&record.event)
            && keys
                .iter()
                .any(|k| matches!(k, RecordKey::Visit(_) | RecordKey::Staff(_)))
    });
    for (index, (record, keys)) in events.iter().zip(touched).enumerate() {
        let seq = record.seq;
        let mut frames: Vec<(Audience, Utf8Bytes)> = Vec::new();
        // Archiving and restoring change what is in memory, not the floor.
        let keys: &[RecordKey] = if quiet(&record.event) { &[] } else { keys };
        let mut rotation_sent = false;
        for key in keys {
            match key {
                RecordKey::Room(id) => room_frames(state, *id, seq, now, &mut frames),
                RecordKey::Staff(id) => {
                    staff_frames(state, *id, seq, now, &mut frames, &mut rotation_sent)
                }
                RecordKey::Visit(id) => visit_frames(state, *id, seq, &mut frames),
                // An edit shows in the visit's history.
                RecordKey::VisitEdits(id) => {
                    if !keys.contains(&RecordKey::Visit(*id)) {
                        visit_frames(state, *id, seq, &mut frames)
                    }
                }
                RecordKey::Customer(id) => {
                    let customer = match state.customers.get(id) {
                        Some(c) => crate::domain::customers::view(c),
                        // Merged into another record.
                        None => json!({ "id": id, "removed": true }),
                    };
                    frames.push((
                        Audience::Office,
                        frame("customer.updated", &with_seq(seq, "customer", customer)),
                    ));
                }
                RecordKey::Device(id) => {
                    if let Some(d) = state.devices.get(id) {
                        frames.push((
                            Audience::Office,
                            frame("device.updated", &with_seq(seq, "device", views::device(d))),
                        ));
                    }
                }
                // A tax rate is shown as part of its service.
                RecordKey::Service(id) | RecordKey::ServiceTax(id) => {
                    if let Some(s) = state.services.get(id) {
                        frames.push((
                            Audience::Staff,
                            frame(
                                "service.updated",
                                &with_seq(seq, "service", views::service_of(state, s)),
                            ),
                        ));
                    }
                }
                RecordKey::Drawer(id) => {
                    if let Some(d) = state.drawers.get(id) {
                        let payload =
                            frame("drawer.updated", &with_seq(seq, "drawer", views::drawer(d)));
                        frames.push((Audience::Admins, payload.clone()));
                        if let Some(owner) = d.owner {
                            frames.push((Audience::StaffMember(owner), payload));
                        }
                    }
                }
                RecordKey::Booking(id) => booking_frames(state, *id, seq, now, &mut frames),
                RecordKey::Shift(therapist, date) => {
                    let shift = match state.shift(*therapist, *date) {
                        Some(s) => book::views::shift(s),
                        None => json!({
                            "therapist_id": therapist,
                            "date": book::time::date_words(*date),
                            "off": true,
                        }),
                    };
                    frames.push((
                        Audience::Staff,
                        frame("shift.updated", &with_seq(seq, "shift", shift)),
                    ));
                }
                RecordKey::Block(id) => {
                    let block = match state.blocks.get(id) {
                        Some(b) => book::views::block(b),
                        None => json!({ "id": id, "removed": true }),
                    };
                    frames.push((
                        Audience::Staff,
                        frame("block.updated", &with_seq(seq, "block", block)),
                    ));
                }
                RecordKey::Product(id) => {
                    if let Some(p) = state.till.products.get(id) {
                        frames.push((
                            Audience::Staff,
                            frame(
                                "product.updated",
                                &with_seq(seq, "product", views::product(p)),
                            ),
                        ));
                    }
                }
                // Receipts carry payments: the office only (a customer
                // sees their visit's totals in `visit.updated`).
                RecordKey::Receipt(id) => {
                    if let Some(r) = state.till.receipts.get(id) {
                        frames.push((
                            Audience::Office,
                            frame(
                                "receipt.updated",
                                &with_seq(seq, "receipt", views::receipt_of(state, r)),
                            ),
                        ));
                    }
                }
                // Gift cards are told to nobody (a balance is asked for
                // with the code); the counter is internal.
                RecordKey::Giftcard(_) | RecordKey::ReceiptCounter => {}
                RecordKey::Session(_) | RecordKey::Counters => {}
            }
        }
        if Some(index) == last_queue_event {
            queue_frames(state, seq, now, &mut frames);
        }
        match &record.event {
            Event::VisitOvertime { visit_id } => {
                if let Some(v) = state.visits.get(visit_id) {
                    let room = v.room.and_then(|r| state.rooms.get(&r));
                    let message = format!(
                        "{} in {} is past its planned end",
                        v.number,
                        room.map(|r| r.name.as_str()).unwrap_or("a room")
                    );
                    let alert = json!({
                        "seq": seq,
                        "kind": "overtime",
                        "room_id": v.room,
                        "visit_id": v.id,
                        "message": message,
                    });
                    frames.push((Audience::Staff, frame("alert", &alert)));
                }
            }
            Event::BookingLate {
                booking_id,
                message,
            } => {
                let b = state.bookings.get(booking_id);
                let alert = json!({
                    "seq": seq,
                    "kind": "booking_late",
                    "booking_id": booking_id,
                    "visit_id": b.and_then(|b| b.visit_id),
                    "room_id": b.map(|b| b.room_id),
                    "message": message,
                });
                frames.push((Audience::Office, frame("alert", &alert)));
                if let Some(b) = b {
                    frames.push((Audience::Therapist(b.therapist_id), frame("alert", &alert)));
                }
            }
            Event::SessionClosed { token_hash } => {
                revoked.push(Revoked::Session(token_hash.clone()))
            }
            Event::StaffDeactivated { staff_id } => revoked.push(Revoked::Staff(*staff_id)),
            Event::StaffUpdated {
                staff_id,
                pin_hash,
                role,
                ..
            } if pin_hash.is_some() || role.is_some() => revoked.push(Revoked::Staff(*staff_id)),
            Event::DeviceRevoked { device_id } => revoked.push(Revoked::Device(*device_id)),
            _ => {}
        }
        out.push(OutEvent {
            seq,
            frames,
            marker: frame("seq", &json!({ "seq": seq })),
        });
    }
    Broadcast {
        events: out,
        revoked,
        committed_at,
        number: 0,
    }
}

fn room_frames(state: &State, id: Id, seq: u64, now: Now, frames: &mut Vec<(Audience, Utf8Bytes)>) {
    match state.rooms.get(&id) {
        Some(room) => {
            frames.push((
                Audience::Staff,
                frame(
                    "room.updated",
                    &with_seq(seq, "room", views::room_full(room, state, now.ms)),
                ),
            ));
            if let Some(v) = views::room_for(Viewer::Monitor, room, state, now.ms) {
                frames.push((
                    Audience::Monitors,
                    frame("room.updated", &with_seq(seq, "room", v)),
                ));
            }
        }
        None => {
            let gone = with_seq(seq, "room", json!({ "id": id, "removed": true }));
            frames.push((Audience::Staff, frame("room.updated", &gone)));
            frames.push((Audience::Monitors, frame("room.updated", &gone)));
        }
    }
}

fn staff_frames(
    state: &State,
    id: Id,
    seq: u64,
    now: Now,
    frames: &mut Vec<(Audience, Utf8Bytes)>,
    rotation_sent: &mut bool,
) {
    let Some(s) = state.staff.get(&id) else {
        return;
    };
    if s.role == Role::Therapist {
        let payload = json!({
            "seq": seq,
            "therapist": views::staff(s, now.day),
            "rotation": rotation::rotation(state, now.day),
        });
        frames.push((Audience::Staff, frame("therapist.updated", &payload)));
        if !*rotation_sent {
            *rotation_sent = true;
            let available = state
                .staff
                .values()
                .filter(|t| {
                    t.active
                        && t.role == Role::Therapist
                        && t.presence == crate::domain::state::Presence::Available
                })
                .count();
            frames.push((
                Audience::Monitors,
                frame(
                    "therapist.updated",
                    &json!({ "seq": seq, "therapists_available": available }),
                ),
            ));
        }
    } else {
        frames.push((
            Audience::Office,
            frame(
                "staff.updated",
                &with_seq(seq, "staff", views::staff(s, now.day)),
            ),
        ));
    }
}

fn visit_frames(state: &State, id: Id, seq: u64, frames: &mut Vec<(Audience, Utf8Bytes)>) {
    let Some(v) = state.visits.get(&id) else {
        return;
    };
    let put = |viewer: Viewer, to: Audience, frames: &mut Vec<(Audience, Utf8Bytes)>| {
        if let Some(view) = views::visit_in(viewer, v, state) {
            frames.push((to, frame("visit.updated", &with_seq(seq, "visit", view))));
        }
    };
    put(Viewer::Office, Audience::Office, frames);
    let mut own: BTreeSet<Id> = BTreeSet::new();
    own.extend(v.therapist);
    own.extend(v.requested_therapist);
    for t in &own {
        put(Viewer::Therapist(*t), Audience::Therapist(*t), frames);
    }
    // Any id that is neither assigned nor requested gets the redacted view.
    put(
        Viewer::Therapist(Id::MAX),
        Audience::TherapistsExcept(own.into_iter().collect()),
        frames,
    );
    put(Viewer::Monitor, Audience::Monitors, frames);
    put(Viewer::Customer(v.id), Audience::Customer(v.id), frames);
}

fn booking_frames(
    state: &State,
    id: Id,
    seq: u64,
    now: Now,
    frames: &mut Vec<(Audience, Utf8Bytes)>,
) {
    let Some(b) = state.bookings.get(&id) else {
        return;
    };
    let mut put = |viewer: Viewer, to: Audience| {
        if let Some(view) = book::views::booking_for(viewer, b, state, now) {
            frames.push((
                to,
                frame("booking.updated", &with_seq(seq, "booking", view)),
            ));
        }
    };
    put(Viewer::Office, Audience::Office);
    put(
        Viewer::Therapist(b.therapist_id),
        Audience::Therapist(b.therapist_id),
    );
    put(
        Viewer::Therapist(Id::MAX),
        Audience::TherapistsExcept(vec![b.therapist_id]),
    );
    put(Viewer::Monitor, Audience::Monitors);
    put(
        Viewer::BookingCustomer(b.id),
        Audience::BookingCustomer(b.id),
    );
    if let Some(v) = b.visit_id {
        put(Viewer::Customer(v), Audience::Customer(v));
    }
}

fn queue_frames(state: &State, seq: u64, now: Now, frames: &mut Vec<(Audience, Utf8Bytes)>) {
    let entries = views::queue(state, now);
    for (viewer, to) in [
        (Viewer::Office, Audience::Office),
        (Viewer::Therapist(Id::MAX), Audience::Therapists),
        (Viewer::Monitor, Audience::Monitors),
    ] {
        let q = views::queue_for(viewer, state, &entries);
        frames.push((to, frame("queue.updated", &with_seq(seq, "queue", q))));
    }
    // Each customer still on the floor gets only their own line.
    for v in state.visits.values() {
        if matches!(v.state, VisitState::Waiting | VisitState::Called) {
            let q = views::queue_for(Viewer::Customer(v.id), state, &entries);
            frames.push((
                Audience::Customer(v.id),
                frame("queue.updated", &with_seq(seq, "queue", q)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(frames: Vec<(Audience, &'static str)>) -> OutEvent {
        OutEvent {
            seq: 1,
            frames: frames
                .into_iter()
                .map(|(to, text)| (to, Utf8Bytes::from_static(text)))
                .collect(),
            marker: Utf8Bytes::from_static("marker"),
        }
    }

    fn got(e: &OutEvent, viewer: Viewer, role: Role, staff: Option<Id>) -> Vec<&str> {
        e.frames_for(viewer, role, staff)
            .map(|f| f.as_str())
            .collect()
    }

    #[test]
    fn a_frame_reaching_a_client_through_two_audiences_is_sent_once() {
        let drawer = event(vec![
            (Audience::Admins, "drawer"),
            (Audience::StaffMember(4), "drawer"),
            (Audience::Office, "other"),
        ]);
        // An admin who owns the drawer: once, then the office frame.
        assert_eq!(
            got(&drawer, Viewer::Office, Role::Admin, Some(4)),
            ["drawer", "other"]
        );
        // The cashier who owns it; another cashier gets only the office frame.
        assert_eq!(
            got(&drawer, Viewer::Office, Role::Cashier, Some(4)),
            ["drawer", "other"]
        );
        assert_eq!(
            got(&drawer, Viewer::Office, Role::Cashier, Some(5)),
            ["other"]
        );
        assert!(got(&drawer, Viewer::Monitor, Role::Monitor, None).is_empty());
    }

    #[test]
    fn equal_frames_for_other_audiences_do_not_hide_a_clients_own() {
        // The same bytes first for therapists, then for monitors: a monitor
        // must still get its copy.
        let e = event(vec![
            (Audience::Therapists, "same"),
            (Audience::Monitors, "same"),
        ]);
        assert_eq!(got(&e, Viewer::Monitor, Role::Monitor, None), ["same"]);
        assert_eq!(
            got(&e, Viewer::Therapist(3), Role::Therapist, Some(3)),
            ["same"]
        );
    }

    #[test]
    fn the_ring_counts_the_batches_published_after_one() {
        let ring = Ring::new(8);
        let mut rx = ring.subscribe();
        for _ in 0..3 {
            ring.publish(Broadcast {
                events: Vec::new(),
                revoked: Vec::new(),
                committed_at: Instant::now(),
                number: 0,
            });
        }
        let first = rx.try_recv().expect("first batch");
        assert_eq!(first.number, 1);
        assert_eq!(ring.published_after(&first), 2);
        let _ = rx.try_recv();
        let third = rx.try_recv().expect("third batch");
        assert_eq!(ring.published_after(&third), 0);
    }
}
