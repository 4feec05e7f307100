//! The spa's local time for the book: dates (`YYYY-MM-DD`), times of day
//! (`HH:MM`) and starts (`2026-12-07T15:00` local, an ISO 8601 instant with
//! an offset, or ms since the epoch) turned into instants in the spa's zone
//! (`Rules::tz`). Pure computation on jiff's bundled time-zone database.
//!
//! Daylight saving: a local time that does not exist (the hour skipped in
//! spring) is `invalid`; one that exists twice (the hour repeated in
//! autumn) means its first occurrence, the earlier instant.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use serde::Deserialize;

use super::super::{invalid, DomainError};

/// A start as a client may send it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StartArg {
    Ms(i64),
    Text(String),
}

/// `yyyymmdd` → a civil date.
pub fn date_of_day(day: u32) -> Option<Date> {
    let y = i16::try_from(day / 10_000).ok()?;
    let m = i8::try_from(day / 100 % 100).ok()?;
    let d = i8::try_from(day % 100).ok()?;
    Date::new(y, m, d).ok()
}

/// A civil date → `yyyymmdd`.
pub fn day_of_date(date: Date) -> u32 {
    u32::try_from(i32::from(date.year()).max(0)).unwrap_or(0) * 10_000
        + u32::from(date.month().unsigned_abs()) * 100
        + u32::from(date.day().unsigned_abs())
}

/// `20261207` → "2026-12-07".
pub fn date_words(day: u32) -> String {
    format!("{}-{:02}-{:02}", day / 10_000, day / 100 % 100, day % 100)
}

/// `YYYY-MM-DD` from a client → `yyyymmdd`.
pub fn parse_date(field: &str, text: &str) -> Result<u32, DomainError> {
    let date: Date = text.trim().parse().map_err(|_| {
        invalid(format!(
            "`{field}` must be a date like 2026-12-07, not {:?}",
            text.chars().take(20).collect::<String>()
        ))
    })?;
    Ok(day_of_date(date))
}

/// `HH:MM` from a client.
pub fn parse_time(field: &str, text: &str) -> Result<Time, DomainError> {
    let t: Time = text.trim().parse().map_err(|_| {
        invalid(format!(
            "`{field}` must be a time of day like 09:30, not {:?}",
            text.chars().take(20).collect::<String>()
        ))
    })?;
    Ok(t)
}

/// The instant of a local date and time in `tz` (gap: `invalid`; fold: the
/// earlier one).
pub fn local_instant(tz: &TimeZone, field: &str, dt: DateTime) -> Result<i64, DomainError> {
    let amb = tz.to_ambiguous_timestamp(dt);
    if let AmbiguousOffset::Gap { .. } = amb.offset() {
        return Err(invalid(format!(
            "`{field}`: {dt} does not exist in this time zone (the clocks skip it for daylight saving)"
        )));
    }
    amb.earlier()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| invalid(format!("`{field}`: {dt} is out of range")))
}

/// A start from a client → an instant.
pub fn parse_start(tz: &TimeZone, field: &str, start: &StartArg) -> Result<i64, DomainError> {
    match start {
        StartArg::Ms(ms) => Timestamp::from_millisecond(*ms)
            .map(|t| t.as_millisecond())
            .map_err(|_| invalid(format!("`{field}` is out of range"))),
        StartArg::Text(text) => {
            let text = text.trim();
            if let Ok(ts) = text.parse::<Timestamp>() {
                return Ok(ts.as_millisecond());
            }
            let dt: DateTime = text.parse().map_err(|_| {
                invalid(format!(
                    "`{field}` must be a local time like 2026-12-07T15:00 (or ms since the epoch), not {:?}",
                    text.chars().take(30).collect::<String>()
                ))
            })?;
            local_instant(tz, field, dt)
        }
    }
}

/// The local date (`yyyymmdd`) and time of an instant.
pub fn local_of(tz: &TimeZone, ms: i64) -> (u32, DateTime) {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let dt = tz.to_datetime(ts);
    (day_of_date(dt.date()), dt)
}

/// "15:00".
pub fn hhmm(dt: DateTime) -> String {
    format!("{:02}:{:02}", dt.hour(), dt.minute())
}

/// The instants a local date starts and ends at (the next midnight).
pub fn day_bounds(tz: &TimeZone, day: u32) -> Option<(i64, i64)> {
    let date = date_of_day(day)?;
    let start = tz.to_ambiguous_timestamp(date.to_datetime(Time::midnight()));
    let next = date.tomorrow().ok()?;
    let end = tz.to_ambiguous_timestamp(next.to_datetime(Time::midnight()));
    Some((
        start.compatible().ok()?.as_millisecond(),
        end.compatible().ok()?.as_millisecond(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("tz")
    }

    #[test]
    fn a_start_in_the_spring_gap_is_invalid_and_a_repeated_hour_is_the_first() {
        let tz = berlin();
        // 2026-03-29: 02:00 → 03:00 in Berlin.
        let gap = parse_start(&tz, "start", &StartArg::Text("2026-03-29T02:30".into()));
        assert!(gap.expect_err("gap").message.contains("does not exist"));
        // 2026-10-25: 03:00 → 02:00; 02:30 happens twice.
        let fold =
            parse_start(&tz, "start", &StartArg::Text("2026-10-25T02:30".into())).expect("fold");
        let first = "2026-10-25T00:30:00Z"
            .parse::<Timestamp>()
            .expect("ts")
            .as_millisecond();
        assert_eq!(fold, first, "02:30 CEST, the earlier of the two");
        // An instant with an offset is taken as it is.
        let z = parse_start(&tz, "start", &StartArg::Text("2026-12-07T14:00:00Z".into()))
            .expect("instant");
        assert_eq!(hhmm(local_of(&tz, z).1), "15:00");
    }

    #[test]
    fn a_dst_day_is_23_or_25_hours_long() {
        let tz = berlin();
        let (a, b) = day_bounds(&tz, 20260329).expect("day");
        assert_eq!(b - a, 23 * 3_600_000);
        let (a, b) = day_bounds(&tz, 20261025).expect("day");
        assert_eq!(b - a, 25 * 3_600_000);
    }

    #[test]
    fn dates_and_times_are_checked() {
        assert_eq!(parse_date("date", "2026-12-07").expect("date"), 20261207);
        assert!(parse_date("date", "2026-13-07").is_err());
        assert!(parse_date("date", "7/12/2026").is_err());
        assert!(parse_time("start", "25:00").is_err());
        assert_eq!(
            hhmm(Date::constant(2026, 1, 1).to_datetime(parse_time("s", "09:30").expect("t"))),
            "09:30"
        );
    }
}
