//! `spa-hub bench year`: a database holding N days of a busy spa (about 300
//! walk-ins and 200 bookings a day, each served and paid, through the real
//! `decide`), then what a spa running for years would feel: the size on
//! disk, the daemon's start-up to ready and its memory, a staff snapshot's
//! size and build time, and `report.day` for the first day and the last.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bench::rss_kb;
use crate::domain::state::{RecordKey, RoomStatus, VisitState};
use crate::domain::views::{self, Viewer};
use crate::domain::{decide, Actor, Command, EventRecord, Id, Now, Rules, State};
use crate::store::Store;

const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
/// UTC midnight `days` days before today: the year ends yesterday, so the
/// daemon, on the real clock, sees it as a spa that ran until last night.
pub(crate) fn first_day0(days: u32) -> i64 {
    let today0 = jiff::Timestamp::now().as_millisecond().div_euclid(DAY_MS) * DAY_MS;
    today0 - i64::from(days) * DAY_MS
}

pub(crate) fn yyyymmdd(ms: i64) -> u32 {
    crate::domain::book::time::local_of(&jiff::tz::TimeZone::UTC, ms).0
}

pub(crate) fn cmd(name: &str, args: serde_json::Value) -> Option<Command> {
    Command::decode(name, args).ok()
}

/// Decides and applies as the admin; the records the batch touched are
/// collected for the store.
pub(crate) struct Builder {
    pub(crate) state: State,
    pub(crate) rules: Rules,
    pub(crate) log: Vec<EventRecord>,
    pub(crate) touched: std::collections::BTreeSet<RecordKey>,
    pub(crate) archived: Vec<crate::domain::state::Record>,
    pub(crate) tokens: u64,
}

impl Builder {
    /// The floor every bench spa starts with: one 30-minute service, an
    /// open drawer, 30 rooms and 30 therapists. Returns the service and the
    /// therapists' ids.
    pub(crate) fn set_up_floor(&mut self, t0: i64) -> (Id, Vec<Id>) {
        let setup = [
            cmd(
                "service.create",
                json!({"name": "Thirty", "duration_min": 30, "cleanup_min": 0, "price_cents": 4500}),
            ),
            cmd("drawer.open", json!({"float_cents": 0})),
        ];
        for c in setup.into_iter().flatten() {
            self.run(c, t0);
        }
        let service = self.state.services.keys().next().copied().unwrap_or(0);
        for i in 0..30 {
            if let Some(c) = cmd("room.create", json!({"name": format!("Room {i}")})) {
                self.run(c, t0);
            }
        }
        let mut therapists = Vec::new();
        for i in 0..30 {
            let mut c = cmd(
                "staff.create",
                json!({"name": format!("Therapist {i}"), "role": "therapist"}),
            );
            if let Some(Command::StaffCreate(s)) = &mut c {
                s.pin_hash = "$argon2id$bench".into();
            }
            if let Some(c) = c {
                self.run(c, t0);
                therapists.push(self.state.counters.next_id - 1);
            }
        }
        (service, therapists)
    }

    pub(crate) fn run(&mut self, c: Command, ms: i64) -> Option<serde_json::Value> {
        let now = Now {
            ms,
            day: yyyymmdd(ms),
        };
        let d = decide(&self.state, &Actor::AdminToken, &c, now, &self.rules).ok()?;
        for event in d.events {
            self.touched.extend(self.state.touched(&event));
            if let Some((records, _)) = crate::domain::archive::moved_out(&self.state, &event) {
                self.archived.extend(records);
            }
            let record = EventRecord {
                seq: self.state.seq() + 1,
                at: ms,
                actor: Actor::AdminToken,
                event,
            };
            self.state.apply(&record);
            self.log.push(record);
        }
        Some(d.reply.render(&self.state, now))
    }

    pub(crate) fn token(&mut self) -> String {
        self.tokens += 1;
        format!("bench-year-token-{}", self.tokens)
    }

    pub(crate) fn flush(&mut self, store: &Store) -> Result<(), String> {
        let records: Vec<_> = self
            .touched
            .iter()
            .map(|k| (k.clone(), self.state.record(k)))
            .collect();
        store
            .commit_sealed(&self.log, &records, &self.archived, Some(&self.state))
            .map_err(|e| e.to_string())?;
        // The old events packed, as the writer's passes would have.
        store.pack_events(usize::MAX).map_err(|e| e.to_string())?;
        self.archived.clear();
        self.log.clear();
        self.touched.clear();
        Ok(())
    }

    /// Calls, serves and checks out a waiting visit (with a given therapist
    /// and room when it is a booked one); the room is made ready after.
    pub(crate) fn serve(&mut self, visit: u64, ms: i64) -> bool {
        let Some(called) = self.run(
            Command::VisitCall(crate::domain::command::VisitCall {
                visit_id: Some(visit),
                ..Default::default()
            }),
            ms,
        ) else {
            return false;
        };
        let room = called["visit"]["room_id"].as_u64().unwrap_or(0);
        for name in ["visit.start", "visit.finish"] {
            if let Some(c) = cmd(name, json!({"visit_id": visit})) {
                self.run(c, ms);
            }
        }
        if self.state.rooms.get(&room).map(|r| r.status) == Some(RoomStatus::Cleaning) {
            if let Some(c) = cmd(
                "room.set_status",
                json!({"room_id": room, "status": "available"}),
            ) {
                self.run(c, ms);
            }
        }
        let total = self
            .state
            .visits
            .get(&visit)
            .map_or(0, |v| v.services_cents);
        let pay = json!({"visit_id": visit, "request_id": format!("pay-{visit}"), "tip_cents": 500,
            "payments": [{"method": "card", "amount_cents": total + 500}]});
        cmd("visit.checkout", pay)
            .and_then(|c| self.run(c, ms))
            .is_some()
    }
}

pub fn build(dir: &std::path::Path, days: u32) -> Result<Built, String> {
    let epoch_day0 = first_day0(days);
    let store = Store::open(dir, 64 << 20).map_err(|e| e.to_string())?;
    let mut b = Builder {
        state: State::default(),
        rules: Rules {
            booking_horizon_days: 400,
            ..Rules::default()
        },
        log: Vec::new(),
        touched: Default::default(),
        archived: Vec::new(),
        tokens: 0,
    };
    let t0 = epoch_day0 + 6 * 60 * MIN_MS;
    let (service, therapists) = b.set_up_floor(t0);
    let (mut served, mut booked) = (0u64, 0u64);
    let mut first_snapshot = None;
    for d in 0..i64::from(days) {
        let day0 = epoch_day0 + d * DAY_MS;
        // The writer's archive pass, as it runs each hour (and again at once
        // while there is more than one event's worth).
        while b.run(Command::ArchiveDue, day0 + 3 * 60 * MIN_MS).is_some() {}
        let date = crate::domain::book::time::date_words(yyyymmdd(day0));
        let morning = day0 + 7 * 60 * MIN_MS;
        for t in &therapists {
            let c = cmd("therapist.clock_in", json!({"therapist_id": t}));
            if let Some(c) = c {
                b.run(c, morning);
            }
            let s = cmd(
                "schedule.set",
                json!({"therapist_id": t, "date": date, "start": "07:00", "end": "21:00"}),
            );
            if let Some(c) = s {
                b.run(c, morning - DAY_MS / 2);
            }
        }
        // 200 bookings for the day, made the evening before.
        let mut bookings = Vec::new();
        for k in 0..200i64 {
            let minutes = 8 * 60 + (k * 37 % 48) * 15; // 08:00 … 19:45
            let mut c = cmd(
                "booking.create",
                json!({
                "start": format!("{date}T{:02}:{:02}", minutes / 60, minutes % 60),
                "service_ids": [service], "customer_name": format!("Booked {d}-{k}"),
                "phone": "+1 555 0100", "notes": "prefers a quiet room"}),
            );
            let token = b.token();
            if let Some(Command::BookingCreate(x)) = &mut c {
                x.token_hash = token;
            }
            if let Some(reply) = c.and_then(|c| b.run(c, morning - DAY_MS / 2)) {
                if let Some(id) = reply["booking"]["id"].as_u64() {
                    bookings.push((day0 + minutes * MIN_MS, id));
                }
            }
        }
        // The day: a walk-in every 2.4 minutes from 08:00, bookings at their time.
        let mut walk_ins: Vec<i64> = (0..300)
            .map(|i| day0 + 8 * 60 * MIN_MS + i * 144_000)
            .collect();
        walk_ins.reverse();
        bookings.sort();
        bookings.reverse();
        loop {
            let next_walk = walk_ins.last().copied();
            let next_book = bookings.last().map(|x| x.0);
            match (next_walk, next_book) {
                (None, None) => break,
                (Some(w), nb) if nb.is_none_or(|x| w <= x) => {
                    walk_ins.pop();
                    let token = b.token();
                    let c = Command::VisitCreate(crate::domain::command::VisitCreate {
                        customer_id: None,
                        customer_name: format!("Walk-in {d}"),
                        service_ids: vec![service],
                        requested_therapist_id: None,
                        phone: Some("+1 555 0101".into()),
                        notes: None,
                        token_hash: token,
                    });
                    if let Some(reply) = b.run(c, w) {
                        let v = reply["visit"]["id"].as_u64().unwrap_or(0);
                        if b.serve(v, w) {
                            served += 1;
                        } else if let Some(c) = cmd(
                            "visit.leave",
                            json!({"visit_id": v, "reason": "no one free"}),
                        ) {
                            b.run(c, w);
                        }
                    }
                }
                _ => {
                    let Some((at, id)) = bookings.pop() else {
                        break;
                    };
                    let checked = cmd("booking.check_in", json!({"booking_id": id}))
                        .and_then(|c| b.run(c, at - 5 * MIN_MS));
                    if let Some(v) = checked.and_then(|r| r["visit"]["id"].as_u64()) {
                        if b.serve(v, at) {
                            booked += 1;
                        }
                    }
                }
            }
        }
        // Anything left on the floor leaves; everyone clocks out.
        let evening = day0 + 21 * 60 * MIN_MS;
        let waiting: Vec<u64> = b
            .state
            .visits
            .values()
            .filter(|v| !v.state.is_terminal() && v.state == VisitState::Waiting)
            .map(|v| v.id)
            .collect();
        for v in waiting {
            if let Some(c) = cmd("visit.leave", json!({"visit_id": v, "reason": "closing"})) {
                b.run(c, evening);
            }
        }
        for t in &therapists {
            if let Some(c) = cmd("therapist.clock_out", json!({"therapist_id": t})) {
                b.run(c, evening);
            }
        }
        b.flush(&store)?;
        if d == 0 {
            first_snapshot = Some(office_snapshot(&b.state, day0));
        }
    }
    Ok(Built {
        served,
        booked,
        first_snapshot: first_snapshot.unwrap_or_default(),
    })
}

/// What `build` made, and the office snapshot after its first day.
pub struct Built {
    pub served: u64,
    pub booked: u64,
    pub first_snapshot: (usize, f64),
}

/// The office snapshot at noon of the day starting at `day0`: (bytes, ms).
fn office_snapshot(state: &State, day0: i64) -> (usize, f64) {
    let noon = day0 + 12 * 60 * MIN_MS;
    let now = Now {
        ms: noon,
        day: yyyymmdd(noon),
    };
    let t = Instant::now();
    let snap = views::snapshot(Viewer::Office, state, now).to_string();
    (snap.len(), t.elapsed().as_secs_f64() * 1000.0)
}

/// `GET /api/reports/day.csv` as the admin: (status, rows).
fn report_csv(port: u16, day: u32) -> (String, usize) {
    use std::io::{Read, Write};
    let date = crate::domain::book::time::date_words(day);
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return ("no connection".into(), 0);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    let admin = crate::bench::BENCH_ADMIN;
    let _ = write!(
        s,
        "GET /api/reports/day.csv?date={date} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nConnection: close\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf.split_whitespace().nth(1).unwrap_or("?").to_string();
    let rows = buf
        .split("\r\n\r\n")
        .nth(1)
        .map_or(0, |body| body.lines().count());
    (status, rows)
}

pub async fn run(days: u32, dir: Option<std::path::PathBuf>) -> Result<(), String> {
    let base = dir.unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("spa-hub-bench-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let started = Instant::now();
    let Built {
        served,
        booked,
        first_snapshot,
    } = build(&data, days)?;
    let store = Store::open(&data, 64 << 20).map_err(|e| e.to_string())?;
    let info = store.info().map_err(|e| e.to_string())?;
    println!(
        "built {days} days in {:.0} s: {served} walk-ins and {booked} bookings served and paid, {} events, {:.0} MB on disk",
        started.elapsed().as_secs_f64(),
        info.event_count,
        info.size_on_disk as f64 / 1e6
    );
    let t = Instant::now();
    let rss_before = rss_kb(std::process::id()).unwrap_or(0);
    let state = store.load_state().map_err(|e| e.to_string())?;
    let rss_after = rss_kb(std::process::id()).unwrap_or(0);
    let record_bytes: usize = state
        .records()
        .iter()
        .map(|(_, r)| postcard::to_stdvec(r).map_or(0, |v| v.len()))
        .sum();
    println!(
        "records in memory: {} ({:.1} MB as stored)",
        state.records().len(),
        record_bytes as f64 / 1e6
    );
    println!(
        "load_state in process: {:.0} ms ({} visits, {} bookings in memory; RSS {:.1} → {:.1} MB)",
        t.elapsed().as_secs_f64() * 1000.0,
        state.visits.len(),
        state.bookings.len(),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    let epoch_day0 = first_day0(days);
    let last = epoch_day0 + (i64::from(days) - 1) * DAY_MS + 12 * 60 * MIN_MS;
    let now = Now {
        ms: last,
        day: yyyymmdd(last),
    };
    // Best of 5 builds each, so one noisy build does not decide.
    let best = |f: &dyn Fn() -> (usize, f64)| {
        (0..5)
            .map(|_| f())
            .fold((0, f64::MAX), |a, b| (b.0, a.1.min(b.1)))
    };
    let last_snapshot = best(&|| office_snapshot(&state, last - 12 * 60 * MIN_MS));
    println!(
        "office snapshot on the last day: {} bytes, built in {:.1} ms (after the first day: {} bytes, {:.1} ms)",
        last_snapshot.0, last_snapshot.1, first_snapshot.0, first_snapshot.1
    );
    println!(
        "archive: {} records on disk, out of memory",
        store.archive().count()
    );
    drop(state);
    drop(store);
    // The daemon itself: start to the first 200 from /healthz, and its memory.
    let (mut child, port, ready) =
        crate::bench::spawn_with(&data, &[], Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kb(child.id());
    // The day report as a cashier asks for it (CSV over HTTP), from the
    // nearest checkpoint the daemon keeps.
    let six_months = yyyymmdd(last - 182 * DAY_MS);
    for (label, day) in [
        ("the first day", yyyymmdd(epoch_day0)),
        ("the last day, first time (no checkpoint yet)", now.day),
        ("the last day, again", now.day),
        ("six months ago (from its month's checkpoint)", six_months),
    ] {
        let t = Instant::now();
        let (status, rows) = report_csv(port, day);
        println!(
            "report.day for {label} ({day}), CSV over HTTP: {:.0} ms (HTTP {status}, {rows} rows)",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let rss_after = rss_kb(child.id());
    crate::bench::stop_daemon(&mut child);
    match ready {
        Some(t) => println!(
            "daemon: ready {:.0} ms after spawn, RSS {:.1} MB (after the reports {:.1} MB) (targets: ≤ 2000 ms, ≤ 96 MB)",
            t.as_secs_f64() * 1000.0,
            rss.unwrap_or(0) as f64 / 1024.0,
            rss_after.unwrap_or(0) as f64 / 1024.0
        ),
        None => println!("daemon: not ready within 120 s"),
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
