//! What leaves the box for head office (`domain::privacy`), checked on the
//! simulations' whole logs: with `omit`, no customer marker and no
//! credential in the JSON a site publishes; the JSON decodes to the same
//! record; and head office's day report over the filtered log is the
//! site's own, for every day of the log.

use std::collections::BTreeSet;

use crate::domain::privacy::{for_head_office, Pii};
use crate::domain::report::day_report;
use crate::domain::EventRecord;

/// `markers`: strings found only in customer data (names, phones, notes).
pub fn check_head_office_copy(log: &[EventRecord], markers: &[&str], day_of: impl Fn(i64) -> u32) {
    let mut seen_in_full = false;
    let omitted: Vec<EventRecord> = log
        .iter()
        .map(|r| {
            let shared = for_head_office(r, Pii::Omit);
            let json = serde_json::to_string(&shared).expect("encodes");
            for m in markers {
                assert!(!json.contains(m), "{m} leaves the box in {json}");
            }
            for secret in [
                "\"pin_hash\":\"$",
                "\"token_hash\":\"h",
                "customer_token_hash\":\"h",
            ] {
                assert!(
                    !json.contains(secret),
                    "a credential leaves the box in {json}"
                );
            }
            let back: EventRecord = serde_json::from_str(&json).expect("decodes");
            assert_eq!(back, shared, "JSON round trip");
            let full = serde_json::to_string(&for_head_office(r, Pii::Full)).expect("encodes");
            seen_in_full |= markers.iter().any(|m| full.contains(m));
            back
        })
        .collect();
    assert!(
        seen_in_full,
        "with `full` the customer data goes (the markers are real)"
    );
    let days: BTreeSet<u32> = log.iter().map(|r| day_of(r.at)).collect();
    for day in days {
        assert_eq!(
            day_report(omitted.iter().cloned(), day, &day_of),
            day_report(log.iter().cloned(), day, &day_of),
            "day {day}"
        );
    }
}
