//! The book's commands: `schedule.set`, `block.*`, `booking.*` and the
//! no-show and due timers. Every interval check goes through [`fits`].

use jiff::civil::DateTime;
use serde_json::json;

use super::super::command::{
    BlockCreate, BlockRef, BookingCancel, BookingCreate, BookingList, BookingMove, BookingRef,
    ScheduleSet,
};
use super::super::decide::{
    build_visit, one, optional_text, text, Decided, NewVisit, Reply, MAX_NAME, MAX_NOTES,
    MAX_PHONE, MAX_REASON, MAX_SERVICES_PER_VISIT,
};
use super::super::event::{BookingSlot, Event};
use super::super::rotation;
use super::super::state::{Staff, State, Visit, VisitState};
use super::super::{
    conflict, forbidden, invalid, not_found, Actor, DomainError, Id, Now, Role, Rules,
};
use super::time::{self, StartArg};
use super::{clash_words, views, Block, Booking, BookingState, Clash, Shift, MINUTE_MS};

/// Services a booking is for, checked: their length, cleanup and skills.
pub struct Plan {
    pub service_ids: Vec<Id>,
    pub minutes: u32,
    pub cleanup_min: u32,
    pub skills: Vec<String>,
}

pub fn plan(state: &State, service_ids: &[Id]) -> Result<Plan, DomainError> {
    if service_ids.is_empty() {
        return Err(invalid("`service_ids` must name at least one service"));
    }
    if service_ids.len() > MAX_SERVICES_PER_VISIT {
        return Err(invalid(format!(
            "`service_ids` may name at most {MAX_SERVICES_PER_VISIT} services"
        )));
    }
    let mut minutes = 0u32;
    let mut cleanup_min = 0u32;
    let mut skills: Vec<String> = Vec::new();
    for id in service_ids {
        let s = state
            .services
            .get(id)
            .filter(|s| s.active)
            .ok_or_else(|| invalid(format!("`service_ids`: {id} is not a service on offer")))?;
        minutes = minutes.saturating_add(s.duration_min);
        cleanup_min = cleanup_min.max(s.cleanup_min);
        skills.extend(s.skill.clone());
    }
    skills.sort();
    skills.dedup();
    Ok(Plan {
        service_ids: service_ids.to_vec(),
        minutes,
        cleanup_min,
        skills,
    })
}

fn has_skills(t: &Staff, plan: &Plan) -> bool {
    let needed: Vec<&str> = plan.skills.iter().map(String::as_str).collect();
    rotation::has_skills(t, &needed)
}

/// An active therapist for a booking argument (`invalid` otherwise).
fn book_therapist<'a>(state: &'a State, id: Id, field: &str) -> Result<&'a Staff, DomainError> {
    state
        .staff
        .get(&id)
        .filter(|t| t.active && t.role == Role::Therapist)
        .ok_or_else(|| invalid(format!("`{field}`: {id} is not an active therapist")))
}

fn book_room(state: &State, id: Id, field: &str) -> Result<(), DomainError> {
    if state.rooms.contains_key(&id) {
        Ok(())
    } else {
        Err(invalid(format!("`{field}`: there is no room {id}")))
    }
}

fn booking_ref(state: &State, id: Id) -> Result<&Booking, DomainError> {
    state
        .bookings
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no booking {id}")))
}

fn state_words(b: &Booking) -> String {
    b.state.as_str().replace('_', " ")
}

/// A checked start: in the future, inside the horizon, on the grid.
fn checked_start(
    rules: &Rules,
    start: &StartArg,
    now: Now,
) -> Result<(i64, u32, DateTime), DomainError> {
    let ms = time::parse_start(&rules.tz, "start", start)?;
    if ms < now.ms {
        return Err(invalid("`start` is in the past"));
    }
    let horizon = now.ms + i64::from(rules.booking_horizon_days) * 24 * 60 * MINUTE_MS;
    if ms > horizon {
        return Err(invalid(format!(
            "`start` is more than {} days ahead",
            rules.booking_horizon_days
        )));
    }
    let (date, local) = time::local_of(&rules.tz, ms);
    let grid = i8::try_from(rules.booking_grid_min.clamp(1, 60)).unwrap_or(15);
    if local.second() != 0 || local.subsec_nanosecond() != 0 || local.minute() % grid != 0 {
        return Err(invalid(format!(
            "`start` must be on the {}-minute grid (e.g. 15:00, 15:{:02})",
            grid, grid
        )));
    }
    Ok((ms, date, local))
}

/// Everything that must hold for `therapist` and `room` to take a booking
/// of `plan` at `start` (on local `date`): the shift, no booking or block in
/// the way (the booking `except` aside), and, today, the live floor.
#[allow(clippy::too_many_arguments)]
pub fn fits(
    state: &State,
    plan: &Plan,
    therapist: &Staff,
    room: Id,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Result<(), DomainError> {
    therapist_fits(state, plan, therapist, start, date, except, now)?;
    room_fits(state, plan, room, start, date, except, now)
}

/// What keeps a therapist or a room from a booking; put into words only
/// when a refusal needs them (availability asks thousands of times).
pub enum Blocker<'a> {
    NoShift,
    OutsideShift(&'a Shift),
    Clash(Clash<'a>),
    /// The live floor: busy until then.
    Busy(i64),
    OutOfService,
}

/// Why `therapist` cannot take `plan` at `start` (on local `date`), if so.
pub fn therapist_blocker<'a>(
    state: &'a State,
    plan: &Plan,
    therapist: Id,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Option<Blocker<'a>> {
    let end = start + i64::from(plan.minutes) * MINUTE_MS;
    match state.shift(therapist, date) {
        None => return Some(Blocker::NoShift),
        Some(s) if start < s.start_ms || end > s.end_ms => return Some(Blocker::OutsideShift(s)),
        Some(_) => {}
    }
    if let Some(c) = state.therapist_clash(therapist, start, end, except) {
        return Some(Blocker::Clash(c));
    }
    if date == now.day {
        let busy = state.therapist_busy_until(therapist, now.ms);
        if busy > start {
            return Some(Blocker::Busy(busy));
        }
    }
    None
}

/// Why `room` cannot take `plan` at `start` (its cleanup included), if so.
pub fn room_blocker<'a>(
    state: &'a State,
    plan: &Plan,
    room: Id,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Option<Blocker<'a>> {
    let end = start + i64::from(plan.minutes) * MINUTE_MS;
    let room_until = end + i64::from(plan.cleanup_min) * MINUTE_MS;
    if let Some(c) = state.room_clash(room, start, room_until, except) {
        return Some(Blocker::Clash(c));
    }
    if date == now.day {
        match state.room_busy_until(room, now.ms) {
            None => return Some(Blocker::OutOfService),
            Some(until) if until > start => return Some(Blocker::Busy(until)),
            Some(_) => {}
        }
    }
    None
}

/// The therapist's half of [`fits`].
pub fn therapist_fits(
    state: &State,
    plan: &Plan,
    therapist: &Staff,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Result<(), DomainError> {
    let Some(blocker) = therapist_blocker(state, plan, therapist.id, start, date, except, now)
    else {
        return Ok(());
    };
    let (name, when) = (&therapist.name, time::date_words(date));
    Err(conflict(match blocker {
        Blocker::NoShift => format!("{name} has no shift on {when}"),
        Blocker::OutsideShift(s) => format!(
            "{name} works {}–{} on {when}; the booking would fall outside the shift",
            s.start, s.end
        ),
        Blocker::Clash(c) => format!("{name} is not free then: {}", clash_words(state, &c)),
        Blocker::Busy(until) => format!(
            "{name} is in a session until about {}",
            minutes_words(until, now.ms)
        ),
        Blocker::OutOfService => format!("{name} is not available"),
    }))
}

/// The room's half of [`fits`]; its refusals start with "room ".
pub fn room_fits(
    state: &State,
    plan: &Plan,
    room: Id,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Result<(), DomainError> {
    let Some(blocker) = room_blocker(state, plan, room, start, date, except, now) else {
        return Ok(());
    };
    let name = state
        .rooms
        .get(&room)
        .map(|r| r.name.clone())
        .unwrap_or_default();
    Err(conflict(match blocker {
        Blocker::Clash(c) => format!("room {name} is not free then: {}", clash_words(state, &c)),
        Blocker::Busy(until) => format!(
            "room {name} is in use for about {}",
            minutes_words(until, now.ms)
        ),
        Blocker::OutOfService => format!("room {name} is out of service"),
        Blocker::NoShift | Blocker::OutsideShift(_) => format!("room {name} is not free then"),
    }))
}

fn minutes_words(until: i64, now: i64) -> String {
    format!("{} more min", (until - now + MINUTE_MS - 1) / MINUTE_MS)
}

/// Therapists in the order "any therapist" takes them: the least booked
/// that day first, then id (one pass over the day's bookings).
pub fn sort_for_any(state: &State, list: &mut [&Staff], date: u32) {
    let mut minutes: std::collections::BTreeMap<Id, i64> = std::collections::BTreeMap::new();
    for (_, id) in state.book_index.by_date.range((date, 0)..=(date, Id::MAX)) {
        if let Some(b) = state.bookings.get(id).filter(|b| b.holds(state)) {
            *minutes.entry(b.therapist_id).or_default() += (b.end_ms - b.start_ms) / MINUTE_MS;
        }
    }
    list.sort_by_key(|t| (minutes.get(&t.id).copied().unwrap_or(0), t.id));
}

/// Rooms in the order "any room" takes them: smallest first, then id.
pub fn rooms_in_order(state: &State) -> Vec<Id> {
    let mut rooms: Vec<(u8, Id)> = state.rooms.values().map(|r| (r.capacity, r.id)).collect();
    rooms.sort();
    rooms.into_iter().map(|(_, id)| id).collect()
}

/// Picks (or checks) the therapist and room of a booking; the refusal of
/// the last candidate explains why nothing fits.
#[allow(clippy::too_many_arguments)]
fn place(
    state: &State,
    plan: &Plan,
    therapist: Option<Id>,
    room: Option<Id>,
    start: i64,
    date: u32,
    except: Option<Id>,
    now: Now,
) -> Result<(Id, Id), DomainError> {
    let therapists: Vec<&Staff> = match therapist {
        Some(id) => {
            let t = book_therapist(state, id, "therapist_id")?;
            if !has_skills(t, plan) {
                return Err(invalid(format!(
                    "`therapist_id`: {} does not have the skills these services need ({})",
                    t.name,
                    plan.skills.join(", ")
                )));
            }
            vec![t]
        }
        None => {
            let mut list: Vec<&Staff> = state
                .staff
                .values()
                .filter(|t| t.active && t.role == Role::Therapist && has_skills(t, plan))
                .collect();
            sort_for_any(state, &mut list, date);
            list
        }
    };
    let rooms: Vec<Id> = match room {
        Some(id) => {
            book_room(state, id, "room_id")?;
            vec![id]
        }
        None => rooms_in_order(state),
    };
    if therapists.is_empty() {
        return Err(conflict(if plan.skills.is_empty() {
            "there is no active therapist".to_string()
        } else {
            format!("no therapist has {}", plan.skills.join(", "))
        }));
    }
    if rooms.is_empty() {
        return Err(conflict("there is no room"));
    }
    // The room does not depend on the therapist: the first that fits. When
    // nothing fits, say why for the first candidate (the one asked for, or
    // the least booked).
    let mut why: Option<DomainError> = None;
    let mut room_found = None;
    for r in &rooms {
        match room_fits(state, plan, *r, start, date, except, now) {
            Ok(()) => {
                room_found = Some(*r);
                break;
            }
            Err(e) => {
                why.get_or_insert(e);
            }
        }
    }
    let mut therapist_why: Option<DomainError> = None;
    for t in &therapists {
        match therapist_fits(state, plan, t, start, date, except, now) {
            Ok(()) => {
                if let Some(r) = room_found {
                    return Ok((t.id, r));
                }
                break;
            }
            Err(e) => {
                therapist_why.get_or_insert(e);
            }
        }
    }
    Err(therapist_why
        .or(why)
        .unwrap_or_else(|| conflict("nothing fits")))
}

fn slot(
    state: &State,
    plan: &Plan,
    start: i64,
    date: u32,
    local: DateTime,
    t: Id,
    r: Id,
) -> BookingSlot {
    let end = start + i64::from(plan.minutes) * MINUTE_MS;
    let number_of_day = state
        .bookings_on(date)
        .iter()
        .map(|b| b.number_of_day)
        .max()
        .unwrap_or(0)
        + 1;
    BookingSlot {
        date,
        number: format!("B-{number_of_day:03}"),
        number_of_day,
        time: time::hhmm(local),
        start_ms: start,
        end_ms: end,
        room_until_ms: end + i64::from(plan.cleanup_min) * MINUTE_MS,
        therapist_id: t,
        room_id: r,
    }
}

pub fn schedule_set(
    state: &State,
    a: &ScheduleSet,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let t = book_therapist(state, a.therapist_id, "therapist_id")?;
    let date = time::parse_date("date", &a.date)?;
    let on_date: Vec<&Booking> = state
        .bookings_on(date)
        .into_iter()
        .filter(|b| b.therapist_id == t.id && b.holds(state))
        .collect();
    if a.off {
        if a.start.is_some() || a.end.is_some() {
            return Err(invalid("`off` takes no `start` or `end`"));
        }
        if let Some(b) = on_date.first() {
            return Err(conflict(format!(
                "{} has {} at {} that day; move or cancel it first",
                t.name, b.number, b.time
            )));
        }
        if state.shift(t.id, date).is_none() {
            return Err(conflict(format!(
                "{} has no shift on {} already",
                t.name,
                time::date_words(date)
            )));
        }
        return one(
            Event::ShiftCleared {
                therapist_id: t.id,
                date,
            },
            Reply::Json(json!({"therapist_id": t.id, "date": time::date_words(date), "off": true})),
        );
    }
    let (Some(start), Some(end)) = (&a.start, &a.end) else {
        return Err(invalid("`start` and `end` are required (or `off: true`)"));
    };
    let day = time::date_of_day(date).ok_or_else(|| invalid("`date` is out of range"))?;
    let (start_t, end_t) = (
        time::parse_time("start", start)?,
        time::parse_time("end", end)?,
    );
    if end_t <= start_t {
        return Err(invalid(
            "`end` must be after `start` (shifts end on the day they start)",
        ));
    }
    let start_ms = time::local_instant(&rules.tz, "start", day.to_datetime(start_t))?;
    let end_ms = time::local_instant(&rules.tz, "end", day.to_datetime(end_t))?;
    if end_ms < now.ms - 31 * 24 * 60 * MINUTE_MS {
        return Err(invalid("`date` is more than a month in the past"));
    }
    if let Some(b) = on_date
        .iter()
        .find(|b| b.start_ms < start_ms || b.end_ms > end_ms)
    {
        return Err(conflict(format!(
            "{} at {} would fall outside the shift; move it first",
            b.number, b.time
        )));
    }
    let shift = Shift {
        therapist_id: t.id,
        date,
        start_ms,
        end_ms,
        start: format!("{:02}:{:02}", start_t.hour(), start_t.minute()),
        end: format!("{:02}:{:02}", end_t.hour(), end_t.minute()),
    };
    let reply = Reply::Json(json!({ "shift": views::shift(&shift) }));
    one(Event::ShiftSet { shift }, reply)
}

pub fn block_create(
    state: &State,
    actor: &Actor,
    a: &BlockCreate,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let reason = text("reason", &a.reason, MAX_REASON)?;
    match (a.therapist_id, a.room_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid("give either `therapist_id` or `room_id`"))
        }
        (Some(t), None) => {
            book_therapist(state, t, "therapist_id")?;
            if actor.role() == Some(Role::Therapist) && actor.staff_id() != Some(t) {
                return Err(forbidden("a therapist may block only their own time"));
            }
        }
        (None, Some(r)) => {
            book_room(state, r, "room_id")?;
            if actor.role() == Some(Role::Therapist) {
                return Err(forbidden("only the office blocks a room"));
            }
        }
    }
    let start_ms = time::parse_start(&rules.tz, "start", &a.start)?;
    let end_ms = time::parse_start(&rules.tz, "end", &a.end)?;
    if end_ms <= start_ms {
        return Err(invalid("`end` must be after `start`"));
    }
    if end_ms - start_ms > 31 * 24 * 60 * MINUTE_MS {
        return Err(invalid("`end`: a block lasts at most 31 days"));
    }
    // A block never goes over a booking: the booking must move first.
    let clash = match (a.therapist_id, a.room_id) {
        (Some(t), _) => state
            .therapist_bookings(t, start_ms, end_ms)
            .into_iter()
            .next(),
        (_, Some(r)) => state.room_bookings(r, start_ms, end_ms).into_iter().next(),
        _ => None,
    };
    if let Some(b) = clash {
        return Err(conflict(format!(
            "{} at {} on {} is booked then; move or cancel it first",
            b.number,
            b.time,
            time::date_words(b.date)
        )));
    }
    let block = Block {
        id: state.counters.next_id.max(1),
        therapist_id: a.therapist_id,
        room_id: a.room_id,
        start_ms,
        end_ms,
        reason,
        created_by: actor.staff_id(),
    };
    let reply = Reply::Json(json!({ "block": views::block(&block) }));
    one(Event::BlockCreated { block }, reply)
}

pub fn block_remove(state: &State, actor: &Actor, a: &BlockRef) -> Result<Decided, DomainError> {
    let b = state
        .blocks
        .get(&a.block_id)
        .ok_or_else(|| not_found(format!("there is no block {}", a.block_id)))?;
    if actor.role() == Some(Role::Therapist)
        && (b.therapist_id.is_none() || b.therapist_id != actor.staff_id())
    {
        return Err(forbidden("a therapist may remove only their own blocks"));
    }
    one(
        Event::BlockRemoved { block_id: b.id },
        Reply::Json(json!({"block_id": b.id, "removed": true})),
    )
}

pub fn booking_create(
    state: &State,
    actor: &Actor,
    a: &BookingCreate,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let request_id = optional_text("request_id", &a.request_id, 64)?;
    if let Some(r) = &request_id {
        // A double tap or a retry after a lost ack: the first answer again.
        if let Some(b) = state
            .bookings
            .values()
            .find(|b| b.request_id.as_ref() == Some(r))
        {
            return Ok(Decided {
                events: Vec::new(),
                reply: Reply::BookingRetry(b.id),
            });
        }
    }
    let customer = match a.customer_id {
        Some(id) => Some(crate::domain::customers::live(state, id, "customer_id")?),
        None => None,
    };
    let customer_name = match customer {
        Some(c) if a.customer_name.trim().is_empty() => c.name.clone(),
        _ => text("customer_name", &a.customer_name, MAX_NAME)?,
    };
    let typed_phone = a
        .phone
        .clone()
        .filter(|p| !p.trim().is_empty())
        .or_else(|| customer.and_then(|c| c.phone.clone()));
    let phone = optional_text("phone", &typed_phone, MAX_PHONE)?
        .ok_or_else(|| invalid("`phone` is required for a booking (the desk may need to call)"))?;
    let notes = optional_text("notes", &a.notes, MAX_NOTES)?;
    let plan = plan(state, &a.service_ids)?;
    let (start, date, local) = checked_start(rules, &a.start, now)?;
    if a.token_hash.is_empty() {
        return Err(invalid("customer token missing"));
    }
    let (t, r) = place(
        state,
        &plan,
        a.therapist_id,
        a.room_id,
        start,
        date,
        None,
        now,
    )?;
    let s = slot(state, &plan, start, date, local, t, r);
    let booking = Booking {
        id: state.counters.next_id.max(1),
        number: s.number,
        number_of_day: s.number_of_day,
        date,
        time: s.time,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        room_until_ms: s.room_until_ms,
        customer_name,
        phone: Some(phone),
        notes,
        service_ids: plan.service_ids.clone(),
        therapist_id: t,
        room_id: r,
        any_therapist: a.therapist_id.is_none(),
        state: BookingState::Booked,
        state_since: now.ms,
        created_by: actor.staff_id(),
        created_at: now.ms,
        request_id,
        customer_token_hash: a.token_hash.clone(),
        visit_id: None,
        reason: None,
        cancelled_by_customer: false,
        late_alerted: false,
        service_minutes: plan.minutes,
        cleanup_min: plan.cleanup_min,
    };
    let reply = Reply::Booking(booking.id);
    let id = booking.id;
    let mut events = vec![Event::BookingCreated { booking }];
    if let Some(c) = customer {
        events.push(Event::CustomerLinked {
            customer_id: c.id,
            visit_id: None,
            booking_id: Some(id),
        });
    }
    Ok(Decided { events, reply })
}

pub fn booking_move(
    state: &State,
    a: &BookingMove,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let b = booking_ref(state, a.booking_id)?;
    if b.state != BookingState::Booked {
        return Err(conflict(format!(
            "{} is {}; only a booking not yet checked in can move",
            b.number,
            state_words(b)
        )));
    }
    let plan = Plan {
        service_ids: b.service_ids.clone(),
        minutes: b.service_minutes,
        cleanup_min: b.cleanup_min,
        skills: super::super::rotation::skills_needed(
            state,
            &Visit {
                service_ids: b.service_ids.clone(),
                ..super::super::decide::blank_visit()
            },
        )
        .into_iter()
        .map(String::from)
        .collect(),
    };
    let (start, date, local) = match &a.start {
        Some(s) => checked_start(rules, s, now)?,
        None => {
            let (d, l) = time::local_of(&rules.tz, b.start_ms);
            (b.start_ms, d, l)
        }
    };
    // The therapist stays unless another is named; the room too, unless it
    // is not free at the new time (then any room that is).
    let therapist = Some(a.therapist_id.unwrap_or(b.therapist_id));
    let (t, r) = match a.room_id {
        Some(room) => place(
            state,
            &plan,
            therapist,
            Some(room),
            start,
            date,
            Some(b.id),
            now,
        )?,
        None => place(
            state,
            &plan,
            therapist,
            Some(b.room_id),
            start,
            date,
            Some(b.id),
            now,
        )
        .or_else(|_| place(state, &plan, therapist, None, start, date, Some(b.id), now))?,
    };
    let mut to = slot(state, &plan, start, date, local, t, r);
    if date == b.date {
        // Same day: the number stays.
        to.number = b.number.clone();
        to.number_of_day = b.number_of_day;
    }
    one(
        Event::BookingMoved {
            booking_id: b.id,
            to,
        },
        Reply::Booking(b.id),
    )
}

pub fn booking_cancel(
    state: &State,
    actor: &Actor,
    a: &BookingCancel,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let b = booking_ref(state, a.booking_id)?;
    let by_customer = actor.role() == Some(Role::Customer);
    if by_customer && *actor != (Actor::BookingCustomer { booking_id: b.id }) {
        return Err(forbidden("this is not your booking"));
    }
    if b.state != BookingState::Booked {
        return Err(conflict(format!(
            "{} is {} and cannot be cancelled",
            b.number,
            state_words(b)
        )));
    }
    let reason = if by_customer {
        let cutoff = b.start_ms - i64::from(rules.cancel_cutoff_hours) * 60 * MINUTE_MS;
        if now.ms > cutoff {
            return Err(conflict(format!(
                "online cancellation closes {} hours before the booking; please call the spa",
                rules.cancel_cutoff_hours
            )));
        }
        optional_text("reason", &a.reason, MAX_REASON)?
            .unwrap_or_else(|| "cancelled by the customer".into())
    } else {
        match &a.reason {
            Some(r) => text("reason", r, MAX_REASON)?,
            None => return Err(invalid("`reason` is required")),
        }
    };
    one(
        Event::BookingCancelled {
            booking_id: b.id,
            reason,
            by_customer,
        },
        Reply::Booking(b.id),
    )
}

/// How long before its start a booking may be checked in when that is
/// still the day before.
const CHECK_IN_EARLY_MS: i64 = 2 * 60 * MINUTE_MS;

pub fn booking_check_in(state: &State, a: &BookingRef, now: Now) -> Result<Decided, DomainError> {
    let b = booking_ref(state, a.booking_id)?;
    match b.state {
        BookingState::Booked => {}
        BookingState::NoShow => {
            // Late, but welcome while the therapist and room are still free.
            let minutes = b.service_minutes;
            let until = now.ms + i64::from(minutes) * MINUTE_MS;
            let room_until = until + i64::from(b.cleanup_min) * MINUTE_MS;
            let busy = state.therapist_clash(b.therapist_id, now.ms, until, Some(b.id));
            let room_busy = state.room_clash(b.room_id, now.ms, room_until, Some(b.id));
            if let Some(c) = busy.or(room_busy) {
                return Err(conflict(format!(
                    "{} was a no-show and its time has been given away: {}",
                    b.number,
                    clash_words(state, &c)
                )));
            }
            let floor_busy = state.therapist_busy_until(b.therapist_id, now.ms) > now.ms
                || state
                    .room_busy_until(b.room_id, now.ms)
                    .is_none_or(|until| until > now.ms);
            if floor_busy {
                return Err(conflict(format!(
                    "{} was a no-show and its time has been given away to a walk-in",
                    b.number
                )));
            }
        }
        _ => {
            return Err(conflict(format!(
                "{} is {} and cannot be checked in",
                b.number,
                state_words(b)
            )))
        }
    }
    // On the day, or a little early across midnight (a 00:15 booking whose
    // customer arrives at 23:55).
    let early_enough = b.start_ms - now.ms <= CHECK_IN_EARLY_MS;
    if b.date != now.day && !(b.date > now.day && early_enough) {
        return Err(conflict(format!(
            "{} is for {}; check in on the day",
            b.number,
            time::date_words(b.date)
        )));
    }
    let visit = build_visit(
        state,
        NewVisit {
            customer_name: b.customer_name.clone(),
            phone: b.phone.clone(),
            notes: b.notes.clone(),
            service_ids: b.service_ids.clone(),
            requested_therapist: Some(b.therapist_id),
            token_hash: b.customer_token_hash.clone(),
            allow_removed_services: true,
        },
        now,
    )?;
    let visit_id = visit.id;
    Ok(Decided {
        events: vec![Event::BookingCheckedIn {
            booking_id: b.id,
            visit,
        }],
        reply: Reply::CheckedIn {
            booking_id: b.id,
            visit_id,
        },
    })
}

pub fn booking_no_show(state: &State, a: &BookingRef, now: Now) -> Result<Decided, DomainError> {
    let b = booking_ref(state, a.booking_id)?;
    if b.state != BookingState::Booked {
        return Err(conflict(format!(
            "{} is {}; only a booking not checked in can be a no-show",
            b.number,
            state_words(b)
        )));
    }
    if now.ms < b.start_ms {
        return Err(conflict(format!(
            "{} starts at {}; it is not a no-show before then",
            b.number, b.time
        )));
    }
    one(
        Event::BookingNoShow {
            booking_id: b.id,
            reason: Some("marked by staff".into()),
        },
        Reply::Booking(b.id),
    )
}

/// The no-show timer ran out (for the start it was set for).
pub fn no_show_due(state: &State, booking_id: Id, start_ms: i64) -> Result<Decided, DomainError> {
    let b = booking_ref(state, booking_id)?;
    if b.state != BookingState::Booked || b.start_ms != start_ms {
        return Err(conflict("the booking was checked in, moved or cancelled"));
    }
    one(
        Event::BookingNoShow {
            booking_id: b.id,
            reason: None,
        },
        Reply::Json(json!({})),
    )
}

/// A checked-in booking's time came: if its therapist or room is still
/// busy, the desk is told (once).
pub fn booking_due(state: &State, booking_id: Id) -> Result<Decided, DomainError> {
    let b = booking_ref(state, booking_id)?;
    let waiting = b
        .visit_id
        .and_then(|v| state.visits.get(&v))
        .is_some_and(|v| v.state == VisitState::Waiting);
    if b.state != BookingState::CheckedIn || !waiting || b.late_alerted {
        return Err(conflict("the booked visit is no longer waiting"));
    }
    let therapist = state.staff.get(&b.therapist_id);
    let room = state.rooms.get(&b.room_id);
    let therapist_busy =
        therapist.is_some_and(|t| t.presence != super::super::state::Presence::Available);
    let room_busy = room.is_some_and(|r| !super::super::visits::room_has_space(r));
    if !therapist_busy && !room_busy {
        return Err(conflict("the booked visit can be called"));
    }
    let who = match (therapist_busy, therapist, room) {
        (true, Some(t), _) => format!("{} is still busy", t.name),
        (_, _, Some(r)) => format!("room {} is not free yet", r.name),
        _ => "its therapist or room is not free yet".into(),
    };
    one(
        Event::BookingLate {
            booking_id: b.id,
            message: format!(
                "{} ({}) is due at {}: {who}",
                b.number, b.customer_name, b.time
            ),
        },
        Reply::Json(json!({})),
    )
}

/// `booking.list`: a date's bookings, shifts and blocks as `actor` may see them.
pub fn booking_list(
    state: &State,
    actor: &Actor,
    a: &BookingList,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    let date = match &a.date {
        Some(d) => time::parse_date("date", d)?,
        None => now.day,
    };
    let viewer = match actor {
        Actor::Staff {
            id,
            role: Role::Therapist,
        } => {
            if a.therapist_id.is_some_and(|t| t != *id) {
                return Err(forbidden("a therapist may list only their own bookings"));
            }
            super::super::views::Viewer::Therapist(*id)
        }
        _ => super::super::views::Viewer::Office,
    };
    let therapist = match viewer {
        super::super::views::Viewer::Therapist(id) => Some(id),
        _ => a.therapist_id,
    };
    // A past date's bookings may be in the archive (the shell read them).
    let mut on_date = state.bookings_on(date);
    on_date.extend(
        a.archived
            .iter()
            .filter(|b| b.date == date && !state.bookings.contains_key(&b.id)),
    );
    on_date.sort_by_key(|b| (b.start_ms, b.id));
    let bookings: Vec<serde_json::Value> = on_date
        .into_iter()
        .filter(|b| therapist.is_none_or(|t| b.therapist_id == t))
        .filter_map(|b| views::booking_for(viewer, b, state, now))
        .collect();
    let day = time::day_bounds(&rules.tz, date);
    Ok(Decided {
        events: Vec::new(),
        reply: Reply::Json(json!({
            "date": time::date_words(date),
            "bookings": bookings,
            "shifts": views::shifts_on(state, date, therapist),
            "blocks": day.map(|(from, to)| views::blocks_between(state, from, to, therapist)).unwrap_or_default(),
        })),
    })
}

/// Is `clash` a booking (for the words of a walk-in refusal)?
pub fn clash_booking<'a>(c: &Clash<'a>) -> Option<&'a Booking> {
    match c {
        Clash::Booking(b) => Some(b),
        Clash::Block(_) => None,
    }
}
