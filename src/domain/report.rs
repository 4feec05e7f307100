//! The day report, computed from the event log alone: replay the log up to
//! the end of the day (stopping at the first event of a later day), and add
//! up what happened on that day. The same log gives the same numbers after a
//! restart and after any later day's activity.

use std::collections::BTreeMap;

use serde::Serialize;

use super::event::{Event, EventRecord};
use super::money::{Method, PerMethod};
use super::state::{State, VisitState};
use super::{Id, Role};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Count {
    pub count: u64,
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceLine {
    pub service_id: Id,
    pub name: String,
    pub count: u64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TherapistLine {
    pub therapist_id: Id,
    pub name: String,
    pub tips_cents: i64,
    pub turns: f64,
    pub sessions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomLine {
    pub room_id: Id,
    pub name: String,
    pub sessions: u64,
    pub occupied_min: f64,
    pub utilisation_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrawerLine {
    pub drawer_id: Id,
    pub owner_id: Option<Id>,
    pub expected: PerMethod,
    pub counted: PerMethod,
    pub variance: PerMethod,
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    /// `yyyymmdd`.
    pub day: u32,
    pub visits_created: u64,
    /// Visits created that day, by their state at the end of the day.
    pub visits_by_state: BTreeMap<String, u64>,
    pub services_sold: Vec<ServiceLine>,
    /// Money taken per method (cash net of change), before refunds.
    pub revenue_by_method: PerMethod,
    pub revenue_cents: i64,
    pub services_cents: i64,
    pub discounts: Count,
    pub tips: Count,
    pub refunds: Count,
    pub refunds_by_method: PerMethod,
    pub therapists: Vec<TherapistLine>,
    pub average_wait_min: Option<f64>,
    pub average_service_min: Option<f64>,
    pub rooms: Vec<RoomLine>,
    pub drawers: Vec<DrawerLine>,
    /// The first and last event of the day (ms), the span utilisation uses.
    pub first_event_at: Option<i64>,
    pub last_event_at: Option<i64>,
    pub events: u64,
}

fn average(xs: &[i64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().map(|x| *x as f64).sum::<f64>() / xs.len() as f64 / 60_000.0)
}

/// The report for `day` (`yyyymmdd`); `day_of` maps an event's `at` to its
/// local day.
pub fn day_report(
    events: impl IntoIterator<Item = EventRecord>,
    day: u32,
    day_of: impl Fn(i64) -> u32,
) -> DayReport {
    let mut state = State::default();
    let mut waits = Vec::new();
    let mut service_times = Vec::new();
    let mut revenue = PerMethod::default();
    let mut discounts = Count::default();
    let mut tips = Count::default();
    let mut refunds = Count::default();
    let mut refunds_by_method = PerMethod::default();
    let mut services_cents = 0i64;
    let mut sold: BTreeMap<Id, (u64, i64)> = BTreeMap::new();
    let mut paid_visits: Vec<Id> = Vec::new();
    let mut sessions_by_therapist: BTreeMap<Id, u64> = BTreeMap::new();
    let mut occupied: BTreeMap<Id, (u64, i64)> = BTreeMap::new();
    let mut drawers = Vec::new();
    let (mut first, mut last) = (None, None);
    let mut count = 0u64;

    for record in events {
        let d = day_of(record.at);
        if d > day {
            break;
        }
        if d == day {
            count += 1;
            first = first.or(Some(record.at));
            last = Some(record.at);
            match &record.event {
                Event::VisitCalled { visit_id, .. } => {
                    if let Some(v) = state.visits.get(visit_id) {
                        waits.push(record.at - v.created_at);
                    }
                }
                Event::VisitFinished { visit_id, .. } => {
                    if let Some(v) = state.visits.get(visit_id) {
                        if let Some(start) = v.started_at {
                            let ms = (record.at - start).max(0);
                            service_times.push(ms);
                            if let Some(room) = v.room {
                                let e = occupied.entry(room).or_default();
                                e.0 += 1;
                                e.1 += ms;
                            }
                        }
                        if let Some(t) = v.therapist {
                            *sessions_by_therapist.entry(t).or_default() += 1;
                        }
                    }
                }
                Event::VisitCheckedOut { visit_id, checkout } => {
                    for p in &checkout.payments {
                        revenue.add(p.method, p.amount_cents);
                    }
                    revenue.add(Method::Cash, -checkout.change_cents);
                    services_cents += checkout.services_cents;
                    if checkout.discount_cents > 0 {
                        discounts.count += 1;
                        discounts.cents += checkout.discount_cents;
                    }
                    if checkout.tip_cents > 0 {
                        tips.count += 1;
                        tips.cents += checkout.tip_cents;
                    }
                    paid_visits.push(*visit_id);
                    if let Some(v) = state.visits.get(visit_id) {
                        for sid in &v.service_ids {
                            let price = state.services.get(sid).map(|s| s.price_cents).unwrap_or(0);
                            let e = sold.entry(*sid).or_default();
                            e.0 += 1;
                            e.1 += price;
                        }
                    }
                }
                Event::VisitRefunded { refund, .. } => {
                    refunds.count += 1;
                    refunds.cents += refund.amount_cents;
                    refunds_by_method.add(refund.method, refund.amount_cents);
                }
                Event::DrawerClosed {
                    drawer_id,
                    z_report,
                    forced,
                } => drawers.push(DrawerLine {
                    drawer_id: *drawer_id,
                    owner_id: state.drawers.get(drawer_id).and_then(|d| d.owner),
                    expected: z_report.expected,
                    counted: z_report.counted,
                    variance: z_report.variance,
                    forced: *forced,
                }),
                _ => {}
            }
        }
        state.apply(&record);
    }

    let mut visits_by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut visits_created = 0;
    for v in state.visits.values().filter(|v| v.day == day) {
        visits_created += 1;
        *visits_by_state
            .entry(v.state.as_str().to_string())
            .or_default() += 1;
    }
    for s in [
        VisitState::Waiting,
        VisitState::Called,
        VisitState::InService,
        VisitState::AwaitingPayment,
        VisitState::Closed,
        VisitState::Left,
        VisitState::Voided,
    ] {
        visits_by_state.entry(s.as_str().to_string()).or_default();
    }
    // Tips as finally split (a retip that day or before the end of it counts).
    let mut tips_by: BTreeMap<Id, i64> = BTreeMap::new();
    for id in &paid_visits {
        if let Some(c) = state.visits.get(id).and_then(|v| v.checkout.as_ref()) {
            for t in &c.tips {
                *tips_by.entry(t.therapist_id).or_default() += t.amount_cents;
            }
        }
    }
    let therapists = state
        .staff
        .values()
        .filter(|s| s.role == Role::Therapist)
        .filter_map(|s| {
            let line = TherapistLine {
                therapist_id: s.id,
                name: s.name.clone(),
                tips_cents: tips_by.get(&s.id).copied().unwrap_or(0),
                turns: s.turns_on(day),
                sessions: sessions_by_therapist.get(&s.id).copied().unwrap_or(0),
            };
            (line.tips_cents != 0 || line.turns != 0.0 || line.sessions != 0).then_some(line)
        })
        .collect();
    let span_ms = match (first, last) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 0.0,
    };
    let rooms = state
        .rooms
        .values()
        .map(|r| {
            let (sessions, ms) = occupied.get(&r.id).copied().unwrap_or((0, 0));
            RoomLine {
                room_id: r.id,
                name: r.name.clone(),
                sessions,
                occupied_min: ms as f64 / 60_000.0,
                utilisation_percent: if span_ms > 0.0 {
                    (100.0 * ms as f64 / span_ms).min(100.0)
                } else {
                    0.0
                },
            }
        })
        .collect();
    let services_sold = sold
        .into_iter()
        .map(|(id, (count, cents))| ServiceLine {
            service_id: id,
            name: state
                .services
                .get(&id)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            count,
            revenue_cents: cents,
        })
        .collect();
    DayReport {
        day,
        visits_created,
        visits_by_state,
        services_sold,
        revenue_cents: revenue.total(),
        revenue_by_method: revenue,
        services_cents,
        discounts,
        tips,
        refunds,
        refunds_by_method,
        therapists,
        average_wait_min: average(&waits),
        average_service_min: average(&service_times),
        rooms,
        drawers,
        first_event_at: first,
        last_event_at: last,
        events: count,
    }
}

/// The report as CSV rows `section,key,value` (with a header row).
pub fn to_csv(r: &DayReport) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut row = |section: &str, key: &str, value: String| {
        w.write_record([section, key, value.as_str()])
            .map_err(|e| e.to_string())
    };
    row("section", "key", "value".into())?;
    row(
        "day",
        "date",
        format!(
            "{}-{:02}-{:02}",
            r.day / 10_000,
            r.day / 100 % 100,
            r.day % 100
        ),
    )?;
    row("visits", "created", r.visits_created.to_string())?;
    for (state, n) in &r.visits_by_state {
        row("visits_by_state", state, n.to_string())?;
    }
    for s in &r.services_sold {
        row("services_sold", &s.name, s.count.to_string())?;
        row(
            "services_revenue_cents",
            &s.name,
            s.revenue_cents.to_string(),
        )?;
    }
    for m in Method::ALL {
        row(
            "revenue_cents",
            m.as_str(),
            r.revenue_by_method.get(m).to_string(),
        )?;
    }
    row("revenue_cents", "total", r.revenue_cents.to_string())?;
    row("services_cents", "total", r.services_cents.to_string())?;
    row("discounts", "count", r.discounts.count.to_string())?;
    row("discounts", "cents", r.discounts.cents.to_string())?;
    row("tips", "count", r.tips.count.to_string())?;
    row("tips", "cents", r.tips.cents.to_string())?;
    row("refunds", "count", r.refunds.count.to_string())?;
    row("refunds", "cents", r.refunds.cents.to_string())?;
    for m in Method::ALL {
        row(
            "refunds_cents",
            m.as_str(),
            r.refunds_by_method.get(m).to_string(),
        )?;
    }
    for t in &r.therapists {
        row("tips_cents", &t.name, t.tips_cents.to_string())?;
        row("turns", &t.name, t.turns.to_string())?;
        row("sessions", &t.name, t.sessions.to_string())?;
    }
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_default();
    row("average_min", "wait", opt(r.average_wait_min))?;
    row("average_min", "service", opt(r.average_service_min))?;
    for room in &r.rooms {
        row(
            "room_occupied_min",
            &room.name,
            format!("{:.1}", room.occupied_min),
        )?;
        row(
            "room_utilisation_percent",
            &room.name,
            format!("{:.1}", room.utilisation_percent),
        )?;
    }
    for d in &r.drawers {
        for m in Method::ALL {
            row(
                &format!("drawer_{}_variance_cents", d.drawer_id),
                m.as_str(),
                d.variance.get(m).to_string(),
            )?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
