//! `decide(state, actor, command, now)`: the rules. Reads the state, never
//! changes it; returns the events to persist and the reply data, or the
//! reason for a refusal.

use serde_json::{json, Value};

use super::book;
use super::command::*;
use super::event::Event;
use super::rotation::{self, Turns};
use super::state::{
    Device, Presence, Room, RoomStatus, Service, Session, Staff, State, Visit, VisitState,
};
use super::views::{self, Viewer};
use super::{
    conflict, forbidden, invalid, not_found, permissions, Actor, DomainError, Id, Now, Role, Rules,
};

/// What an accepted command produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub events: Vec<Event>,
    /// What the ack's `data` shows, rendered from the state *after* the
    /// events are applied (the writer adds `seq`).
    pub reply: Reply,
}

/// The entity an ack shows (rendered after apply, so it always matches the
/// broadcast of the same `seq`), or fixed data.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Room(Id),
    Service(Id),
    Staff(Id),
    Therapist(Id),
    Device(Id),
    Visit(Id),
    /// A paid visit with its receipt, and the seq of the checkout itself
    /// (a void or a re-tip answers with it too).
    Checkout(Id),
    /// `visit.checkout`: the paid visit as `Checkout` (a retried checkout is
    /// answered with the original seq), whether this answers a retried
    /// `request_id`, and the codes of the gift cards it sold, for the
    /// seller's eyes only (derived from the box's secret, so a retry shows
    /// them again; never stored, never broadcast).
    VisitPaid {
        visit_id: Id,
        retried: bool,
        codes: Vec<(Id, String)>,
    },
    Drawer(Id),
    Booking(Id),
    Product(Id),
    /// A receipt (a sale's, or a refund's), whether this answers a retried
    /// `request_id`, and the codes of the gift cards it sold (as for
    /// `VisitPaid`).
    Receipt {
        id: Id,
        retried: bool,
        codes: Vec<(Id, String)>,
    },
    /// The same booking again for a retried `request_id` (its link was
    /// shown the first time).
    BookingRetry(Id),
    /// A booking checked in, and the visit made for it.
    CheckedIn {
        booking_id: Id,
        visit_id: Id,
    },
    /// A called visit, and the therapists the call skipped because of the
    /// book (with why).
    Called {
        visit_id: Id,
        skipped: Vec<(Id, String)>,
    },
    /// A customer record (office only).
    Customer(Id),
    /// A new visit, and the customer records whose phone matches what was
    /// typed (offered to the desk instead of a silent duplicate).
    VisitWithMatches {
        visit_id: Id,
        matches: Vec<Id>,
    },
    Json(Value),
}

impl Reply {
    /// The ack's `data` as the office sees it.
    pub fn render(&self, state: &State, now: Now) -> Value {
        self.render_for(Viewer::Office, state, now)
    }

    /// The ack's `data` as `viewer` (the command's sender) may see it: the
    /// same cut as the broadcasts they receive, so an ack never shows a
    /// therapist another customer's phone, notes or price.
    pub fn render_for(&self, viewer: Viewer, state: &State, now: Now) -> Value {
        let entity = |key: &str, value: Option<Value>| json!({ key: value.unwrap_or(Value::Null) });
        match self {
            Reply::Room(id) => entity(
                "room",
                state
                    .rooms
                    .get(id)
                    .and_then(|r| views::room_for(viewer, r, state, now.ms)),
            ),
            Reply::Service(id) => entity(
                "service",
                state.services.get(id).map(|s| views::service_of(state, s)),
            ),
            Reply::Staff(id) => entity(
                "staff",
                state.staff.get(id).map(|s| views::staff(s, now.day)),
            ),
            Reply::Therapist(id) => entity(
                "therapist",
                state.staff.get(id).map(|s| views::staff(s, now.day)),
            ),
            Reply::Device(id) => entity("device", state.devices.get(id).map(views::device)),
            Reply::Visit(id) => entity(
                "visit",
                state
                    .visits
                    .get(id)
                    .and_then(|v| views::visit_in(viewer, v, state)),
            ),
            Reply::Checkout(id) => match state.visits.get(id) {
                Some(v) => json!({
                    "visit": views::visit_in(viewer, v, state),
                    "receipt": if viewer == Viewer::Office { views::receipt_with_sale(state, v) } else { Value::Null },
                    "seq": v.checkout.as_ref().map(|c| c.seq),
                }),
                None => Value::Null,
            },
            Reply::Product(id) => {
                entity("product", state.till.products.get(id).map(views::product))
            }
            Reply::VisitPaid {
                visit_id,
                retried,
                codes,
            } => {
                let mut data = Reply::Checkout(*visit_id).render_for(viewer, state, now);
                let sale = state
                    .till
                    .receipt_of_visit
                    .get(visit_id)
                    .and_then(|r| state.till.receipts.get(r));
                if let (Value::Object(map), Some(sale), Viewer::Office) = (&mut data, sale, viewer)
                {
                    super::money::sale::sold_reply(state, sale, codes, map);
                }
                if let Value::Object(map) = &mut data {
                    map.insert("retried".into(), json!(retried));
                }
                data
            }
            Reply::Receipt { id, retried, codes } => {
                super::money::sale::receipt_reply(state, *id, *retried, codes)
            }
            Reply::Drawer(id) => match state.drawers.get(id) {
                Some(d) => json!({ "drawer": views::drawer(d), "z_report": d.z_report }),
                None => Value::Null,
            },
            Reply::Booking(id) => entity(
                "booking",
                state
                    .bookings
                    .get(id)
                    .and_then(|b| book::views::booking_for(viewer, b, state, now)),
            ),
            Reply::BookingRetry(id) => json!({
                "booking": state
                    .bookings
                    .get(id)
                    .and_then(|b| book::views::booking_for(viewer, b, state, now)),
                "retried": true,
            }),
            Reply::CheckedIn {
                booking_id,
                visit_id,
            } => json!({
                "booking": state
                    .bookings
                    .get(booking_id)
                    .and_then(|b| book::views::booking_for(viewer, b, state, now)),
                "visit": state.visits.get(visit_id).and_then(|v| views::visit_in(viewer, v, state)),
            }),
            Reply::Called { visit_id, skipped } => json!({
                "visit": state.visits.get(visit_id).and_then(|v| views::visit_in(viewer, v, state)),
                "skipped": skipped
                    .iter()
                    .map(|(t, why)| json!({"therapist_id": t, "reason": why}))
                    .collect::<Vec<_>>(),
            }),
            Reply::Customer(id) => entity(
                "customer",
                state
                    .customers
                    .get(id)
                    .filter(|_| viewer == Viewer::Office)
                    .map(super::customers::view),
            ),
            Reply::VisitWithMatches { visit_id, matches } => json!({
                "visit": state.visits.get(visit_id).and_then(|v| views::visit_in(viewer, v, state)),
                "customer_matches": matches
                    .iter()
                    .filter(|_| viewer == Viewer::Office)
                    .filter_map(|id| state.customers.get(id))
                    .map(super::customers::view)
                    .collect::<Vec<_>>(),
            }),
            Reply::Json(v) => v.clone(),
        }
    }
}

pub(super) const MAX_NAME: usize = 64;
pub(super) const MAX_REASON: usize = 200;
pub(super) const MAX_NOTES: usize = 500;
pub(super) const MAX_PHONE: usize = 32;
pub(super) const MAX_SERVICES_PER_VISIT: usize = 8;
const MAX_PRICE_CENTS: i64 = 10_000_000;

pub(super) fn text(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("`{field}` must not be empty")));
    }
    if trimmed.chars().count() > max {
        return Err(invalid(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(invalid(format!("`{field}` contains control characters")));
    }
    Ok(trimmed.to_string())
}

pub(super) fn optional_text(
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

fn reason(value: &Option<String>) -> Result<String, DomainError> {
    match value {
        Some(v) => text("reason", v, MAX_REASON),
        None => Err(invalid("`reason` is required")),
    }
}

fn skill_tags(skills: &[String]) -> Result<Vec<String>, DomainError> {
    if skills.len() > 20 {
        return Err(invalid("`skills` has more than 20 tags"));
    }
    let mut tags = Vec::with_capacity(skills.len());
    for s in skills {
        tags.push(text("skills", s, 32)?);
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

pub(super) fn room(state: &State, id: Id) -> Result<&Room, DomainError> {
    state
        .rooms
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no room {id}")))
}

pub(super) fn service(state: &State, id: Id) -> Result<&Service, DomainError> {
    state
        .services
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no service {id}")))
}

fn staff(state: &State, id: Id) -> Result<&Staff, DomainError> {
    state
        .staff
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no staff member {id}")))
}

fn visit(state: &State, id: Id) -> Result<&Visit, DomainError> {
    state
        .visits
        .get(&id)
        .ok_or_else(|| not_found(format!("there is no visit {id}")))
}

/// An active therapist, for the argument `field` (named when it is not one).
pub(super) fn therapist<'a>(
    state: &'a State,
    id: Id,
    field: &str,
) -> Result<&'a Staff, DomainError> {
    let t = staff(state, id)?;
    if t.role != Role::Therapist || !t.active {
        return Err(invalid(format!(
            "`{field}`: {} is not an active therapist",
            t.name
        )));
    }
    Ok(t)
}

fn check_light_channel(
    state: &State,
    rules: &Rules,
    channel: Option<u16>,
    room_id: Option<Id>,
) -> Result<(), DomainError> {
    let Some(ch) = channel else { return Ok(()) };
    if !rules.light_channels.contains(&ch) {
        return Err(invalid(format!(
            "`light_channel` {ch} is not wired: SPA_LIGHT_CHANNELS defines {}",
            if rules.light_channels.is_empty() {
                "no channels yet: leave it empty, or wire lights with a line like `SPA_LIGHT_CHANNELS=1=17,27,22 2=5,6,13` (channel=red,amber,green BCM pins) in the env file and restart".to_string()
            } else {
                rules
                    .light_channels
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    if let Some(other) = state
        .rooms
        .values()
        .find(|r| r.light_channel == Some(ch) && Some(r.id) != room_id)
    {
        return Err(invalid(format!(
            "`light_channel` {ch} is already used by room {}",
            other.name
        )));
    }
    Ok(())
}

fn check_room_name(state: &State, name: &str, room_id: Option<Id>) -> Result<(), DomainError> {
    if state
        .rooms
        .values()
        .any(|r| r.name.eq_ignore_ascii_case(name) && Some(r.id) != room_id)
    {
        return Err(conflict(format!("a room named {name} already exists")));
    }
    Ok(())
}

fn check_capacity(capacity: u8) -> Result<(), DomainError> {
    if !(1..=2).contains(&capacity) {
        return Err(invalid("`capacity` must be 1 or 2"));
    }
    Ok(())
}

struct ServiceFields {
    duration_min: u32,
    cleanup_min: u32,
    price_cents: i64,
}

fn check_service_fields(f: &ServiceFields) -> Result<(), DomainError> {
    if !(1..=600).contains(&f.duration_min) {
        return Err(invalid("`duration_min` must be between 1 and 600"));
    }
    if f.cleanup_min > 240 {
        return Err(invalid("`cleanup_min` must be between 0 and 240"));
    }
    if !(0..=MAX_PRICE_CENTS).contains(&f.price_cents) {
        return Err(invalid(format!(
            "`price_cents` must be between 0 and {MAX_PRICE_CENTS}"
        )));
    }
    Ok(())
}

fn check_service_name(state: &State, name: &str, id: Option<Id>) -> Result<(), DomainError> {
    if state
        .services
        .values()
        .any(|s| s.active && s.name.eq_ignore_ascii_case(name) && Some(s.id) != id)
    {
        return Err(conflict(format!("a service named {name} already exists")));
    }
    Ok(())
}

fn check_staff_name(state: &State, name: &str, id: Option<Id>) -> Result<(), DomainError> {
    if state
        .staff
        .values()
        .any(|s| s.active && s.name.eq_ignore_ascii_case(name) && Some(s.id) != id)
    {
        return Err(conflict(format!(
            "a staff member named {name} already exists"
        )));
    }
    Ok(())
}

pub(super) fn one(event: Event, reply: Reply) -> Result<Decided, DomainError> {
    Ok(Decided {
        events: vec![event],
        reply,
    })
}

/// The rules for every command. See the module doc.
pub fn decide(
    state: &State,
    actor: &Actor,
    command: &Command,
    now: Now,
    rules: &Rules,
) -> Result<Decided, DomainError> {
    // The coarse role gate, again here so the core is safe on its own.
    // Internal commands never come from the wire (`Command::decode` cannot
    // produce them); the shell sends them on behalf of an actor.
    match actor.role() {
        Some(role) if is_wire(command) && !permissions::allowed(role, command.name()) => {
            return Err(forbidden(format!(
                "a {} may not send {}",
                role.as_str(),
                command.name()
            )));
        }
        None if is_wire(command) => {
            return Err(forbidden("the hub's timers send no wire commands"));
        }
        _ => {}
    }
    let next_id = state.counters.next_id.max(1);
    match command {
        Command::RoomCreate(a) => {
            let name = text("name", &a.name, MAX_NAME)?;
            check_capacity(a.capacity)?;
            check_room_name(state, &name, None)?;
            check_light_channel(state, rules, a.light_channel, None)?;
            let room = Room {
                id: next_id,
                name,
                capacity: a.capacity,
                light_channel: a.light_channel,
                status: RoomStatus::Available,
                status_since: now.ms,
                reason: None,
                cleaning_until: None,
                cleaning_ms: 0,
                occupants: Vec::new(),
                overtime: false,
            };
            let reply = Reply::Room(room.id);
            one(Event::RoomCreated { room }, reply)
        }
        Command::RoomUpdate(a) => {
            let r = room(state, a.room_id)?;
            let name = match &a.name {
                Some(n) => text("name", n, MAX_NAME)?,
                None => r.name.clone(),
            };
            let capacity = a.capacity.unwrap_or(r.capacity);
            check_capacity(capacity)?;
            if usize::from(capacity) < r.occupants.len() {
                return Err(conflict(format!(
                    "room {} holds {} visits now",
                    r.name,
                    r.occupants.len()
                )));
            }
            check_room_name(state, &name, Some(r.id))?;
            let light_channel = a.light_channel.unwrap_or(r.light_channel);
            check_light_channel(state, rules, light_channel, Some(r.id))?;
            one(
                Event::RoomUpdated {
                    room_id: r.id,
                    name,
                    capacity,
                    light_channel,
                },
                Reply::Room(r.id),
            )
        }
        Command::RoomRemove(a) => {
            let r = room(state, a.room_id)?;
            if !r.occupants.is_empty()
                || !matches!(r.status, RoomStatus::Available | RoomStatus::OutOfService)
            {
                return Err(conflict(format!(
                    "room {} is {}; only an available or out-of-service room can be removed",
                    r.name,
                    r.status.as_str()
                )));
            }
            one(
                Event::RoomRemoved { room_id: r.id },
                Reply::Json(json!({ "room_id": r.id })),
            )
        }
        Command::RoomSetStatus(a) => room_set_status(state, actor, a),
        Command::ServiceCreate(a) => {
            let name = text("name", &a.name, MAX_NAME)?;
            check_service_fields(&ServiceFields {
                duration_min: a.duration_min,
                cleanup_min: a.cleanup_min,
                price_cents: a.price_cents,
            })?;
            let turn_weight = Turns::from_weight("turn_weight", a.turn_weight)?;
            check_service_name(state, &name, None)?;
            let skill = optional_text("skill", &a.skill, 32)?;
            let service = Service {
                id: next_id,
                name,
                duration_min: a.duration_min,
                cleanup_min: a.cleanup_min,
                price_cents: a.price_cents,
                skill,
                turn_weight,
                active: true,
            };
            let rate_bp = super::money::tax::rate("tax_rate_bp", a.tax_rate_bp)?;
            let reply = Reply::Service(service.id);
            let mut events = vec![Event::ServiceCreated {
                service: service.clone(),
            }];
            if rate_bp > 0 {
                events.push(Event::ServiceTaxSet {
                    service_id: service.id,
                    rate_bp,
                });
            }
            Ok(Decided { events, reply })
        }
        Command::ServiceUpdate(a) => {
            let s = service(state, a.service_id)?;
            if !s.active {
                return Err(conflict(format!("service {} was removed", s.name)));
            }
            let mut after = s.clone();
            if let Some(n) = &a.name {
                after.name = text("name", n, MAX_NAME)?;
            }
            after.duration_min = a.duration_min.unwrap_or(s.duration_min);
            after.cleanup_min = a.cleanup_min.unwrap_or(s.cleanup_min);
            after.price_cents = a.price_cents.unwrap_or(s.price_cents);
            if let Some(w) = a.turn_weight {
                after.turn_weight = Turns::from_weight("turn_weight", w)?;
            }
            if let Some(skill) = &a.skill {
                after.skill = optional_text("skill", skill, 32)?;
            }
            check_service_fields(&ServiceFields {
                duration_min: after.duration_min,
                cleanup_min: after.cleanup_min,
                price_cents: after.price_cents,
            })?;
            check_service_name(state, &after.name, Some(s.id))?;
            let rate_bp = a
                .tax_rate_bp
                .map(|r| super::money::tax::rate("tax_rate_bp", r))
                .transpose()?;
            let reply = Reply::Service(after.id);
            let mut events = Vec::with_capacity(2);
            if after != *s || rate_bp.is_none() {
                events.push(Event::ServiceUpdated { service: after });
            }
            if let Some(rate_bp) = rate_bp.filter(|r| *r != state.till.service_rate(s.id)) {
                events.push(Event::ServiceTaxSet {
                    service_id: s.id,
                    rate_bp,
                });
            }
            if events.is_empty() {
                events.push(Event::ServiceUpdated { service: s.clone() });
            }
            Ok(Decided { events, reply })
        }
        Command::ServiceRemove(a) => {
            let s = service(state, a.service_id)?;
            if !s.active {
                return Err(conflict(format!("service {} was already removed", s.name)));
            }
            one(
                Event::ServiceRemoved { service_id: s.id },
                Reply::Json(json!({ "service_id": s.id })),
            )
        }
        Command::StaffCreate(a) => {
            let name = text("name", &a.name, MAX_NAME)?;
            if a.pin_hash.is_empty() {
                return Err(invalid("`pin` is required (4 to 12 digits)"));
            }
            if !a.role.is_staff() {
                return Err(invalid("`role` must be admin, cashier or therapist"));
            }
            check_staff_name(state, &name, None)?;
            let skills = skill_tags(&a.skills)?;
            let member = Staff {
                id: next_id,
                name,
                role: a.role,
                pin_hash: a.pin_hash.clone(),
                active: true,
                skills,
                presence: Presence::Off,
                presence_since: now.ms,
                clocked_in_at: None,
                available_since: None,
                turns: Turns::ZERO,
                turns_day: now.day,
                current_visit: None,
            };
            let reply = Reply::Staff(member.id);
            one(Event::StaffCreated { staff: member }, reply)
        }
        Command::StaffUpdate(a) => {
            let s = staff(state, a.staff_id)?;
            if !s.active {
                return Err(conflict(format!("{} was deactivated", s.name)));
            }
            let name = a
                .name
                .as_deref()
                .map(|n| text("name", n, MAX_NAME))
                .transpose()?;
            if let Some(n) = &name {
                check_staff_name(state, n, Some(s.id))?;
            }
            if let Some(role) = a.role {
                if !role.is_staff() {
                    return Err(invalid("`role` must be admin, cashier or therapist"));
                }
                if role != s.role && s.role == Role::Therapist && s.presence != Presence::Off {
                    return Err(conflict(format!(
                        "{} is clocked in; clock out before changing the role",
                        s.name
                    )));
                }
            }
            let skills = a.skills.as_deref().map(skill_tags).transpose()?;
            let reply = Reply::Staff(s.id);
            one(
                Event::StaffUpdated {
                    staff_id: s.id,
                    name,
                    role: a.role,
                    pin_hash: a.pin_hash.clone(),
                    skills,
                },
                reply,
            )
        }
        Command::StaffDeactivate(a) => {
            let s = staff(state, a.staff_id)?;
            if !s.active {
                return Err(conflict(format!("{} is already deactivated", s.name)));
            }
            if matches!(s.presence, Presence::Called | Presence::InSession) {
                return Err(conflict(format!(
                    "{} is {}; finish or undo that visit first",
                    s.name,
                    presence_words(s.presence)
                )));
            }
            one(
                Event::StaffDeactivated { staff_id: s.id },
                Reply::Json(json!({ "staff_id": s.id })),
            )
        }
        Command::DevicePair(a) => {
            if a.role != Role::Monitor {
                return Err(invalid("`role` must be monitor"));
            }
            let name = text("name", &a.name, MAX_NAME)?;
            if a.token_hash.is_empty() {
                return Err(invalid("device token missing"));
            }
            let device = Device {
                id: next_id,
                name,
                role: a.role,
                token_hash: a.token_hash.clone(),
                revoked: false,
                paired_at: now.ms,
            };
            let reply = Reply::Device(device.id);
            one(Event::DevicePaired { device }, reply)
        }
        Command::DeviceRevoke(a) => {
            let d = state
                .devices
                .get(&a.device_id)
                .ok_or_else(|| not_found(format!("there is no device {}", a.device_id)))?;
            if d.revoked {
                return Err(conflict(format!("device {} is already revoked", d.name)));
            }
            one(
                Event::DeviceRevoked { device_id: d.id },
                Reply::Json(json!({ "device_id": d.id })),
            )
        }
        Command::ClockIn(a) | Command::ClockOut(a) | Command::Break(a) | Command::Resume(a) => {
            presence(state, actor, command, a)
        }
        Command::VisitCreate(a) => visit_create(state, a, now),
        Command::VisitCall(a) => super::visits::call(state, actor, a, now, rules),
        Command::VisitStart(a) => super::visits::start(state, actor, a.visit_id, now),
        Command::VisitFinish(a) => super::visits::finish(state, actor, a.visit_id, now),
        Command::VisitExtend(a) => super::visits::extend(state, actor, a, now),
        Command::VisitUndo(a) => super::visits::undo(state, actor, a.visit_id, now, rules),
        Command::VisitLeave(a) => super::visits::leave(state, a, now),
        Command::VisitVoid(a) => super::visits::void(state, actor, a, now),
        Command::VisitCheckout(a) => super::checkout::checkout(state, actor, a, now, rules),
        Command::VisitRefund(a) => super::checkout::refund(state, actor, a, now),
        Command::VisitRetip(a) => super::checkout::retip(state, actor, a),
        Command::ProductCreate(a) => super::money::retail::product_create(state, a),
        Command::ProductUpdate(a) => super::money::retail::product_update(state, a),
        Command::ProductStock(a) => super::money::retail::product_stock(state, a),
        Command::GiftcardIssue(a) => {
            super::money::sale::giftcard_issue(state, actor, a, now, rules)
        }
        Command::GiftcardBalance(a) => super::money::retail::giftcard_balance(state, a),
        Command::SaleCheckout(a) => super::money::sale::sale_checkout(state, actor, a, now, rules),
        Command::SaleRefund(a) => super::money::sale::sale_refund(state, actor, a, now),
        Command::DrawerOpen(a) => super::checkout::drawer_open(state, actor, a, now),
        Command::DrawerMove(a) => super::checkout::drawer_move(state, actor, a, now),
        Command::DrawerClose(a) => super::checkout::drawer_close(state, actor, a),
        Command::SessionOpen {
            staff_id,
            token_hash,
        } => {
            let s = staff(state, *staff_id)?;
            if !s.active {
                return Err(forbidden(format!("{} was deactivated", s.name)));
            }
            let session = Session {
                token_hash: token_hash.clone(),
                staff_id: s.id,
                role: s.role,
                expires_at: now.ms.saturating_add(rules.session_ttl_ms),
            };
            let reply = Reply::Json(
                json!({ "role": s.role, "expires_at": session.expires_at, "staff_id": s.id }),
            );
            one(Event::SessionOpened { session }, reply)
        }
        Command::SessionClose { token_hash } => {
            if !state.sessions.contains_key(token_hash) {
                return Err(not_found("no such session"));
            }
            one(
                Event::SessionClosed {
                    token_hash: token_hash.clone(),
                },
                Reply::Json(json!({})),
            )
        }
        Command::CleanupElapsed { room_id } => {
            let r = room(state, *room_id)?;
            if r.status != RoomStatus::Cleaning || r.cleaning_until.is_none() {
                return Err(conflict("the room is no longer in a timed cleanup"));
            }
            one(
                Event::RoomStatusSet {
                    room_id: r.id,
                    status: RoomStatus::Available,
                    reason: None,
                    cleaning_until: None,
                    cleaning_ms: 0,
                },
                Reply::Json(json!({})),
            )
        }
        Command::ScheduleSet(a) => book::decide::schedule_set(state, a, now, rules),
        Command::BlockCreate(a) => book::decide::block_create(state, actor, a, rules),
        Command::BlockRemove(a) => book::decide::block_remove(state, actor, a),
        Command::BookingAvailability(a) => book::availability::availability(state, a, now, rules),
        Command::BookingCreate(a) => book::decide::booking_create(state, actor, a, now, rules),
        Command::BookingMove(a) => book::decide::booking_move(state, a, now, rules),
        Command::BookingCancel(a) => book::decide::booking_cancel(state, actor, a, now, rules),
        Command::BookingCheckIn(a) => book::decide::booking_check_in(state, a, now),
        Command::BookingNoShow(a) => book::decide::booking_no_show(state, a, now),
        Command::BookingList(a) => book::decide::booking_list(state, actor, a, now, rules),
        Command::NoShowDue {
            booking_id,
            start_ms,
        } => book::decide::no_show_due(state, *booking_id, *start_ms),
        Command::BookingDue { booking_id } => book::decide::booking_due(state, *booking_id),
        Command::ArchiveDue => {
            let archive = super::archive::due(state, now);
            let receipt_ids = super::archive::receipts_due(state, now);
            let mut events: Vec<Event> = archive
                .map(|archive| Event::Archived { archive })
                .into_iter()
                .collect();
            if !receipt_ids.is_empty() {
                events.push(Event::ReceiptsArchived { receipt_ids });
            }
            if events.is_empty() {
                return Err(conflict("nothing to archive"));
            }
            Ok(Decided {
                events,
                reply: Reply::Json(json!({})),
            })
        }
        Command::ClockSet(a) => clock_set(a, now),
        Command::CustomerCreate(a) => super::customers::create(state, a, now),
        Command::CustomerUpdate(a) => super::customers::update(state, a),
        Command::CustomerSearch(a) => super::customers::search_reply(state, a),
        Command::CustomerHistory(a) => super::customers::history(state, a),
        Command::CustomerMerge(a) => super::customers::merge(state, a),
        Command::CustomerForget(a) => super::customers::forget(state, a),
        Command::VisitUpdate(a) => super::customers::visit_update(state, actor, a, now),
        Command::OvertimeReached {
            visit_id,
            planned_end,
        } => {
            let v = visit(state, *visit_id)?;
            if v.state != VisitState::InService || v.planned_end != Some(*planned_end) || v.overtime
            {
                return Err(conflict(
                    "the session was extended, finished or already flagged",
                ));
            }
            one(
                Event::VisitOvertime { visit_id: v.id },
                Reply::Json(json!({})),
            )
        }
    }
}

/// The longest `clock.set` may move the floor's time forward at once.
const CLOCK_SET_MAX_MS: i64 = 400 * 24 * 3_600_000;

/// `clock.set`: only while the system clock is not synchronised, only
/// forward (the floor's `now` is never behind the newest event while
/// unsynchronised, so forward of it is also past the last event), and by at
/// most 400 days (a device with a wrong year is not believed).
fn clock_set(a: &super::command::ClockSet, now: Now) -> Result<Decided, DomainError> {
    if a.synchronized {
        return Err(conflict(
            "the hub's clock is synchronised (NTP): it keeps its own time",
        ));
    }
    if a.now_ms <= now.ms {
        return Err(conflict(format!(
            "the hub's clock may only move forward: it is already {} s past that time (the newest event is no later than the hub's time)",
            (now.ms - a.now_ms) / 1000
        )));
    }
    if a.now_ms - now.ms > CLOCK_SET_MAX_MS {
        return Err(invalid(
            "that time is more than 400 days ahead of the hub's: check the device's clock",
        ));
    }
    one(
        Event::ClockSet {
            from_ms: now.ms,
            to_ms: a.now_ms,
        },
        Reply::Json(json!({ "from_ms": now.ms, "to_ms": a.now_ms })),
    )
}

fn is_wire(command: &Command) -> bool {
    !matches!(
        command,
        Command::SessionOpen { .. }
            | Command::SessionClose { .. }
            | Command::CleanupElapsed { .. }
            | Command::OvertimeReached { .. }
            | Command::NoShowDue { .. }
            | Command::BookingDue { .. }
            | Command::ArchiveDue
    )
}

pub(super) fn presence_words(p: Presence) -> &'static str {
    match p {
        Presence::Off => "clocked out",
        Presence::Available => "available",
        Presence::Break => "on a break",
        Presence::Called => "called to a visit",
        Presence::InSession => "in a session",
    }
}

fn room_set_status(
    state: &State,
    actor: &Actor,
    a: &RoomSetStatus,
) -> Result<Decided, DomainError> {
    let r = room(state, a.room_id)?;
    let office = matches!(actor.role(), Some(Role::Admin | Role::Cashier));
    // Out of service and back: the same roles both ways.
    if r.status == RoomStatus::OutOfService && a.status != RoomStatus::OutOfService && !office {
        return Err(forbidden(
            "only an admin or a cashier may put a room back in service",
        ));
    }
    let mut events = Vec::new();
    let reason = match a.status {
        RoomStatus::OutOfService => {
            if !office {
                return Err(forbidden(
                    "only an admin or a cashier may take a room out of service",
                ));
            }
            Some(reason(&a.reason)?)
        }
        _ => optional_text("reason", &a.reason, MAX_REASON)?,
    };
    let allowed = match (r.status, a.status) {
        (RoomStatus::Cleaning | RoomStatus::OutOfService, RoomStatus::Available) => true,
        (RoomStatus::Available, RoomStatus::Cleaning) => true,
        (
            RoomStatus::Available | RoomStatus::Held | RoomStatus::Cleaning,
            RoomStatus::OutOfService,
        ) => true,
        (_, RoomStatus::Held | RoomStatus::Occupied) => {
            return Err(invalid(
                "`status` must be available, cleaning or out_of_service (held and occupied follow visits)",
            ))
        }
        _ => false,
    };
    if !allowed {
        return Err(conflict(format!(
            "room {} is {} and cannot become {}",
            r.name,
            r.status.as_str(),
            a.status.as_str()
        )));
    }
    // A held room taken out of service sends its called visits back to the queue.
    for visit_id in &r.occupants {
        events.push(Event::VisitCallUndone {
            visit_id: *visit_id,
        });
    }
    events.push(Event::RoomStatusSet {
        room_id: r.id,
        status: a.status,
        reason,
        cleaning_until: None,
        cleaning_ms: 0,
    });
    Ok(Decided {
        events,
        reply: Reply::Room(r.id),
    })
}

fn presence(
    state: &State,
    actor: &Actor,
    command: &Command,
    a: &TherapistRef,
) -> Result<Decided, DomainError> {
    let target = match (a.therapist_id, actor) {
        (
            Some(id),
            Actor::Staff {
                id: me,
                role: Role::Therapist,
            },
        ) if id != *me => {
            return Err(forbidden("a therapist may only change their own status"));
        }
        (Some(id), _) => id,
        (
            None,
            Actor::Staff {
                id,
                role: Role::Therapist,
            },
        ) => *id,
        (None, _) => return Err(invalid("`therapist_id` is required")),
    };
    let t = therapist(state, target, "therapist_id")?;
    let (from_ok, to): (&[Presence], Presence) = match command {
        Command::ClockIn(_) => (&[Presence::Off], Presence::Available),
        Command::ClockOut(_) => (&[Presence::Available, Presence::Break], Presence::Off),
        Command::Break(_) => (&[Presence::Available], Presence::Break),
        _ => (&[Presence::Break], Presence::Available),
    };
    if !from_ok.contains(&t.presence) {
        let detail = match (command, t.presence) {
            (Command::ClockOut(_), Presence::Called | Presence::InSession) => {
                let number = t
                    .current_visit
                    .and_then(|v| state.visits.get(&v))
                    .map(|v| format!(" ({})", v.number))
                    .unwrap_or_default();
                format!(
                    "{} cannot clock out while {}{number}; finish or undo it first",
                    t.name,
                    presence_words(t.presence)
                )
            }
            _ => format!(
                "{} is {}; {} is not possible now",
                t.name,
                presence_words(t.presence),
                command.name()
            ),
        };
        return Err(conflict(detail));
    }
    one(
        Event::PresenceChanged {
            therapist_id: t.id,
            presence: to,
        },
        Reply::Therapist(t.id),
    )
}

fn visit_create(state: &State, a: &VisitCreate, now: Now) -> Result<Decided, DomainError> {
    let customer = match a.customer_id {
        Some(id) => Some(super::customers::live(state, id, "customer_id")?),
        None => None,
    };
    let customer_name = match customer {
        Some(c) if a.customer_name.trim().is_empty() => c.name.clone(),
        _ => a.customer_name.clone(),
    };
    let phone = match (&a.phone, customer) {
        (Some(p), _) if !p.trim().is_empty() => Some(p.clone()),
        (_, Some(c)) => c.phone.clone(),
        _ => None,
    };
    let v = build_visit(
        state,
        NewVisit {
            customer_name,
            phone,
            notes: a.notes.clone(),
            service_ids: a.service_ids.clone(),
            requested_therapist: a.requested_therapist_id,
            token_hash: a.token_hash.clone(),
            allow_removed_services: false,
        },
        now,
    )?;
    let mut matches = Vec::new();
    let mut events = vec![Event::VisitCreated { visit: v.clone() }];
    match customer {
        Some(c) => events.push(Event::CustomerLinked {
            customer_id: c.id,
            visit_id: Some(v.id),
            booking_id: None,
        }),
        None => {
            if let Some(p) = &v.phone {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                matches = super::customers::with_phone(state, &digits);
            }
        }
    }
    Ok(Decided {
        events,
        reply: Reply::VisitWithMatches {
            visit_id: v.id,
            matches,
        },
    })
}

/// What a new visit is made of (`visit.create`, or a booking's check-in).
pub(super) struct NewVisit {
    pub customer_name: String,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub service_ids: Vec<Id>,
    pub requested_therapist: Option<Id>,
    pub token_hash: String,
    /// A booking made before a service was withdrawn still gets it.
    pub allow_removed_services: bool,
}

/// A new visit, checked, with the next ticket number of the day and the
/// services' value captured now.
pub(super) fn build_visit(state: &State, a: NewVisit, now: Now) -> Result<Visit, DomainError> {
    let customer_name = text("customer_name", &a.customer_name, MAX_NAME)?;
    if a.service_ids.is_empty() {
        return Err(invalid("`service_ids` must name at least one service"));
    }
    if a.service_ids.len() > MAX_SERVICES_PER_VISIT {
        return Err(invalid(format!(
            "`service_ids` may name at most {MAX_SERVICES_PER_VISIT} services"
        )));
    }
    let mut services_cents: i64 = 0;
    let mut minutes: u32 = 0;
    let mut cleanup: u32 = 0;
    for id in &a.service_ids {
        let s = service(state, *id)?;
        if !s.active && !a.allow_removed_services {
            return Err(invalid(format!(
                "`service_ids`: service {} is no longer offered",
                s.name
            )));
        }
        services_cents = services_cents
            .checked_add(s.price_cents)
            .ok_or_else(|| invalid("`service_ids`: the total price is too large"))?;
        minutes = minutes.saturating_add(s.duration_min);
        cleanup = cleanup.max(s.cleanup_min);
    }
    if let Some(t) = a.requested_therapist {
        let t = therapist(state, t, "requested_therapist_id")?;
        let probe = Visit {
            service_ids: a.service_ids.clone(),
            ..blank_visit()
        };
        let needed = rotation::skills_needed(state, &probe);
        if !rotation::has_skills(t, &needed) {
            return Err(invalid(format!(
                "`requested_therapist_id`: {} does not have the skills these services need ({})",
                t.name,
                needed.join(", ")
            )));
        }
    }
    if a.token_hash.is_empty() {
        return Err(invalid("customer token missing"));
    }
    // The spa's day never goes back: a wall clock that jumps back across
    // midnight keeps counting on the latest day, so numbers stay unique.
    let day = now.day.max(state.counters.ticket_day);
    let number_today = if state.counters.ticket_day == day {
        state.counters.tickets_today + 1
    } else {
        1
    };
    Ok(Visit {
        id: state.counters.next_id.max(1),
        number: format!("A-{number_today:03}"),
        day,
        customer_name,
        phone: optional_text("phone", &a.phone, MAX_PHONE)?,
        notes: optional_text("notes", &a.notes, MAX_NOTES)?,
        service_ids: a.service_ids,
        requested_therapist: a.requested_therapist,
        created_at: now.ms,
        customer_token_hash: a.token_hash,
        services_cents,
        service_minutes: minutes,
        cleanup_min: cleanup,
        ..blank_visit()
    })
}

pub(super) fn blank_visit() -> Visit {
    Visit {
        id: 0,
        number: String::new(),
        day: 0,
        customer_name: String::new(),
        phone: None,
        notes: None,
        service_ids: Vec::new(),
        requested_therapist: None,
        state: VisitState::Waiting,
        therapist: None,
        room: None,
        created_at: 0,
        called_at: None,
        started_at: None,
        planned_end: None,
        finished_at: None,
        ended_at: None,
        extended_min: 0,
        turn_taken: Turns::ZERO,
        override_reason: None,
        reason: None,
        overtime: false,
        customer_token_hash: String::new(),
        services_cents: 0,
        service_minutes: 0,
        cleanup_min: 0,
        checkout: None,
        refunds: Vec::new(),
    }
}

pub(super) fn visit_ref(state: &State, id: Id) -> Result<&Visit, DomainError> {
    visit(state, id)
}

pub(super) fn reason_text(value: &str) -> Result<String, DomainError> {
    text("reason", value, MAX_REASON)
}

pub(super) fn optional_reason(value: &Option<String>) -> Result<Option<String>, DomainError> {
    optional_text("override_reason", value, MAX_REASON)
}

pub(super) fn room_ref(state: &State, id: Id) -> Result<&Room, DomainError> {
    room(state, id)
}

pub(super) fn therapist_ref<'a>(
    state: &'a State,
    id: Id,
    field: &str,
) -> Result<&'a Staff, DomainError> {
    therapist(state, id, field)
}
