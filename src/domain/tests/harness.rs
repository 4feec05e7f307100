//! A small floor to drive the pure core the way the writer does: `decide`,
//! then `apply` each event with the next `seq`, and a few builders.
//!
//! Every applied event is checked on the way: `seq` is gap-free and
//! `State::touched` names every record the event changes. When a `Floor` is
//! dropped (and the test did not already fail) the state must equal a replay
//! of its whole log and a rebuild from its records.

use std::collections::BTreeMap;

use crate::domain::command::*;
use crate::domain::state::{
    Presence, Record, RecordKey, Room, RoomStatus, Service, Staff, Visit, VisitState,
};
use crate::domain::{
    decide, Actor, Command, DomainError, ErrorCode, Event, EventRecord, Id, Now, Role, Rules, State,
};

pub const MIN: i64 = 60_000;
/// 2026-11-26 08:00 UTC, a Thursday morning.
pub const T0: i64 = 1_795_680_000_000;
pub const DAY1: u32 = 20261126;

pub const ADMIN: Actor = Actor::AdminToken;

/// An accepted command: its events and the ack's data (without `seq`).
#[derive(Debug, Clone)]
pub struct Done {
    pub events: Vec<Event>,
    pub reply: serde_json::Value,
}

/// The floor under test.
pub struct Floor {
    pub state: State,
    pub now: Now,
    pub rules: Rules,
    /// Every committed event, in order.
    pub log: Vec<EventRecord>,
    /// Whether `apply` is checked against `touched` record by record.
    pub check_touched: bool,
    tokens: u64,
}

impl Default for Floor {
    fn default() -> Self {
        Floor::new()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check_replay();
            check_records_round_trip(&self.state);
        }
    }
}

/// Every record of a state, by key.
pub fn record_map(state: &State) -> BTreeMap<RecordKey, Record> {
    state.records().into_iter().collect()
}

/// A state rebuilt from `records()` through `put_record` equals the original.
pub fn check_records_round_trip(state: &State) {
    let mut rebuilt = State::default();
    for (key, record) in state.records() {
        rebuilt.put_record(&key, Some(record));
    }
    assert_eq!(&rebuilt, state, "a state rebuilt from its records differs");
}

/// Applies one record as the writer does, checking `seq` and `touched`.
pub fn apply_checked(state: &mut State, record: &EventRecord, check_touched: bool) {
    assert_eq!(
        record.seq,
        state.seq() + 1,
        "seq must grow by one per event"
    );
    if !check_touched {
        state.apply(record);
        assert_eq!(state.seq(), record.seq);
        return;
    }
    let touched = state.touched(&record.event);
    let before = record_map(state);
    state.apply(record);
    assert_eq!(state.seq(), record.seq);
    let after = record_map(state);
    for key in before.keys().chain(after.keys()) {
        if before.get(key) != after.get(key) {
            assert!(
                touched.contains(key),
                "{} changed {key:?}, which touched() does not name ({touched:?})",
                record.event.kind()
            );
        }
    }
}

impl Floor {
    pub fn new() -> Floor {
        Floor {
            state: State::default(),
            now: Now { ms: T0, day: DAY1 },
            rules: Rules {
                light_channels: vec![1, 2, 3],
                giftcard_key: Some(crate::domain::money::giftcode::CodeKey::new(&[7; 32])),
                ..Rules::default()
            },
            log: Vec::new(),
            check_touched: true,
            tokens: 0,
        }
    }

    /// Moves the clock on by whole minutes (same day).
    pub fn advance(&mut self, minutes: i64) {
        self.now.ms += minutes * MIN;
    }

    pub fn advance_ms(&mut self, ms: i64) {
        self.now.ms += ms;
    }

    /// The spa's local midnight passed: a new day (and an hour later).
    pub fn next_day(&mut self) {
        self.now.day += 1;
        self.now.ms += 60 * MIN;
    }

    /// A fresh token hash, as the shell would generate.
    pub fn token(&mut self) -> String {
        self.tokens += 1;
        format!("token-hash-{}", self.tokens)
    }

    /// Decides, then applies the events as the writer does and renders the
    /// ack's data from the state after them. A refusal must leave the state
    /// exactly as it was.
    pub fn try_run(&mut self, actor: &Actor, command: &Command) -> Result<Done, DomainError> {
        let before = self.state.clone();
        match decide(&self.state, actor, command, self.now, &self.rules) {
            Ok(decided) => {
                // Only a retry (checkout, booking) or a question is
                // answered without a new event.
                assert!(
                    !decided.events.is_empty()
                        || command.is_read_only()
                        || matches!(
                            command,
                            Command::VisitCheckout(_)
                                | Command::BookingCreate(_)
                                | Command::SaleCheckout(_)
                                | Command::GiftcardIssue(_)
                        ),
                    "{} was accepted without an event",
                    command.name()
                );
                for event in &decided.events {
                    let record = EventRecord {
                        seq: self.state.seq() + 1,
                        at: self.now.ms,
                        actor: actor.clone(),
                        event: event.clone(),
                    };
                    apply_checked(&mut self.state, &record, self.check_touched);
                    self.log.push(record);
                }
                Ok(Done {
                    reply: decided.reply.render(&self.state, self.now),
                    events: decided.events,
                })
            }
            Err(err) => {
                assert_eq!(self.state, before, "a refused command changed the state");
                Err(err)
            }
        }
    }

    /// Commits an event the shell makes itself (a visit restored from the
    /// archive), as the writer does.
    pub fn push(&mut self, actor: &Actor, event: Event) {
        let record = EventRecord {
            seq: self.state.seq() + 1,
            at: self.now.ms,
            actor: actor.clone(),
            event,
        };
        apply_checked(&mut self.state, &record, self.check_touched);
        self.log.push(record);
    }

    /// Runs a command that must be accepted.
    #[track_caller]
    pub fn run(&mut self, actor: &Actor, command: Command) -> Done {
        match self.try_run(actor, &command) {
            Ok(d) => d,
            Err(e) => panic!("{} by {actor:?} was refused: {e}", command.name()),
        }
    }

    /// Runs a command that must be refused with `code` and a message that
    /// contains every one of `words`; the state must not change.
    #[track_caller]
    pub fn refuse(
        &mut self,
        actor: &Actor,
        command: Command,
        code: ErrorCode,
        words: &[&str],
    ) -> DomainError {
        let before = self.state.clone();
        let seq = self.state.seq();
        let err = match self.try_run(actor, &command) {
            Ok(d) => panic!(
                "{} by {actor:?} was accepted ({:?}), expected {}",
                command.name(),
                d.events,
                code.as_str()
            ),
            Err(e) => e,
        };
        assert_eq!(err.code, code, "{} by {actor:?}: {err}", command.name());
        for word in words {
            assert!(
                err.message.contains(word),
                "{}: message `{}` does not mention `{word}`",
                command.name(),
                err.message
            );
        }
        assert_eq!(self.state, before);
        assert_eq!(self.state.seq(), seq);
        err
    }

    /// The state equals a replay of the whole log on an empty state.
    pub fn check_replay(&self) {
        let mut replayed = State::default();
        for record in &self.log {
            replayed.apply(record);
        }
        assert_eq!(replayed, self.state, "a replay of the log differs");
    }

    /// The events of the last accepted command(s) since `seq`.
    pub fn events_since(&self, seq: u64) -> Vec<&Event> {
        self.log
            .iter()
            .filter(|r| r.seq > seq)
            .map(|r| &r.event)
            .collect()
    }

    /// The id an accepted create command returned (the last created entity).
    fn last_id(&self) -> Id {
        self.state.counters.next_id - 1
    }

    // ---- views of the state ----

    pub fn room(&self, id: Id) -> &Room {
        &self.state.rooms[&id]
    }
    pub fn staff(&self, id: Id) -> &Staff {
        &self.state.staff[&id]
    }
    pub fn visit(&self, id: Id) -> &Visit {
        &self.state.visits[&id]
    }
    pub fn service(&self, id: Id) -> &Service {
        &self.state.services[&id]
    }
    pub fn presence(&self, id: Id) -> Presence {
        self.staff(id).presence
    }
    pub fn room_status(&self, id: Id) -> RoomStatus {
        self.room(id).status
    }
    pub fn visit_state(&self, id: Id) -> VisitState {
        self.visit(id).state
    }
    pub fn turns(&self, id: Id) -> f64 {
        self.staff(id).turns_on(self.now.day).as_f64()
    }

    /// The actor of a staff member (with their current role).
    pub fn as_staff(&self, id: Id) -> Actor {
        Actor::Staff {
            id,
            role: self.staff(id).role,
        }
    }

    // ---- builders ----

    pub fn add_room(&mut self, name: &str, capacity: u8) -> Id {
        self.run(&ADMIN, room_create(name, capacity, None));
        self.last_id()
    }

    pub fn add_service(&mut self, name: &str, duration_min: u32, cleanup_min: u32) -> Id {
        self.run(&ADMIN, service_create(name, duration_min, cleanup_min));
        self.last_id()
    }

    pub fn add_service_with(&mut self, create: ServiceCreate) -> Id {
        self.run(&ADMIN, Command::ServiceCreate(create));
        self.last_id()
    }

    pub fn add_staff(&mut self, name: &str, role: Role, skills: &[&str]) -> Id {
        self.run(&ADMIN, staff_create(name, role, skills));
        self.last_id()
    }

    /// A therapist, clocked in.
    pub fn add_therapist(&mut self, name: &str, skills: &[&str]) -> Id {
        let id = self.add_staff(name, Role::Therapist, skills);
        self.clock_in(id);
        id
    }

    pub fn add_device(&mut self, name: &str) -> Id {
        let token_hash = self.token();
        self.run(
            &ADMIN,
            Command::DevicePair(DevicePair {
                role: Role::Monitor,
                name: name.into(),
                token_hash,
            }),
        );
        self.last_id()
    }

    pub fn new_visit(&mut self, customer: &str, services: &[Id]) -> VisitCreate {
        VisitCreate {
            customer_id: None,
            customer_name: customer.into(),
            service_ids: services.to_vec(),
            requested_therapist_id: None,
            phone: None,
            notes: None,
            token_hash: self.token(),
        }
    }

    /// A customer record (name, phone, notes).
    pub fn add_customer(&mut self, name: &str, phone: &str, notes: &str) -> Id {
        self.run(
            &ADMIN,
            Command::decode(
                "customer.create",
                serde_json::json!({"name": name, "phone": phone, "notes": notes, "duplicate": true}),
            )
            .expect("decodes"),
        );
        self.last_id()
    }

    pub fn add_visit(&mut self, customer: &str, services: &[Id]) -> Id {
        let create = self.new_visit(customer, services);
        self.add_visit_with(create)
    }

    pub fn add_visit_with(&mut self, create: VisitCreate) -> Id {
        self.run(&ADMIN, Command::VisitCreate(create));
        self.last_id()
    }

    /// A visit asking for a therapist.
    pub fn add_request(&mut self, customer: &str, services: &[Id], therapist: Id) -> Id {
        let mut create = self.new_visit(customer, services);
        create.requested_therapist_id = Some(therapist);
        self.add_visit_with(create)
    }

    pub fn clock_in(&mut self, therapist: Id) {
        self.run(&ADMIN, clock_in(therapist));
    }

    /// Calls a visit (rotation and room picked by the core); returns
    /// (therapist, room).
    pub fn call(&mut self, visit: Id) -> (Id, Id) {
        self.run(&ADMIN, call_visit(visit));
        let v = self.visit(visit);
        (v.therapist.unwrap(), v.room.unwrap())
    }

    pub fn call_to(&mut self, visit: Id, therapist: Id, room: Id) {
        self.run(
            &ADMIN,
            Command::VisitCall(VisitCall {
                visit_id: Some(visit),
                therapist_id: Some(therapist),
                room_id: Some(room),
                override_reason: Some("test set-up".into()),
                count_turn: None,
            }),
        );
    }

    pub fn start(&mut self, visit: Id) {
        self.run(&ADMIN, Command::VisitStart(VisitRef { visit_id: visit }));
    }

    pub fn finish(&mut self, visit: Id) {
        self.run(&ADMIN, Command::VisitFinish(VisitRef { visit_id: visit }));
    }

    /// Called, started and finished now; returns (therapist, room).
    pub fn serve(&mut self, visit: Id) -> (Id, Id) {
        let placed = self.call(visit);
        self.start(visit);
        self.finish(visit);
        placed
    }

    /// Starts and finishes a called visit.
    pub fn serve_rest(&mut self, visit: Id) {
        self.start(visit);
        self.finish(visit);
    }

    /// Sets a room's status (admin).
    pub fn set_room(&mut self, room: Id, status: RoomStatus) {
        self.run(&ADMIN, set_status(room, status, Some("test")));
    }
}

// ---- command builders ----

pub fn room_create(name: &str, capacity: u8, light_channel: Option<u16>) -> Command {
    Command::RoomCreate(RoomCreate {
        name: name.into(),
        capacity,
        light_channel,
    })
}

pub fn room_update(room_id: Id) -> RoomUpdate {
    RoomUpdate {
        room_id,
        name: None,
        capacity: None,
        light_channel: None,
    }
}

pub fn set_status(room_id: Id, status: RoomStatus, reason: Option<&str>) -> Command {
    Command::RoomSetStatus(RoomSetStatus {
        room_id,
        status,
        reason: reason.map(Into::into),
    })
}

pub fn service_create(name: &str, duration_min: u32, cleanup_min: u32) -> Command {
    Command::ServiceCreate(new_service(name, duration_min, cleanup_min))
}

pub fn new_service(name: &str, duration_min: u32, cleanup_min: u32) -> ServiceCreate {
    ServiceCreate {
        name: name.into(),
        duration_min,
        cleanup_min,
        price_cents: 5_000,
        skill: None,
        turn_weight: 1.0,
        tax_rate_bp: 0,
    }
}

pub fn service_update(service_id: Id) -> ServiceUpdate {
    ServiceUpdate {
        service_id,
        name: None,
        duration_min: None,
        cleanup_min: None,
        price_cents: None,
        skill: None,
        turn_weight: None,
        tax_rate_bp: None,
    }
}

pub fn staff_create(name: &str, role: Role, skills: &[&str]) -> Command {
    Command::StaffCreate(StaffCreate {
        name: name.into(),
        role,
        pin: None,
        skills: skills.iter().map(|s| s.to_string()).collect(),
        pin_hash: format!("$argon2id$v=19$pin-of-{name}"),
    })
}

pub fn staff_update(staff_id: Id) -> StaffUpdate {
    StaffUpdate {
        staff_id,
        name: None,
        role: None,
        pin: None,
        skills: None,
        pin_hash: None,
    }
}

pub fn clock_in(therapist: Id) -> Command {
    Command::ClockIn(TherapistRef {
        therapist_id: Some(therapist),
    })
}
pub fn clock_out(therapist: Id) -> Command {
    Command::ClockOut(TherapistRef {
        therapist_id: Some(therapist),
    })
}
pub fn take_break(therapist: Id) -> Command {
    Command::Break(TherapistRef {
        therapist_id: Some(therapist),
    })
}
pub fn resume(therapist: Id) -> Command {
    Command::Resume(TherapistRef {
        therapist_id: Some(therapist),
    })
}

pub fn call_visit(visit: Id) -> Command {
    Command::VisitCall(VisitCall {
        visit_id: Some(visit),
        ..VisitCall::default()
    })
}

pub fn call_with(visit: Option<Id>, therapist: Option<Id>, room: Option<Id>) -> Command {
    Command::VisitCall(VisitCall {
        visit_id: visit,
        therapist_id: therapist,
        room_id: room,
        override_reason: None,
        count_turn: None,
    })
}

pub fn start(visit: Id) -> Command {
    Command::VisitStart(VisitRef { visit_id: visit })
}
pub fn finish(visit: Id) -> Command {
    Command::VisitFinish(VisitRef { visit_id: visit })
}
pub fn undo(visit: Id) -> Command {
    Command::VisitUndo(VisitRef { visit_id: visit })
}
pub fn extend(visit: Id, minutes: u32) -> Command {
    Command::VisitExtend(VisitExtend {
        visit_id: visit,
        minutes,
    })
}
pub fn leave(visit: Id, reason: &str) -> Command {
    Command::VisitLeave(VisitReason {
        visit_id: visit,
        reason: reason.into(),
        approval: None,
        approved_by: None,
    })
}
pub fn void(visit: Id, reason: &str) -> Command {
    Command::VisitVoid(VisitReason {
        visit_id: visit,
        reason: reason.into(),
        approval: None,
        approved_by: None,
    })
}

pub fn staff_actor(id: Id, role: Role) -> Actor {
    Actor::Staff { id, role }
}

/// xorshift64*, seeded: the random days' dice (book, books, customers and counter simulations).
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        // Never zero; mix the seed so seeds 1, 2, 3 differ at once.
        SeededRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> Option<T> {
        (!xs.is_empty()).then(|| xs[self.below(xs.len() as u64) as usize])
    }
}
