//! The shell's timers: cleanup ends and session overtime survive a restart,
//! and a wall-clock jump can neither stretch a cleanup nor cut it short by
//! more than its length.

use std::time::Duration;

use spa_hub::clock::SpaClock;
use spa_hub::domain::command::*;
use spa_hub::domain::state::RoomStatus;
use spa_hub::domain::{Command, Rules};
use spa_hub::store::Store;
use spa_hub::writer::{remaining, Writer, WriterHandle};

mod common;
use common::floor::{called_visit, id, ok};

const MIN: i64 = 60_000;

#[test]
fn remaining_time_is_bounded_whatever_the_wall_clock_does() {
    let until = 1_000_000;
    let length = 10 * MIN;
    // Normal: the time left.
    assert_eq!(
        remaining(until, until - 3 * MIN, length),
        Duration::from_millis(3 * MIN as u64)
    );
    // The clock jumped forward past the end: done now, not hours late or early.
    assert_eq!(
        remaining(until, until + 5 * 3_600_000, length),
        Duration::ZERO
    );
    // The clock jumped back by hours: never longer than the cleanup itself.
    assert_eq!(
        remaining(until, until - 5 * 3_600_000, length),
        Duration::from_millis(length as u64)
    );
    // A nonsensical length is treated as zero.
    assert_eq!(remaining(until, until - MIN, -5), Duration::ZERO);
}

/// Creates room, service (cleanup minutes), therapist, visit; calls, starts
/// and, if `finish`, finishes it. Returns (room id, visit id).
async fn session(
    h: &WriterHandle,
    n: u32,
    duration_min: u32,
    cleanup_min: u32,
    finish: bool,
) -> (u64, u64) {
    let room = id(
        &ok(
            h,
            Command::RoomCreate(RoomCreate {
                name: format!("Room {n}"),
                capacity: 1,
                light_channel: None,
            }),
        )
        .await,
        "room",
    );
    let service = id(
        &ok(
            h,
            Command::ServiceCreate(ServiceCreate {
                name: format!("S{n}"),
                duration_min,
                cleanup_min,
                price_cents: 100,
                skill: None,
                turn_weight: 1.0,
                tax_rate_bp: 0,
            }),
        )
        .await,
        "service",
    );
    let v = called_visit(h, n, service, room, None).await;
    ok(h, Command::VisitStart(VisitRef { visit_id: v })).await;
    if finish {
        ok(h, Command::VisitFinish(VisitRef { visit_id: v })).await;
    }
    (room, v)
}

fn spawn(dir: &std::path::Path, clock: SpaClock) -> Writer {
    let store = Store::open(dir, 8 << 20).expect("open");
    let state = store.load_state().expect("load");
    Writer::spawn(store, state, clock, Rules::default(), Vec::new()).expect("writer")
}

#[tokio::test]
async fn cleanups_and_overtime_carry_on_across_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    // Before the "reboot", the wall clock read two hours earlier.
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    clock.shift(-2 * 3_600_000);
    let writer = spawn(dir.path(), clock);
    let h = writer.handle.clone();
    let (done_room, _) = session(&h, 1, 30, 1, true).await; // cleanup ended long ago
    let (long_room, _) = session(&h, 2, 30, 240, true).await; // 4 h cleanup: 2 h left
    let (busy_room, busy_visit) = session(&h, 3, 60, 0, false).await; // session ran past its end
    let (fresh_room, fresh_visit) = session(&h, 4, 600, 0, false).await; // 10 h session: 8 h left
    let before = h.read(|s, _| s.clone()).await.expect("read");
    assert_eq!(before.rooms[&done_room].status, RoomStatus::Cleaning);
    writer.stop().await;

    // Restart with the right time.
    let writer = spawn(dir.path(), SpaClock::new(jiff::tz::TimeZone::UTC));
    let h = writer.handle.clone();
    let mut state = h.read(|s, _| s.clone()).await.expect("read");
    for _ in 0..100 {
        if state.rooms[&done_room].status == RoomStatus::Available
            && state.visits[&busy_visit].overtime
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        state = h.read(|s, _| s.clone()).await.expect("read");
    }
    assert_eq!(
        state.rooms[&done_room].status,
        RoomStatus::Available,
        "an elapsed cleanup ends at start-up"
    );
    assert_eq!(
        state.rooms[&long_room].status,
        RoomStatus::Cleaning,
        "a running cleanup keeps its time"
    );
    assert_eq!(
        state.rooms[&long_room].cleaning_until,
        before.rooms[&long_room].cleaning_until
    );
    assert!(
        state.visits[&busy_visit].overtime,
        "a session past its end is flagged once at start-up"
    );
    assert!(state.rooms[&busy_room].overtime);
    assert!(!state.visits[&fresh_visit].overtime);
    assert!(!state.rooms[&fresh_room].overtime);
    let alerts = state.seq() - before.seq();
    assert_eq!(alerts, 2, "exactly one cleanup end and one overtime event");
    writer.stop().await;
}

#[tokio::test]
async fn a_backward_jump_does_not_stretch_a_cleanup_and_staff_can_end_it_early() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = SpaClock::new(jiff::tz::TimeZone::UTC);
    let writer = spawn(dir.path(), clock.clone());
    let h = writer.handle.clone();
    let (room, _) = session(&h, 1, 30, 5, true).await;
    // The clock jumps back ten hours (NTP after boot on a Pi without RTC).
    clock.shift(-10 * 3_600_000);
    let state = h.read(|s, _| s.clone()).await.expect("read");
    let r = &state.rooms[&room];
    let left = remaining(
        r.cleaning_until.expect("timed"),
        clock.now().ms,
        r.cleaning_ms,
    );
    assert!(
        left <= Duration::from_secs(5 * 60),
        "at most the cleanup's own 5 min, not 10 h: {left:?}"
    );
    // Staff may mark a cleaning room ready early.
    ok(
        &h,
        Command::RoomSetStatus(RoomSetStatus {
            room_id: room,
            status: RoomStatus::Available,
            reason: None,
        }),
    )
    .await;
    let state = h.read(|s, _| s.clone()).await.expect("read");
    assert_eq!(state.rooms[&room].status, RoomStatus::Available);
    writer.stop().await;
}
