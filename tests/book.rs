//! The book over real sockets (the hub in process, so the wall clock can be
//! moved with its test seam), and across a restart of the writer:
//!
//! - book → check in → called at its time before an earlier walk-in → paid;
//! - a walk-in skipped because of a booking, and told why;
//! - a customer cancelling through their booking link before the cut-off,
//!   and refused after it; the link sees nothing of anyone else;
//! - a booking whose grace ran out while the hub was down becomes a no-show
//!   right after the restart.

mod common;
mod faultkit;

use std::time::Duration;

use faultkit::ok;
use serde_json::{json, Value};
use spa_hub::client::Client;
use spa_hub::clock::SpaClock;
use spa_hub::domain::book::BookingState;
use spa_hub::domain::{Actor, Command, Rules};
use spa_hub::store::Store;
use spa_hub::writer::Writer;

const ADMIN: &str = "book-test-admin-token-0001";
const MIN: i64 = 60_000;
const T: Duration = Duration::from_secs(10);

/// "YYYY-MM-DDTHH:MM" (UTC, the hub's zone here) of `ms`, rounded up to
/// the next quarter hour plus `quarters` more.
fn slot(ms: i64, quarters: i64) -> (i64, String) {
    let q = 15 * MIN;
    let at = (ms + q - 1) / q * q + quarters * q;
    let ts = jiff::Timestamp::from_millisecond(at).expect("ts");
    (at, ts.strftime("%Y-%m-%dT%H:%M").to_string())
}

fn date_of(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).expect("ts");
    ts.strftime("%Y-%m-%d").to_string()
}

/// The error code of `name`'s ack ("ok" when accepted).
async fn code(c: &Client, name: &str, args: Value) -> String {
    faultkit::code(&c.call(name, args).await.expect("ack"))
}

/// Two therapists (working all day today), two rooms, a 60-min service.
async fn floor(admin: &Client, now: i64) -> (u64, u64, u64, u64, u64) {
    let room = |v: Value| v["room"]["id"].as_u64().expect("room");
    let r1 = room(ok(admin, "room.create", json!({"name": "Lotus"})).await);
    let r2 = room(ok(admin, "room.create", json!({"name": "Jade"})).await);
    let svc = ok(
        admin,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await["service"]["id"]
        .as_u64()
        .expect("service");
    let mut ts = Vec::new();
    for name in ["Tess", "Otto"] {
        let t = ok(
            admin,
            "staff.create",
            json!({"name": name, "role": "therapist", "pin": "2468"}),
        )
        .await["staff"]["id"]
            .as_u64()
            .expect("staff");
        ok(admin, "therapist.clock_in", json!({"therapist_id": t})).await;
        ok(
            admin,
            "schedule.set",
            json!({"therapist_id": t, "date": date_of(now), "start": "00:00", "end": "23:59"}),
        )
        .await;
        ts.push(t);
    }
    (ts[0], ts[1], r1, r2, svc)
}

#[tokio::test]
async fn a_booking_is_checked_in_called_at_its_time_before_a_walk_in_and_paid() {
    let hub = common::InProcessHub::start(ADMIN, &[("SPA_TIMEZONE", "UTC")]).await;
    let clock = hub.running().hub.clock.clone();
    // Far from midnight, so the day does not end during the test.
    let now = clock.now().ms;
    let noon = now - now.rem_euclid(24 * 60 * MIN) + 12 * 60 * MIN;
    clock.shift(noon - now);
    let admin = hub.admin().await;
    let (tess, otto, r1, _r2, svc) = floor(&admin, clock.now().ms).await;
    let (at, start) = slot(clock.now().ms, 2);
    let booked = ok(
        &admin,
        "booking.create",
        json!({"start": start, "service_ids": [svc], "therapist_id": tess, "room_id": r1,
               "customer_name": "Bea", "phone": "+1 555 0101", "request_id": "phone-1"}),
    )
    .await;
    let booking = booked["booking"]["id"].as_u64().expect("booking");
    assert_eq!(booked["booking"]["number"], "B-001");
    assert!(booked["customer_url"]
        .as_str()
        .expect("link")
        .starts_with("/b/"));
    // A double tap: the same booking, no second one.
    let again = ok(
        &admin,
        "booking.create",
        json!({"start": start, "service_ids": [svc], "therapist_id": tess, "room_id": r1,
               "customer_name": "Bea", "phone": "+1 555 0101", "request_id": "phone-1"}),
    )
    .await;
    assert_eq!(again["booking"]["id"], json!(booking));
    assert_eq!(again["retried"], json!(true));

    // A walk-in now: Tess is kept for the booking, Otto takes it.
    let walk = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Walter", "service_ids": [svc]}),
    )
    .await["visit"]["id"]
        .as_u64()
        .expect("visit");
    let called = ok(&admin, "visit.call", json!({})).await;
    assert_eq!(called["visit"]["id"], json!(walk));
    assert_eq!(called["visit"]["therapist_id"], json!(otto));
    assert_eq!(called["skipped"][0]["therapist_id"], json!(tess));
    // A second walk-in waits: nobody is free long enough.
    let walk2 = ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Wilma", "service_ids": [svc]}),
    )
    .await["visit"]["id"]
        .as_u64()
        .expect("visit");
    assert_eq!(code(&admin, "visit.call", json!({})).await, "conflict");

    // The customer arrives; at the booked time the booking goes first.
    let checked = ok(&admin, "booking.check_in", json!({"booking_id": booking})).await;
    let visit = checked["visit"]["id"].as_u64().expect("visit");
    clock.shift(at - clock.now().ms);
    let called = ok(&admin, "visit.call", json!({})).await;
    assert_eq!(
        called["visit"]["id"],
        json!(visit),
        "booked before the earlier walk-in"
    );
    assert_eq!(called["visit"]["therapist_id"], json!(tess));
    assert_eq!(called["visit"]["room_id"], json!(r1));
    ok(&admin, "visit.start", json!({"visit_id": visit})).await;
    ok(&admin, "visit.finish", json!({"visit_id": visit})).await;
    ok(&admin, "drawer.open", json!({"float_cents": 0})).await;
    ok(
        &admin,
        "visit.checkout",
        json!({"visit_id": visit, "request_id": "pay-1", "payments": [{"method": "card", "amount_cents": 5000}]}),
    )
    .await;
    let report = ok(&admin, "report.day", json!({})).await["report"].clone();
    assert_eq!(report["booked_revenue_cents"], 5000);
    assert_eq!(report["bookings"]["made"], 1);
    assert_eq!(report["bookings"]["checked_in"], 1);
    let list = ok(&admin, "booking.list", json!({})).await;
    assert_eq!(list["bookings"][0]["state"], "checked_in");
    let _ = walk2;
    hub.stop().await;
}

#[tokio::test]
async fn a_customer_cancels_through_the_link_until_the_cut_off() {
    let hub = common::InProcessHub::start(
        ADMIN,
        &[("SPA_TIMEZONE", "UTC"), ("SPA_CANCEL_CUTOFF_HOURS", "2")],
    )
    .await;
    let clock = hub.running().hub.clock.clone();
    let now = clock.now().ms;
    let morning = now - now.rem_euclid(24 * 60 * MIN) + 6 * 60 * MIN;
    clock.shift(morning - now);
    let admin = hub.admin().await;
    let (tess, otto, _, _, svc) = floor(&admin, clock.now().ms).await;
    let book = |t: u64, quarters: i64, name: &str| {
        let (_, start) = slot(clock.now().ms, quarters);
        json!({"start": start, "service_ids": [svc], "therapist_id": t,
               "customer_name": name, "phone": "+1 555 0102", "notes": "staff only"})
    };
    let later = ok(&admin, "booking.create", book(tess, 16, "Lena Later")).await;
    let soon = ok(&admin, "booking.create", book(otto, 2, "Sam Soon")).await;
    let link = |v: &Value| v["customer_token"].as_str().expect("token").to_string();

    // The link: that booking only, no staff notes, nothing of anyone else.
    let mut lena = Client::connect(&hub.url(), &link(&later))
        .await
        .expect("link");
    let snap = lena.wait_for("snapshot", T).await.expect("snapshot");
    let text = snap.data.to_string();
    assert!(
        text.contains("Lena Later") && !text.contains("Sam Soon") && !text.contains("staff only")
    );
    let other = soon["booking"]["id"].clone();
    let err = lena
        .call("booking.cancel", json!({"booking_id": other}))
        .await
        .expect("ack");
    assert_eq!(err["error"]["code"], "forbidden");
    assert_eq!(
        code(
            &lena,
            "visit.create",
            json!({"customer_name": "x", "service_ids": [svc]})
        )
        .await,
        "forbidden"
    );
    let cancelled = ok(
        &lena,
        "booking.cancel",
        json!({"booking_id": later["booking"]["id"]}),
    )
    .await;
    assert_eq!(cancelled["booking"]["state"], "cancelled");
    // Within two hours of the booking, the link can no longer cancel.
    let sam = Client::connect(&hub.url(), &link(&soon))
        .await
        .expect("link");
    let late = sam
        .call("booking.cancel", json!({"booking_id": other}))
        .await
        .expect("ack");
    assert_eq!(late["error"]["code"], "conflict", "{late}");
    assert!(late["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("call the spa"));
    // The booking page is served for any token; the data comes over the socket.
    let (port, path) = (hub.port(), format!("/b/{}", link(&soon)));
    let (status, body) = tokio::task::spawn_blocking(move || common::http_get(port, &path))
        .await
        .expect("join")
        .expect("http");
    assert_eq!(status, 200);
    assert!(body.contains("booking.js"));
    hub.stop().await;
}

fn spawn(dir: &std::path::Path, clock: SpaClock) -> Writer {
    let store = Store::open(dir, 8 << 20).expect("open");
    let state = store.load_state().expect("load");
    Writer::spawn(store, state, clock, Rules::default(), Vec::new()).expect("writer")
}

/// Runs `c` as the admin on `h`; it must be accepted.
async fn admin_run(h: &spa_hub::writer::WriterHandle, c: Command) -> Value {
    h.execute(Actor::AdminToken, c).await.expect("accepted")
}

/// A 30-minute service at `price_cents`, one room and one therapist:
/// (service, therapist).
async fn small_floor(h: &spa_hub::writer::WriterHandle, price_cents: i64) -> (u64, u64) {
    let svc = admin_run(
        h,
        decode(
            "service.create",
            json!({"name": "Thai", "duration_min": 30, "price_cents": price_cents}),
        ),
    )
    .await["service"]["id"]
        .as_u64()
        .expect("svc");
    admin_run(h, decode("room.create", json!({"name": "Lotus"}))).await;
    let mut create = decode("staff.create", json!({"name": "Tess", "role": "therapist"}));
    if let Command::StaffCreate(c) = &mut create {
        c.pin_hash = "$argon2id$not-used".into();
    }
    let t = admin_run(h, create).await["staff"]["id"]
        .as_u64()
        .expect("t");
    (svc, t)
}

fn decode(name: &str, args: Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn a_booking_missed_while_the_hub_was_down_is_a_no_show_after_the_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    // Before the "power cut" the wall clock read an hour earlier.
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    clock.shift(-60 * MIN);
    let writer = spawn(dir.path(), clock.clone());
    let h = writer.handle.clone();
    let run = |c: Command| {
        let h = h.clone();
        async move { h.execute(Actor::AdminToken, c).await.expect("accepted") }
    };
    let (svc, t) = small_floor(&h, 100).await;
    let now = clock.now().ms;
    for date in [date_of(now), date_of(now + 24 * 60 * MIN)] {
        run(decode(
            "schedule.set",
            json!({"therapist_id": t, "date": date, "start": "00:00", "end": "23:59"}),
        ))
        .await;
    }
    // Booked 15 to 30 minutes after the (wrong) time: by the real time, its
    // 15-minute grace is over.
    let (_, start) = slot(now, 1);
    let mut create = decode(
        "booking.create",
        json!({"start": start, "service_ids": [svc], "customer_name": "Bea", "phone": "1"}),
    );
    if let Command::BookingCreate(b) = &mut create {
        b.token_hash = "booking-link-hash".into();
    }
    let booking = run(create).await["booking"]["id"]
        .as_u64()
        .expect("booking");
    // And one that is still ahead after the restart.
    let (_, ahead) = slot(now, 12);
    let mut create = decode(
        "booking.create",
        json!({"start": ahead, "service_ids": [svc], "customer_name": "Ada", "phone": "2"}),
    );
    if let Command::BookingCreate(b) = &mut create {
        b.token_hash = "booking-link-hash-2".into();
    }
    let pending = run(create).await["booking"]["id"]
        .as_u64()
        .expect("booking");
    writer.stop().await;

    let writer = spawn(dir.path(), SpaClock::new(jiff::tz::TimeZone::UTC));
    let h = writer.handle.clone();
    let mut state = h.read(|s, _| s.clone()).await.expect("read");
    for _ in 0..100 {
        if state.bookings[&booking].state == BookingState::NoShow {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        state = h.read(|s, _| s.clone()).await.expect("read");
    }
    assert_eq!(state.bookings[&booking].state, BookingState::NoShow);
    assert_eq!(state.bookings[&pending].state, BookingState::Booked);
    writer.stop().await;
}

/// Weeks later, the visit and the booking are out of memory (the start-up
/// archive pass), yet `booking.list` still lists that date from the
/// archive and a refund brings the visit back and is taken.
#[tokio::test]
async fn weeks_later_history_is_archived_yet_listed_and_refunded() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    clock.shift(-20 * 24 * 60 * MIN);
    let writer = spawn(dir.path(), clock.clone());
    let h = writer.handle.clone();
    let run = |c: Command| {
        let h = h.clone();
        async move { h.execute(Actor::AdminToken, c).await.expect("accepted") }
    };
    let (svc, t) = small_floor(&h, 4000).await;
    run(decode("therapist.clock_in", json!({"therapist_id": t}))).await;
    let then = clock.now().ms;
    let date = date_of(then);
    run(decode(
        "schedule.set",
        json!({"therapist_id": t, "date": date, "start": "00:00", "end": "23:59"}),
    ))
    .await;
    let (_, start) = slot(then, 8);
    let mut create = decode(
        "booking.create",
        json!({"start": start, "service_ids": [svc], "customer_name": "Bea", "phone": "1"}),
    );
    if let Command::BookingCreate(b) = &mut create {
        b.token_hash = "archived-booking-hash".into();
    }
    let booking = run(create).await["booking"]["id"]
        .as_u64()
        .expect("booking");
    run(decode(
        "booking.cancel",
        json!({"booking_id": booking, "reason": "ill"}),
    ))
    .await;
    let mut create = decode(
        "visit.create",
        json!({"customer_name": "Ann", "service_ids": [svc]}),
    );
    if let Command::VisitCreate(v) = &mut create {
        v.token_hash = "archived-visit-hash".into();
    }
    let visit = run(create).await["visit"]["id"].as_u64().expect("visit");
    for name in ["visit.call", "visit.start", "visit.finish"] {
        run(decode(name, json!({"visit_id": visit}))).await;
    }
    run(decode("drawer.open", json!({"float_cents": 0}))).await;
    run(decode(
        "visit.checkout",
        json!({"visit_id": visit, "request_id": "pay-1",
            "payments": [{"method": "card", "amount_cents": 4000}]}),
    ))
    .await;
    writer.stop().await;

    // Twenty days on: the start-up pass takes the day out of memory.
    let writer = spawn(dir.path(), SpaClock::new(jiff::tz::TimeZone::UTC));
    let h = writer.handle.clone();
    let mut gone = false;
    for _ in 0..200 {
        gone = h
            .read(move |s, _| !s.visits.contains_key(&visit) && !s.bookings.contains_key(&booking))
            .await
            .expect("read");
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the old visit and booking are still in memory");
    let listed = h
        .execute(
            Actor::AdminToken,
            decode("booking.list", json!({"date": date})),
        )
        .await
        .expect("booking.list");
    let ids: Vec<u64> = listed["bookings"]
        .as_array()
        .expect("bookings")
        .iter()
        .filter_map(|b| b["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![booking], "{listed}");
    assert_eq!(listed["bookings"][0]["state"], "cancelled");
    // A refused refund leaves it archived (the restore is taken back).
    h.execute(
        Actor::AdminToken,
        decode(
            "visit.refund",
            json!({"visit_id": visit, "amount_cents": 999_999, "reason": "too much"}),
        ),
    )
    .await
    .expect_err("more than was paid");
    let back = h
        .read(move |s, _| s.visits.contains_key(&visit))
        .await
        .expect("read");
    assert!(!back, "a refused refund left the visit in memory");
    let refunded = h
        .execute(
            Actor::AdminToken,
            decode(
                "visit.refund",
                json!({"visit_id": visit, "amount_cents": 1500, "reason": "sore back"}),
            ),
        )
        .await
        .expect("refund of an archived visit");
    assert!(refunded["seq"].as_u64().is_some(), "{refunded}");
    let refunds = h
        .read(move |s, _| s.visits.get(&visit).map(|v| v.refunds.len()))
        .await
        .expect("read");
    assert_eq!(refunds, Some(1));
    // A refund of an unknown visit is still `not_found`, and nothing restored.
    let err = h
        .execute(
            Actor::AdminToken,
            decode(
                "visit.refund",
                json!({"visit_id": 999_999, "amount_cents": 1, "reason": "x"}),
            ),
        )
        .await
        .expect_err("unknown");
    assert_eq!(err.code.as_str(), "not_found");
    writer.stop().await;
}
