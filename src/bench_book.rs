//! `spa-hub bench core`'s book part: `booking.availability` and `visit.call`
//! decided on a floor of 50 therapists and 30 rooms with 400 bookings that
//! day (the targets of the book: availability p99 ≤ 2 ms, a call ≤ 20 µs).

use std::time::Instant;

use serde_json::json;

use crate::domain::{decide, Actor, Command, Now, Rules, State};

/// Decides as the admin and applies the events; whether it was accepted.
fn run(state: &mut State, cmd: &Command, now: Now, rules: &Rules) -> bool {
    let before = state.seq();
    crate::bench::run_as_admin(state, cmd, now, rules);
    state.seq() > before
}

fn command(name: &str, args: serde_json::Value) -> Command {
    match Command::decode(name, args) {
        Ok(c) => c,
        Err(e) => panic!("bench command {name}: {e}"),
    }
}

/// p50 and p99 of `samples` (µs).
fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The busy floor of `bench core` (2026-11-26, 06:00 UTC here) with shifts
/// 07:00–21:00 for all 50 therapists and 400 bookings that day.
pub fn booked_floor() -> (State, Now, Rules, Vec<u64>) {
    let (mut state, _, rules) = crate::bench::busy_floor();
    let now = Now {
        ms: 1_795_644_000_000, // 2026-11-26 06:00 UTC
        day: 20261126,
    };
    let therapists: Vec<u64> = state
        .staff
        .values()
        .filter(|s| s.role == crate::domain::Role::Therapist)
        .map(|s| s.id)
        .collect();
    for t in &therapists {
        run(
            &mut state,
            &command(
                "schedule.set",
                json!({"therapist_id": t, "date": "2026-11-26", "start": "07:00", "end": "21:00"}),
            ),
            now,
            &rules,
        );
    }
    let mut services = Vec::new();
    for (name, minutes) in [("Short", 30), ("Back", 60)] {
        run(
            &mut state,
            &command(
                "service.create",
                json!({"name": name, "duration_min": minutes, "cleanup_min": 0, "price_cents": 4000}),
            ),
            now,
            &rules,
        );
        services.push(state.counters.next_id - 1);
    }
    let mut made = 0;
    let mut k = 0u64;
    while made < 400 && k < 4000 {
        let t = therapists[(k % 50) as usize];
        let slot = (k * 7 + k / 50) % 56; // 07:00 … 20:45
        let minutes = 7 * 60 + slot * 15;
        let mut c = command(
            "booking.create",
            json!({"start": format!("2026-11-26T{:02}:{:02}", minutes / 60, minutes % 60),
                   "service_ids": [services[0]], "therapist_id": t,
                   "customer_name": format!("Booked {k}"), "phone": "0900000000"}),
        );
        if let Command::BookingCreate(b) = &mut c {
            b.token_hash = format!("bench-booking-{k}");
        }
        if run(&mut state, &c, now, &rules) {
            made += 1;
        }
        k += 1;
    }
    (state, now, rules, services)
}

pub fn bench(iterations: u32) {
    let started = Instant::now();
    let (state, now, rules, services) = booked_floor();
    let bookings = state.bookings_on(now.day).len();
    println!(
        "book bench: 50 therapists, {} rooms, {bookings} bookings on the day (built in {:.1} s)",
        state.rooms.len(),
        started.elapsed().as_secs_f64()
    );
    let ask = command(
        "booking.availability",
        json!({"date": "2026-11-26", "service_ids": services}),
    );
    let mut samples = Vec::new();
    let mut slots = 0;
    for _ in 0..iterations.clamp(50, 2_000) {
        let t = Instant::now();
        if let Ok(d) = decide(&state, &Actor::AdminToken, &ask, now, &rules) {
            let data = d.reply.render(&state, now);
            slots = data["slots"].as_array().map_or(0, Vec::len);
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = percentiles(samples);
    println!(
        "booking.availability (2 services, any of 50 therapists, 30 rooms): p50 {p50:.0} µs, p99 {p99:.0} µs, {slots} starts offered (target p99 ≤ 2000 µs)"
    );
    let call = Command::VisitCall(crate::domain::command::VisitCall::default());
    let mut samples = Vec::new();
    let mut ok = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        if decide(&state, &Actor::AdminToken, &call, now, &rules).is_ok() {
            ok += 1;
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = percentiles(samples);
    println!(
        "visit.call decide with {bookings} bookings today: p50 {p50:.2} µs, p99 {p99:.2} µs ({ok} ok of {iterations}; target p99 ≤ 20 µs)"
    );
}
