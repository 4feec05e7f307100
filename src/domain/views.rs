//! Who sees what (DOMAIN.md): the JSON each kind of client may receive.
//!
//! Every function here is pure and builds JSON from the state; nothing
//! secret (PIN hashes, token hashes) is ever put into a view. A customer's
//! view holds only their own visit; a monitor's holds no customer name; a
//! therapist sees phone and notes only of their own visits.

use serde_json::{json, Map, Value};

use super::book;
use super::rotation;
use super::state::{Device, Presence, Room, RoomStatus, Service, Staff, State, Visit, VisitState};
use super::{Id, Now, Role};

/// The kind of client a view is cut for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// Admins and cashiers: everything.
    Office,
    /// A therapist: their own visits in full, others without phone and notes.
    Therapist(Id),
    /// A lobby or corridor display: numbers, states and rooms only.
    Monitor,
    /// A customer: their own visit only.
    Customer(Id),
    /// A customer through their booking link (before check-in): that
    /// booking only.
    BookingCustomer(Id),
}

impl Viewer {
    /// The view an actor's own acks and broadcasts are cut with.
    pub fn of(actor: &super::Actor) -> Viewer {
        use super::Actor;
        match actor {
            Actor::Staff {
                id,
                role: Role::Therapist,
            } => Viewer::Therapist(*id),
            Actor::Staff { .. } | Actor::AdminToken | Actor::System => Viewer::Office,
            Actor::Device { .. } => Viewer::Monitor,
            Actor::Customer { visit_id } => Viewer::Customer(*visit_id),
            Actor::BookingCustomer { booking_id } => Viewer::BookingCustomer(*booking_id),
        }
    }
}

const MINUTE_MS: i64 = 60_000;

fn minutes_until(ms: i64, now: i64) -> i64 {
    // Rounded up so "free in ~1 min" shows until the minute is over.
    (ms.saturating_sub(now).max(0) + MINUTE_MS - 1) / MINUTE_MS
}

/// Minutes until a room is expected to be free (0 when it is): as
/// [`floor_free_in_min`], and a free room the book holds now or within
/// the next half hour is free when that booking is done with it.
pub fn room_free_in_min(room: &Room, state: &State, now: i64) -> Option<i64> {
    let floor = floor_free_in_min(room, state, now)?;
    let booked = state
        .room_bookings(room.id, now, now + 31 * MINUTE_MS)
        .into_iter()
        .map(|b| minutes_until(b.room_until_ms, now))
        .max();
    Some(booked.map_or(floor, |b| b.max(floor)))
}

/// Minutes until the live floor frees a room (0 when it is free), without
/// the book.
pub fn floor_free_in_min(room: &Room, state: &State, now: i64) -> Option<i64> {
    match room.status {
        RoomStatus::Available => Some(0),
        RoomStatus::Cleaning => room.cleaning_until.map(|u| minutes_until(u, now)),
        RoomStatus::OutOfService => None,
        RoomStatus::Held | RoomStatus::Occupied => {
            let end = room
                .occupants
                .iter()
                .filter_map(|v| state.visits.get(v))
                .map(|v| {
                    let cleanup = i64::from(v.cleanup_min) * MINUTE_MS;
                    match v.planned_end {
                        Some(end) => end.max(now) + cleanup,
                        None => now + i64::from(v.service_minutes) * MINUTE_MS + cleanup,
                    }
                })
                .max()?;
            Some(minutes_until(end, now))
        }
    }
}

pub fn room_full(room: &Room, state: &State, now: i64) -> Value {
    json!({
        "id": room.id,
        "name": room.name,
        "capacity": room.capacity,
        "light_channel": room.light_channel,
        "status": room.status.as_str(),
        "status_since": room.status_since,
        "reason": room.reason,
        "cleaning_until": room.cleaning_until,
        "overtime": room.overtime,
        "visits": room.occupants,
        "free_in_min": room_free_in_min(room, state, now),
    })
}

fn room_for_monitor(room: &Room, state: &State, now: i64) -> Value {
    json!({
        "id": room.id,
        "name": room.name,
        "status": room.status.as_str(),
        "status_since": room.status_since,
        "overtime": room.overtime,
        "free_in_min": room_free_in_min(room, state, now),
    })
}

pub fn room_for(viewer: Viewer, room: &Room, state: &State, now: i64) -> Option<Value> {
    match viewer {
        Viewer::Office | Viewer::Therapist(_) => Some(room_full(room, state, now)),
        Viewer::Monitor => Some(room_for_monitor(room, state, now)),
        Viewer::Customer(_) | Viewer::BookingCustomer(_) => None,
    }
}

pub fn service(s: &Service) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "duration_min": s.duration_min,
        "cleanup_min": s.cleanup_min,
        "price_cents": s.price_cents,
        "skill": s.skill,
        "turn_weight": s.turn_weight,
        "active": s.active,
    })
}

pub fn staff(s: &Staff, day: u32) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "role": s.role,
        "active": s.active,
        "skills": s.skills,
        "status": s.presence.as_str(),
        "status_since": s.presence_since,
        "clocked_in_at": s.clocked_in_at,
        "available_since": s.available_since,
        "turns_today": s.turns_on(day),
        "visit_id": s.current_visit,
    })
}

pub fn device(d: &Device) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "role": d.role,
        "revoked": d.revoked,
        "paired_at": d.paired_at,
    })
}

pub use super::money::view::{product, receipt_of};

/// A service with its tax rate (kept beside it, #17).
pub fn service_of(state: &State, s: &Service) -> Value {
    let mut v = service(s);
    if let Value::Object(m) = &mut v {
        m.insert("tax_rate_bp".into(), json!(state.till.service_rate(s.id)));
    }
    v
}

/// The receipt of a closed visit (totals, payments, tips, refunds).
pub fn receipt(v: &Visit) -> Value {
    let Some(c) = &v.checkout else {
        return Value::Null;
    };
    json!({
        "services_cents": c.services_cents,
        "discount_cents": c.discount_cents,
        "discount_reason": c.discount_reason,
        "tip_cents": c.tip_cents,
        // Paid less change is the bill's total, products, gift cards and
        // tax added on top of the services included (#17).
        "total_cents": c.paid_cents() - c.change_cents,
        "paid_cents": c.paid_cents(),
        "change_cents": c.change_cents,
        "payments": c.payments.iter().map(|p| json!({
            "method": p.method.as_str(),
            "amount_cents": p.amount_cents,
            "reference": p.reference,
        })).collect::<Vec<_>>(),
        "tips": c.tips.iter().map(|t| json!({"therapist_id": t.therapist_id, "amount_cents": t.amount_cents})).collect::<Vec<_>>(),
        "refunds": v.refunds.iter().map(|r| json!({
            "amount_cents": r.amount_cents,
            "method": r.method.as_str(),
            "reason": r.reason,
            "at": r.at,
        })).collect::<Vec<_>>(),
        "closed_at": c.at,
        "cashier_id": c.cashier,
        "drawer_id": c.drawer_id,
    })
}

/// `receipt`, with the visit's receipt (lines, tax per rate) as `sale`.
pub fn receipt_with_sale(state: &State, v: &Visit) -> Value {
    let mut out = receipt(v);
    if let Value::Object(m) = &mut out {
        let sale = state
            .till
            .receipt_of_visit
            .get(&v.id)
            .and_then(|r| state.till.receipts.get(r))
            .map(|r| receipt_of(state, r));
        m.insert("sale".into(), sale.unwrap_or(Value::Null));
    }
    out
}

pub fn drawer(d: &crate::domain::money::Drawer) -> Value {
    json!({
        "id": d.id,
        "owner_id": d.owner,
        "opened_at": d.opened_at,
        "float_cents": d.float_cents,
        "moves": d.moves.iter().map(|m| json!({
            "at": m.at, "kind": m.kind.as_str(), "amount_cents": m.amount_cents, "note": m.note,
        })).collect::<Vec<_>>(),
        "taken": d.taken,
        "change_cents": d.change_cents,
        "refunded": d.refunded,
        "expected": d.expected(),
        "closed_at": d.closed_at,
        "z_report": d.z_report,
        "forced": d.forced,
        "open": d.is_open(),
    })
}

pub fn visit_full(v: &Visit) -> Value {
    json!({
        "receipt": receipt(v),
        "id": v.id,
        "number": v.number,
        "day": v.day,
        "customer_name": v.customer_name,
        "phone": v.phone,
        "notes": v.notes,
        "service_ids": v.service_ids,
        "requested_therapist_id": v.requested_therapist,
        "state": v.state.as_str(),
        "therapist_id": v.therapist,
        "room_id": v.room,
        "created_at": v.created_at,
        "called_at": v.called_at,
        "started_at": v.started_at,
        "planned_end": v.planned_end,
        "finished_at": v.finished_at,
        "ended_at": v.ended_at,
        "extended_min": v.extended_min,
        "override_reason": v.override_reason,
        "reason": v.reason,
        "overtime": v.overtime,
        "services_cents": v.services_cents,
        "service_minutes": v.service_minutes,
    })
}

/// The visit as `viewer` may see it, or `None` when they may not see it.
pub fn visit_for(viewer: Viewer, v: &Visit) -> Option<Value> {
    match viewer {
        Viewer::Office => Some(visit_full(v)),
        Viewer::Therapist(me) => {
            let mut value = visit_full(v);
            if let Some(obj) = value.as_object_mut() {
                if v.therapist != Some(me) && v.requested_therapist != Some(me) {
                    obj.remove("phone");
                    obj.remove("notes");
                }
                // Money: a therapist sees only their own tip.
                obj.remove("services_cents");
                let my_tip: i64 = v
                    .checkout
                    .iter()
                    .flat_map(|c| c.tips.iter())
                    .filter(|t| t.therapist_id == me)
                    .map(|t| t.amount_cents)
                    .sum();
                let receipt = if v.checkout.is_some() {
                    json!({ "my_tip_cents": my_tip })
                } else {
                    Value::Null
                };
                obj.insert("receipt".into(), receipt);
            }
            Some(value)
        }
        Viewer::Monitor => Some(json!({
            "id": v.id,
            "number": v.number,
            "state": v.state.as_str(),
            "room_id": v.room,
        })),
        Viewer::Customer(mine) if mine == v.id => {
            let mut value = visit_full(v);
            if let Some(obj) = value.as_object_mut() {
                obj.remove("notes");
                obj.remove("override_reason");
                if let Some(receipt) = obj.get_mut("receipt").and_then(Value::as_object_mut) {
                    receipt.remove("cashier_id");
                    receipt.remove("drawer_id");
                }
            }
            Some(value)
        }
        Viewer::Customer(_) | Viewer::BookingCustomer(_) => None,
    }
}

/// The visit as `viewer` may see it within the floor: [`visit_for`], plus
/// for the office and the visit's own therapist its customer record (name
/// and notes: the allergy reaches the treatment room) and its edits.
pub fn visit_in(viewer: Viewer, v: &Visit, state: &State) -> Option<Value> {
    let mut value = visit_for(viewer, v)?;
    let own = match viewer {
        Viewer::Office => true,
        Viewer::Therapist(me) => v.therapist == Some(me) || v.requested_therapist == Some(me),
        _ => false,
    };
    if own {
        if let Some(obj) = value.as_object_mut() {
            let customer = state.customer_of_visit(v.id);
            obj.insert("customer_id".into(), json!(customer.map(|c| c.id)));
            obj.insert(
                "customer".into(),
                customer
                    .map(super::customers::therapist_view)
                    .unwrap_or(Value::Null),
            );
            let edits = state.visit_edits.get(&v.id);
            obj.insert("edits".into(), json!(edits.cloned().unwrap_or_default()));
        }
    }
    Some(value)
}

/// One waiting visit's place: position (1 = next) and estimated wait.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub visit_id: Id,
    pub position: usize,
    pub eta_min: Option<i64>,
}

/// Positions and estimated waits for the waiting visits, in queue order.
///
/// A small simulation: every clocked-in therapist (not on a break) becomes
/// free at a known time (now, the end of their session, or the end of the
/// visit they were called to); each waiting visit in turn goes to the
/// earliest-free therapist who may take it (its request, its skills).
pub fn queue(state: &State, now: Now) -> Vec<QueueEntry> {
    let mut free_at: Vec<(&Staff, i64)> = state
        .staff
        .values()
        .filter(|t| t.active && t.role == Role::Therapist)
        .filter_map(|t| {
            let busy_until = |v: Option<&Visit>| {
                v.map(|v| match v.planned_end {
                    Some(end) => end.max(now.ms),
                    None => now.ms + i64::from(v.service_minutes) * MINUTE_MS,
                })
                .unwrap_or(now.ms)
            };
            let current = t.current_visit.and_then(|v| state.visits.get(&v));
            match t.presence {
                Presence::Available => Some((t, now.ms)),
                Presence::Called | Presence::InSession => Some((t, busy_until(current))),
                Presence::Break | Presence::Off => None,
            }
        })
        .collect();
    // The book: a walk-in starts only where it does not run into a booking
    // (after it, otherwise); a booked visit starts at its time.
    let start_for = |t: &Staff, from: i64, v: &Visit| -> i64 {
        let length = i64::from(v.service_minutes) * MINUTE_MS;
        match state.booking_of_visit(v.id) {
            Some(b) => from.max(b.start_ms),
            None => {
                let mut at = from;
                for _ in 0..16 {
                    match state.therapist_bookings(t.id, at, at + length).first() {
                        Some(b) => at = b.end_ms,
                        None => break,
                    }
                }
                at
            }
        }
    };
    let mut out = Vec::new();
    for (index, v) in state.waiting().enumerate() {
        let needed = rotation::skills_needed(state, v);
        let slot = free_at
            .iter_mut()
            .filter(|(t, _)| match v.requested_therapist {
                Some(r) => t.id == r,
                None => rotation::has_skills(t, &needed),
            })
            .map(|(t, at)| {
                let start = start_for(t, (*at).max(now.ms), v);
                (start, t.id, at)
            })
            .min_by_key(|(start, id, _)| (*start, *id));
        let eta_min = slot.map(|(start, _, at)| {
            let eta = minutes_until(start, now.ms);
            if start == (*at).max(now.ms) {
                *at = start + i64::from(v.service_minutes) * MINUTE_MS;
            }
            eta
        });
        out.push(QueueEntry {
            visit_id: v.id,
            position: index + 1,
            eta_min,
        });
    }
    out
}

/// The queue as `viewer` may see it.
pub fn queue_for(viewer: Viewer, state: &State, entries: &[QueueEntry]) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .filter_map(|e| {
            let v = state.visits.get(&e.visit_id)?;
            let base = json!({
                "visit_id": v.id,
                "number": v.number,
                "position": e.position,
                "eta_min": e.eta_min,
                "state": v.state.as_str(),
            });
            let mut obj: Map<String, Value> = match base {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            match viewer {
                Viewer::Office => {
                    obj.insert("customer_name".into(), json!(v.customer_name));
                    obj.insert("service_ids".into(), json!(v.service_ids));
                    obj.insert(
                        "requested_therapist_id".into(),
                        json!(v.requested_therapist),
                    );
                }
                Viewer::Therapist(_) => {
                    obj.insert("service_ids".into(), json!(v.service_ids));
                    obj.insert(
                        "requested_therapist_id".into(),
                        json!(v.requested_therapist),
                    );
                }
                Viewer::Monitor => {}
                Viewer::Customer(mine) if mine == v.id => {}
                Viewer::Customer(_) | Viewer::BookingCustomer(_) => return None,
            }
            Some(Value::Object(obj))
        })
        .collect();
    Value::Array(items)
}

/// Visits a viewer's snapshot lists: today's and every open one.
fn visible_visits(viewer: Viewer, state: &State, now: Now) -> Vec<Value> {
    state
        .visits
        .values()
        .filter(|v| v.day == now.day || !v.state.is_terminal())
        .filter(|v| match viewer {
            // A board shows what is on the floor, not the day's history.
            Viewer::Monitor => matches!(
                v.state,
                VisitState::Waiting | VisitState::Called | VisitState::InService
            ),
            _ => true,
        })
        .filter_map(|v| visit_in(viewer, v, state))
        .collect()
}

/// The `snapshot` event's payload for a viewer (without `seq`/`server_time`,
/// which the caller adds with the identity's `me`).
pub fn snapshot(viewer: Viewer, state: &State, now: Now) -> Value {
    let queue_entries = queue(state, now);
    let mut snap = Map::new();
    snap.insert("seq".into(), json!(state.seq()));
    snap.insert("server_time".into(), json!(now.ms));
    match viewer {
        Viewer::Customer(mine) => {
            snap.insert(
                "visit".into(),
                state
                    .visits
                    .get(&mine)
                    .and_then(|v| visit_for(viewer, v))
                    .unwrap_or(Value::Null),
            );
            snap.insert("queue".into(), queue_for(viewer, state, &queue_entries));
            let room = state
                .visits
                .get(&mine)
                .and_then(|v| v.room)
                .and_then(|r| state.rooms.get(&r))
                .map(|r| json!({ "id": r.id, "name": r.name }));
            snap.insert("room".into(), room.unwrap_or(Value::Null));
            let booking = state
                .booking_of_visit(mine)
                .map(|b| book::views::booking_for_customer(b, state));
            snap.insert("booking".into(), booking.unwrap_or(Value::Null));
        }
        Viewer::BookingCustomer(id) => {
            let booking = state
                .bookings
                .get(&id)
                .map(|b| book::views::booking_for_customer(b, state));
            snap.insert("booking".into(), booking.unwrap_or(Value::Null));
        }
        Viewer::Monitor => {
            let rooms: Vec<Value> = state
                .rooms
                .values()
                .filter_map(|r| room_for(viewer, r, state, now.ms))
                .collect();
            snap.insert("rooms".into(), Value::Array(rooms));
            snap.insert("queue".into(), queue_for(viewer, state, &queue_entries));
            snap.insert(
                "visits".into(),
                Value::Array(visible_visits(viewer, state, now)),
            );
            let available = state
                .staff
                .values()
                .filter(|t| {
                    t.active && t.role == Role::Therapist && t.presence == Presence::Available
                })
                .count();
            snap.insert("therapists_available".into(), json!(available));
            snap.insert("book".into(), book::views::today(viewer, state, now, None));
        }
        Viewer::Office | Viewer::Therapist(_) => {
            let rooms: Vec<Value> = state
                .rooms
                .values()
                .filter_map(|r| room_for(viewer, r, state, now.ms))
                .collect();
            snap.insert("rooms".into(), Value::Array(rooms));
            let therapists: Vec<Value> = state
                .staff
                .values()
                .filter(|s| s.role == Role::Therapist && s.active)
                .map(|s| staff(s, now.day))
                .collect();
            snap.insert("therapists".into(), Value::Array(therapists));
            snap.insert("rotation".into(), json!(rotation::rotation(state, now.day)));
            snap.insert("queue".into(), queue_for(viewer, state, &queue_entries));
            snap.insert(
                "visits".into(),
                Value::Array(visible_visits(viewer, state, now)),
            );
            let services: Vec<Value> = state
                .services
                .values()
                .filter(|s| s.active)
                .map(|s| service_of(state, s))
                .collect();
            snap.insert("services".into(), Value::Array(services));
            let products: Vec<Value> = state.till.products.values().map(product).collect();
            snap.insert("products".into(), Value::Array(products));
            if viewer == Viewer::Office {
                // The latest 50 of today's visits' receipts, for refunds
                // per line (#17); older ones come with `receipt.updated`.
                let receipts: Vec<Value> = state
                    .visits
                    .values()
                    .rev()
                    .filter(|v| v.day == now.day && v.checkout.is_some())
                    .take(50)
                    .filter_map(|v| state.till.receipt_of_visit.get(&v.id))
                    .filter_map(|id| state.till.receipts.get(id))
                    .map(|r| receipt_of(state, r))
                    .collect();
                snap.insert("receipts".into(), Value::Array(receipts));
            }
            snap.insert("book".into(), book::views::today(viewer, state, now, None));
            if viewer == Viewer::Office {
                let all_staff: Vec<Value> =
                    state.staff.values().map(|s| staff(s, now.day)).collect();
                snap.insert("staff".into(), Value::Array(all_staff));
                let devices: Vec<Value> = state.devices.values().map(device).collect();
                snap.insert("devices".into(), Value::Array(devices));
            }
        }
    }
    Value::Object(snap)
}
