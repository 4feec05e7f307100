//! Visit rules after creation: call (with the rotation), start, extend,
//! finish, undo, leave, void.

use super::book;
use super::command::{VisitCall, VisitExtend, VisitReason};
use super::decide::{
    optional_reason, presence_words, reason_text, room_ref, therapist_ref, visit_ref, Decided,
    Reply,
};
use super::event::Event;
use super::rotation::{self, Turns};
use super::state::{Presence, Room, RoomStatus, Staff, State, Visit, VisitState};
use super::{conflict, forbidden, invalid, Actor, DomainError, Id, Now, Role, Rules};

const MINUTE_MS: i64 = 60_000;

/// A therapist may act only on visits assigned to them.
fn check_assigned(actor: &Actor, v: &Visit) -> Result<(), DomainError> {
    if let Actor::Staff {
        id,
        role: Role::Therapist,
    } = actor
    {
        if v.therapist != Some(*id) {
            return Err(forbidden(format!("{} is not your visit", v.number)));
        }
    }
    Ok(())
}

fn wrong_state(v: &Visit, action: &str) -> DomainError {
    conflict(format!(
        "{} is {} and cannot be {action}",
        v.number,
        v.state.as_str().replace('_', " ")
    ))
}

pub(super) fn room_has_space(room: &Room) -> bool {
    match room.status {
        RoomStatus::Available => true,
        RoomStatus::Held | RoomStatus::Occupied => {
            room.occupants.len() < usize::from(room.capacity)
        }
        _ => false,
    }
}

/// The free room `visit.call` picks: available, smallest that fits, longest
/// free, and (for a walk-in) not needed by the book before it would be done.
fn pick_room<'a>(state: &'a State, guard: &WalkIn) -> Option<&'a Room> {
    state
        .rooms
        .values()
        .filter(|r| r.status == RoomStatus::Available)
        .filter(|r| guard.room_clash(state, r.id).is_none())
        .min_by_key(|r| (r.capacity, r.status_since, r.id))
}

/// What keeps a walk-in out of the book: its length, cleanup and the
/// buffer, from now. A booked visit has its own time and is not guarded.
struct WalkIn {
    now: i64,
    minutes: u32,
    cleanup_min: u32,
    buffer_ms: i64,
    booked: bool,
}

impl WalkIn {
    fn for_visit(state: &State, v: &Visit, now: Now, rules: &Rules) -> WalkIn {
        WalkIn {
            now: now.ms,
            minutes: v.service_minutes,
            cleanup_min: v.cleanup_min,
            buffer_ms: i64::from(rules.booking_buffer_min) * MINUTE_MS,
            booked: state.booking_of_visit(v.id).is_some(),
        }
    }
    fn clash<'a>(
        &self,
        state: &'a State,
        therapist: Option<Id>,
        room: Option<Id>,
    ) -> Option<book::Clash<'a>> {
        if self.booked {
            return None;
        }
        let done = self.now + i64::from(self.minutes) * MINUTE_MS + self.buffer_ms;
        let room_done = done + i64::from(self.cleanup_min) * MINUTE_MS;
        book::walk_in_clash(state, therapist, room, self.now, done, room_done)
    }
    fn therapist_clash<'a>(&self, state: &'a State, t: Id) -> Option<book::Clash<'a>> {
        self.clash(state, Some(t), None)
    }
    fn room_clash<'a>(&self, state: &'a State, r: Id) -> Option<book::Clash<'a>> {
        self.clash(state, None, Some(r))
    }
}

fn is_available_therapist(t: &Staff) -> bool {
    t.active && t.role == Role::Therapist && t.presence == Presence::Available
}

pub fn call(
    state: &State,
    actor: &Actor,
    a: &VisitCall,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    // Which therapist the caller asked for (a therapist calls for themself).
    let asked_therapist = match (actor, a.therapist_id) {
        (
            Actor::Staff {
                id,
                role: Role::Therapist,
            },
            Some(t),
        ) if t != *id => {
            return Err(forbidden("a therapist may only call a visit for themself"));
        }
        (
            Actor::Staff {
                id,
                role: Role::Therapist,
            },
            _,
        ) => Some(*id),
        (_, t) => t,
    };
    if let Some(t) = asked_therapist {
        let t = therapist_ref(state, t, "therapist_id")?;
        if t.presence != Presence::Available {
            return Err(conflict(format!(
                "{} is {}",
                t.name,
                presence_words(t.presence)
            )));
        }
    }
    let override_reason = optional_reason(&a.override_reason)?;

    let v: &Visit = match a.visit_id {
        Some(id) => {
            let v = visit_ref(state, id)?;
            if v.state != VisitState::Waiting {
                return Err(wrong_state(v, "called"));
            }
            v
        }
        None => head_of_queue(state, asked_therapist, now, rules, a.room_id.is_some())?,
    };
    let guard = WalkIn::for_visit(state, v, now, rules);
    let booking = state.booking_of_visit(v.id);

    // The rotation's head among those the book leaves free for this walk-in;
    // the others keep their place and the ack says why they were passed.
    let mut skipped: Vec<(Id, String)> = Vec::new();
    let head = rotation::eligible(state, v, now.day)
        .into_iter()
        .find(|t| match guard.therapist_clash(state, t.id) {
            Some(c) => {
                skipped.push((
                    t.id,
                    format!("{} is booked: {}", t.name, book::clash_words(state, &c)),
                ));
                false
            }
            None => true,
        })
        .map(|t| t.id);
    let (therapist_id, is_request) = match (asked_therapist, v.requested_therapist) {
        (Some(t), Some(r)) => (t, t == r),
        (Some(t), None) => (t, false),
        (None, Some(r)) => {
            // The request was valid when the visit was made; a therapist
            // deactivated since is a state of the floor, not a bad argument.
            let Some(t) = state.staff.get(&r) else {
                return Err(conflict(format!(
                    "{} asked for a therapist who is no longer on the staff",
                    v.number
                )));
            };
            if !is_available_therapist(t) {
                let why = if t.active && t.role == Role::Therapist {
                    presence_words(t.presence)
                } else {
                    "no longer an active therapist"
                };
                return Err(conflict(format!(
                    "{} asked for {}, who is {why}",
                    v.number, t.name
                )));
            }
            (r, true)
        }
        (None, None) => match head {
            Some(t) => (t, false),
            None => {
                let no_room = a.room_id.is_none() && pick_room(state, &guard).is_none();
                return Err(conflict(missing_message(state, v, true, no_room)));
            }
        },
    };
    let t = therapist_ref(state, therapist_id, "therapist_id")?;
    if let Some(c) = guard.therapist_clash(state, t.id) {
        return Err(conflict(format!(
            "{} is booked: {}; {} ({} min) would not be done by then",
            t.name,
            book::clash_words(state, &c),
            v.number,
            v.service_minutes
        )));
    }
    let needed = rotation::skills_needed(state, v);
    if !rotation::has_skills(t, &needed) {
        return Err(conflict(format!(
            "{} does not have the skills {} needs ({})",
            t.name,
            v.number,
            needed.join(", ")
        )));
    }
    // Out of turn: neither the requested therapist nor, for a visit that
    // asked for nobody, the head of the rotation. Giving a visit that asked
    // for someone to somebody else overrides the request (DOMAIN.md: "a visit
    // with a requested therapist goes to that therapist").
    let in_turn = is_request || (v.requested_therapist.is_none() && head == Some(therapist_id));
    // A therapist calls for themself only what the rotation or a request
    // gives them; overriding either is the office's decision.
    if !in_turn && matches!(actor.role(), Some(Role::Therapist)) {
        return Err(forbidden(if v.requested_therapist.is_some() {
            format!(
                "{} was asked for by someone else; only a cashier or an admin may override a request",
                v.number
            )
        } else {
            "you are not next in the rotation; only a cashier or an admin may call out of turn"
                .to_string()
        }));
    }
    let override_reason = if in_turn {
        None
    } else {
        match override_reason {
            Some(r) => Some(r),
            None => {
                if let Some(r) = v.requested_therapist {
                    let asked = state
                        .staff
                        .get(&r)
                        .map(|s| s.name.clone())
                        .unwrap_or_else(|| format!("therapist {r}"));
                    return Err(conflict(format!(
                        "{} asked for {asked}; give an override_reason to call it for {}",
                        v.number, t.name
                    )));
                }
                let next = head
                    .and_then(|h| state.staff.get(&h))
                    .map(|h| h.name.clone())
                    .unwrap_or_else(|| "nobody".into());
                return Err(conflict(format!(
                    "{} is not next in the rotation ({next} is); give an override_reason to call out of turn",
                    t.name
                )));
            }
        }
    };

    // A booked visit goes to its booked room unless the caller names one.
    let room_id = a.room_id.or(booking.map(|b| b.room_id));
    let room = match room_id {
        Some(id) => {
            let r = room_ref(state, id)?;
            if !room_has_space(r) {
                return Err(conflict(format!(
                    "room {} is {} and has no space",
                    r.name,
                    r.status.as_str().replace('_', " ")
                )));
            }
            if let Some(c) = guard.room_clash(state, r.id) {
                return Err(conflict(format!(
                    "room {} is booked: {}; {} would not be done by then",
                    r.name,
                    book::clash_words(state, &c),
                    v.number
                )));
            }
            r
        }
        None => match pick_room(state, &guard) {
            Some(r) => r,
            None => return Err(conflict(missing_message(state, v, false, true))),
        },
    };

    let counts = match booking {
        Some(_) => a.count_turn.unwrap_or(rules.booking_counts_turn),
        None => a.count_turn.unwrap_or(false),
    };
    let turn = if is_request && !counts {
        Turns::ZERO
    } else {
        rotation::turn_weight(state, v)
    };
    Ok(Decided {
        events: vec![Event::VisitCalled {
            visit_id: v.id,
            therapist_id,
            room_id: room.id,
            turn,
            day: now.day,
            override_reason,
        }],
        reply: Reply::Called {
            visit_id: v.id,
            skipped,
        },
    })
}

fn missing_message(state: &State, v: &Visit, no_therapist: bool, no_room: bool) -> String {
    let skills = rotation::skills_needed(state, v);
    let therapist = if skills.is_empty() {
        "no therapist is available".to_string()
    } else {
        format!("no therapist with {} is available", skills.join(", "))
    };
    match (no_therapist, no_room) {
        (true, true) => format!("{therapist} and no room is free for {}", v.number),
        (true, false) => format!("{therapist} for {}", v.number),
        _ => format!("no room is free for {}", v.number),
    }
}

/// The first waiting visit that can be called now (for `therapist` if given):
/// a visit asking for someone busy waits for them and does not block the rest.
fn head_of_queue<'a>(
    state: &'a State,
    therapist: Option<Id>,
    now: Now,
    rules: &Rules,
    room_named: bool,
) -> Result<&'a Visit, DomainError> {
    // Checked-in bookings whose time has come go first, in booked order,
    // when their therapist and room are ready for them.
    let mut due: Vec<(&Visit, &book::Booking)> = state
        .waiting()
        .filter_map(|v| state.booking_of_visit(v.id).map(|b| (v, b)))
        .filter(|(_, b)| b.start_ms <= now.ms)
        .collect();
    due.sort_by_key(|(_, b)| (b.start_ms, b.id));
    for (v, b) in due {
        if therapist.is_some_and(|t| t != b.therapist_id) {
            continue;
        }
        let ready = state
            .staff
            .get(&b.therapist_id)
            .is_some_and(is_available_therapist)
            && (room_named || state.rooms.get(&b.room_id).is_some_and(room_has_space));
        if ready {
            return Ok(v);
        }
    }
    let mut any = false;
    for v in state.waiting() {
        any = true;
        // A booked visit waits for its time (or is called by name).
        if state.booking_of_visit(v.id).is_some() {
            continue;
        }
        let guard = WalkIn::for_visit(state, v, now, rules);
        match (v.requested_therapist, therapist) {
            (Some(r), Some(t)) if r != t => continue,
            (Some(r), None) => {
                if state.staff.get(&r).is_some_and(is_available_therapist) {
                    return Ok(v);
                }
            }
            (_, Some(t)) => {
                let needed = rotation::skills_needed(state, v);
                if state
                    .staff
                    .get(&t)
                    .is_some_and(|t| rotation::has_skills(t, &needed))
                {
                    return Ok(v);
                }
            }
            (None, None) => {
                let eligible = rotation::eligible(state, v, now.day);
                if eligible
                    .iter()
                    .any(|t| guard.therapist_clash(state, t.id).is_none())
                {
                    return Ok(v);
                }
                // A room the caller named is checked later, not "missing".
                let no_room = !room_named && pick_room(state, &guard).is_none();
                let mut message = missing_message(state, v, true, no_room);
                if let Some(c) = eligible
                    .first()
                    .and_then(|t| guard.therapist_clash(state, t.id).map(|c| (t, c)))
                {
                    message = format!(
                        "{message}: {} is booked ({})",
                        c.0.name,
                        book::clash_words(state, &c.1)
                    );
                }
                return Err(conflict(message));
            }
        }
    }
    if any {
        Err(conflict(
            "no waiting visit can be called now: each waits for a therapist who is busy",
        ))
    } else {
        Err(conflict("nobody is waiting"))
    }
}

pub fn start(state: &State, actor: &Actor, visit_id: Id, now: Now) -> Result<Decided, DomainError> {
    let v = visit_ref(state, visit_id)?;
    check_assigned(actor, v)?;
    if v.state != VisitState::Called {
        return Err(wrong_state(v, "started"));
    }
    let planned_end = now
        .ms
        .saturating_add(i64::from(v.service_minutes) * MINUTE_MS);
    Ok(Decided {
        events: vec![Event::VisitStarted {
            visit_id: v.id,
            planned_end,
        }],
        reply: Reply::Visit(v.id),
    })
}

pub fn extend(
    state: &State,
    actor: &Actor,
    a: &VisitExtend,
    _now: Now,
) -> Result<Decided, DomainError> {
    let v = visit_ref(state, a.visit_id)?;
    check_assigned(actor, v)?;
    if !(1..=120).contains(&a.minutes) {
        return Err(invalid("`minutes` must be between 1 and 120"));
    }
    if v.state != VisitState::InService {
        return Err(wrong_state(v, "extended"));
    }
    let planned_end = v
        .planned_end
        .unwrap_or(0)
        .saturating_add(i64::from(a.minutes) * MINUTE_MS);
    Ok(Decided {
        events: vec![Event::VisitExtended {
            visit_id: v.id,
            minutes: a.minutes,
            planned_end,
        }],
        reply: Reply::Visit(v.id),
    })
}

pub fn finish(
    state: &State,
    actor: &Actor,
    visit_id: Id,
    now: Now,
) -> Result<Decided, DomainError> {
    let v = visit_ref(state, visit_id)?;
    check_assigned(actor, v)?;
    if v.state != VisitState::InService {
        return Err(wrong_state(v, "finished"));
    }
    let cleaning_ms = i64::from(v.cleanup_min) * MINUTE_MS;
    Ok(Decided {
        events: vec![Event::VisitFinished {
            visit_id: v.id,
            cleaning_until: (cleaning_ms > 0).then(|| now.ms.saturating_add(cleaning_ms)),
            cleaning_ms,
        }],
        reply: Reply::Visit(v.id),
    })
}

pub fn undo(
    state: &State,
    actor: &Actor,
    visit_id: Id,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let v = visit_ref(state, visit_id)?;
    check_assigned(actor, v)?;
    let event = match v.state {
        VisitState::Called => Event::VisitCallUndone { visit_id: v.id },
        VisitState::InService => {
            let started = v.started_at.unwrap_or(now.ms);
            // A clock that jumped back counts as no time passed.
            let elapsed = now.ms.saturating_sub(started).max(0);
            if elapsed > rules.undo_start_grace_ms {
                return Err(conflict(format!(
                    "{} started {} min ago; a start can be undone only within {} min",
                    v.number,
                    elapsed / MINUTE_MS,
                    rules.undo_start_grace_ms / MINUTE_MS
                )));
            }
            Event::VisitStartUndone { visit_id: v.id }
        }
        _ => return Err(wrong_state(v, "undone")),
    };
    Ok(Decided {
        events: vec![event],
        reply: Reply::Visit(v.id),
    })
}

pub fn leave(state: &State, a: &VisitReason, _now: Now) -> Result<Decided, DomainError> {
    let v = visit_ref(state, a.visit_id)?;
    let reason = reason_text(&a.reason)?;
    if !matches!(v.state, VisitState::Waiting | VisitState::Called) {
        return Err(wrong_state(v, "marked as left"));
    }
    Ok(Decided {
        events: vec![Event::VisitLeft {
            visit_id: v.id,
            reason,
        }],
        reply: Reply::Visit(v.id),
    })
}

pub fn void(
    state: &State,
    actor: &Actor,
    a: &VisitReason,
    _now: Now,
) -> Result<Decided, DomainError> {
    let v = visit_ref(state, a.visit_id)?;
    let reason = reason_text(&a.reason)?;
    let approved = super::money::sale::correction_allowed(state, actor, a.approved_by, "void")?;
    if v.state.is_terminal() {
        return Err(wrong_state(v, "voided"));
    }
    let mut events = vec![Event::VisitVoided {
        visit_id: v.id,
        reason,
    }];
    events.extend(approved.map(|admin_id| Event::CorrectionApproved {
        admin_id,
        action: "visit.void".into(),
        visit_id: v.id,
    }));
    Ok(Decided {
        events,
        reply: Reply::Visit(v.id),
    })
}
