//! The wall clock and the spa's local day: the only place the shell reads
//! the time for the core (`domain::Now`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::domain::Now;

#[derive(Debug, Clone)]
pub struct SpaClock {
    tz: TimeZone,
    /// Test seam: added to the wall clock (a jump, or a clock set wrong).
    offset_ms: Arc<AtomicI64>,
}

impl SpaClock {
    pub fn new(tz: TimeZone) -> Self {
        SpaClock {
            tz,
            offset_ms: Arc::default(),
        }
    }

    /// Moves this clock (and its clones) by `ms` from the system's: tests
    /// use it to play a wall clock that jumps.
    #[doc(hidden)]
    pub fn shift(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Reads the wall clock once.
    pub fn now(&self) -> Now {
        self.at(Timestamp::now().as_millisecond() + self.offset_ms.load(Ordering::Relaxed))
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
}
