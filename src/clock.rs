//! The wall clock and the spa's local day: the only place the shell reads
//! the time for the core (`domain::Now`).
//!
//! A Raspberry Pi has no real-time clock: after a power cut with the
//! internet down it boots with the time saved at shutdown. So the clock also
//! knows whether the system time is synchronised (see [`probe_sync`]), and
//! while it is not:
//! - time never runs backwards for the floor: it is at least the newest
//!   event's time plus the (monotonic) time elapsed since that event;
//! - an admin may move it forward with `clock.set` (an offset this clock
//!   adds to the system's wall clock; the system clock itself is never
//!   touched, so the daemon needs no CAP_SYS_TIME). The offset is dropped
//!   the moment the system clock is synchronised.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::domain::Now;

/// systemd-timesyncd touches this file once the clock is synchronised.
pub const TIMESYNC_FILE: &str = "/run/systemd/timesync/synchronized";

#[derive(Debug, Clone)]
pub struct SpaClock {
    tz: TimeZone,
    /// Test seam: added to the wall clock (a jump, or a clock set wrong).
    offset_ms: Arc<AtomicI64>,
    sync: Arc<SyncState>,
}

#[derive(Debug, Default)]
struct SyncState {
    synchronized: AtomicBool,
    /// How the synchronisation was last judged (for `/healthz`).
    source: Mutex<&'static str>,
    /// Added to the wall clock by an admin's `clock.set` (0: none).
    set_ms: AtomicI64,
    /// The newest event's time and the monotonic instant it was noted.
    floor: Mutex<Option<(i64, Instant)>>,
}

/// What `/healthz`, `/metrics` and the staff pages show about the clock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClockStatus {
    pub synchronized: bool,
    /// `timesyncd` (the file), `timedatectl`, or `none`.
    pub source: &'static str,
    /// The time the floor runs on (ms since the epoch).
    pub now_ms: i64,
    /// The system's wall clock, as read.
    pub system_ms: i64,
    /// How far an admin's `clock.set` moved the floor's time (0: not set).
    pub set_offset_ms: i64,
    /// True while the wall clock is behind the newest event and the floor
    /// runs on from that event instead.
    pub held_at_last_event: bool,
}

impl SpaClock {
    pub fn new(tz: TimeZone) -> Self {
        SpaClock {
            tz,
            offset_ms: Arc::default(),
            sync: Arc::default(),
        }
    }

    /// Moves this clock (and its clones) by `ms` from the system's: tests
    /// use it to play a wall clock that jumps. The floor moves with it (the
    /// whole world's time moved, not only a wrong wall clock).
    #[doc(hidden)]
    pub fn shift(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        if let Ok(mut floor) = self.sync.floor.lock() {
            if let Some((at, _)) = floor.as_mut() {
                *at = at.saturating_add(ms);
            }
        }
    }

    fn system_ms(&self) -> i64 {
        Timestamp::now().as_millisecond() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// The floor's time in ms: the wall clock (plus an admin's offset while
    /// unsynchronised), never behind the newest event while unsynchronised.
    fn now_ms(&self) -> (i64, bool) {
        let wall = self.system_ms();
        if self.synchronized() {
            return (wall, false);
        }
        let wall = wall.saturating_add(self.sync.set_ms.load(Ordering::Relaxed));
        let floor = self
            .sync
            .floor
            .lock()
            .ok()
            .and_then(|f| *f)
            .map(|(at, since)| at.saturating_add(since.elapsed().as_millis() as i64));
        match floor {
            Some(f) if f > wall => (f, true),
            _ => (wall, false),
        }
    }

    /// Reads the wall clock once.
    pub fn now(&self) -> Now {
        self.at(self.now_ms().0)
    }

    /// The writer notes each committed event's time: while unsynchronised,
    /// the floor's time never goes back behind it.
    pub fn note_event(&self, at_ms: i64) {
        if let Ok(mut floor) = self.sync.floor.lock() {
            let newer = floor.is_none_or(|(old, since)| {
                at_ms >= old.saturating_add(since.elapsed().as_millis() as i64)
            });
            if newer {
                *floor = Some((at_ms, Instant::now()));
            }
        }
    }

    /// `clock.set`: from now on (until the system clock is synchronised)
    /// the floor's time is `to_ms` plus the time elapsed. Only forward: a
    /// time behind the current one changes nothing (`decide` refuses it
    /// first). Returns the offset now applied.
    pub fn set_forward(&self, to_ms: i64) -> i64 {
        let (now, _) = self.now_ms();
        if to_ms > now && !self.synchronized() {
            let system = self.system_ms();
            self.sync
                .set_ms
                .store(to_ms.saturating_sub(system), Ordering::Relaxed);
        }
        self.sync.set_ms.load(Ordering::Relaxed)
    }

    pub fn synchronized(&self) -> bool {
        self.sync.synchronized.load(Ordering::Relaxed)
    }

    /// Records the latest synchronisation probe; synchronising drops an
    /// admin's `clock.set`. Returns true when the state changed.
    pub fn set_synchronized(&self, synchronized: bool, source: &'static str) -> bool {
        if let Ok(mut s) = self.sync.source.lock() {
            *s = source;
        }
        let was = self.sync.synchronized.swap(synchronized, Ordering::Relaxed);
        if synchronized {
            self.sync.set_ms.store(0, Ordering::Relaxed);
        }
        was != synchronized
    }

    pub fn status(&self) -> ClockStatus {
        let (now_ms, held) = self.now_ms();
        ClockStatus {
            synchronized: self.synchronized(),
            source: self.sync.source.lock().map(|s| *s).unwrap_or("none"),
            now_ms,
            system_ms: self.system_ms(),
            set_offset_ms: if self.synchronized() {
                0
            } else {
                self.sync.set_ms.load(Ordering::Relaxed)
            },
            held_at_last_event: held,
        }
    }

    /// The `Now` for a given instant (ms since the epoch).
    pub fn at(&self, ms: i64) -> Now {
        Now {
            ms,
            day: self.day_of(ms),
        }
    }

    /// The spa's local calendar day of an instant, as `yyyymmdd`.
    pub fn day_of(&self, ms: i64) -> u32 {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let date = ts.to_zoned(self.tz.clone()).date();
        let (y, m, d) = (i32::from(date.year()), date.month(), date.day());
        u32::try_from(y.max(0)).unwrap_or(0) * 10_000
            + u32::from(m.unsigned_abs()) * 100
            + u32::from(d.unsigned_abs())
    }

    pub fn tz_name(&self) -> String {
        self.tz.iana_name().unwrap_or("system").to_string()
    }
}

/// Where the synchronisation is read from (`SPA_TIMESYNC_FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSource {
    pub file: PathBuf,
    /// Set explicitly: only the file counts (no `timedatectl` fallback), so
    /// a test or another NTP daemon's marker file decides alone.
    pub file_only: bool,
}

impl Default for SyncSource {
    fn default() -> Self {
        SyncSource {
            file: PathBuf::from(TIMESYNC_FILE),
            file_only: false,
        }
    }
}

/// Whether the system clock is synchronised, and how that was judged:
/// systemd-timesyncd's file, else `timedatectl show -p NTPSynchronized`
/// (which also covers chrony and ntpd through the kernel's flag). Blocking
/// (it may run a process): call it off the async runtime.
pub fn probe_sync(source: &SyncSource) -> (bool, &'static str) {
    if Path::new(&source.file).exists() {
        return (true, "timesyncd");
    }
    if source.file_only {
        return (false, "none");
    }
    let out = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => (
            String::from_utf8_lossy(&o.stdout).trim() == "yes",
            "timedatectl",
        ),
        _ => (false, "none"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_midnight_decides_the_day() {
        let clock = SpaClock::new(TimeZone::get("Asia/Ho_Chi_Minh").expect("tz"));
        // 2026-11-26 16:59:59 UTC is 23:59:59 in UTC+7; a second later it is the 27th.
        let before = 1_795_712_399_000;
        assert_eq!(clock.day_of(before), 20261126);
        assert_eq!(clock.day_of(before + 1000), 20261127);
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn unsynchronised_time_never_runs_behind_the_newest_event() {
        let clock = SpaClock::new(TimeZone::UTC);
        let wall = clock.now().ms;
        clock.note_event(wall + DAY);
        let now = clock.now().ms;
        assert!(now >= wall + DAY, "held at the event");
        assert!(clock.status().held_at_last_event);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(clock.now().ms >= now + 15, "and runs on from it");
        // Once synchronised, the system clock is the truth again.
        assert!(clock.set_synchronized(true, "timesyncd"));
        assert!(clock.now().ms < wall + DAY / 2);
    }

    #[test]
    fn clock_set_moves_forward_only_and_is_dropped_on_sync() {
        let clock = SpaClock::new(TimeZone::UTC);
        let wall = clock.now().ms;
        assert_eq!(clock.set_forward(wall - DAY), 0, "never back");
        let offset = clock.set_forward(wall + DAY);
        assert!((offset - DAY).abs() < 1_000, "{offset}");
        assert!(clock.now().ms >= wall + DAY);
        assert_eq!(clock.status().set_offset_ms, offset);
        clock.set_synchronized(true, "timesyncd");
        assert!(clock.now().ms < wall + DAY / 2);
        assert_eq!(
            clock.set_forward(wall + 2 * DAY),
            0,
            "not once synchronised"
        );
        clock.set_synchronized(false, "none");
        assert!(
            clock.now().ms < wall + DAY / 2,
            "the old offset stays dropped"
        );
    }

    #[test]
    fn the_sync_file_decides_when_set_explicitly() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("synchronized");
        let source = SyncSource {
            file: file.clone(),
            file_only: true,
        };
        assert_eq!(probe_sync(&source), (false, "none"));
        std::fs::write(&file, b"").expect("touch");
        assert_eq!(probe_sync(&source), (true, "timesyncd"));
    }
}
