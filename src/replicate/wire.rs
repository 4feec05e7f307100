//! What travels on NATS between a site and head office: the stream, the
//! subjects, the headers and the payload (one `EventRecord` as JSON, after
//! the privacy filter). Both sides use these, so they cannot drift apart.

use bytes::Bytes;

use crate::domain::EventRecord;

/// The JetStream stream every site publishes into.
pub const STREAM: &str = "SPA_EVENTS";
/// The subjects of the stream (one per site).
pub const STREAM_SUBJECTS: &str = "spa.*.events";
/// Head office's durable consumer.
pub const HQ_CONSUMER: &str = "spa-hq";

/// The site id (as in the subject).
pub const HDR_SITE: &str = "Spa-Site";
/// The event's `seq` on its site.
pub const HDR_SEQ: &str = "Spa-Seq";
/// The site's IANA time zone: head office cuts the site's days with it.
pub const HDR_TZ: &str = "Spa-Tz";
/// `omit` or `full`: what the privacy filter let through.
pub const HDR_PII: &str = "Spa-Pii";

/// The subject of a site's events.
pub fn events_subject(site: &str) -> String {
    format!("spa.{site}.events")
}

/// The core-NATS subject of a site's heartbeat (not in the stream).
pub fn alive_subject(site: &str) -> String {
    format!("spa.{site}.alive")
}

/// The site of `spa.<site>.events`, if the subject is one.
pub fn site_of_subject(subject: &str) -> Option<&str> {
    let site = subject.strip_prefix("spa.")?.strip_suffix(".events")?;
    crate::config::nats::valid_site_id(site).then_some(site)
}

/// The message id JetStream de-duplicates on.
pub fn message_id(site: &str, seq: u64) -> String {
    format!("{site}:{seq}")
}

pub fn encode(record: &EventRecord) -> Result<Bytes, String> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

pub fn decode(payload: &[u8]) -> Result<EventRecord, String> {
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

/// A site's heartbeat: where its log is and what head office has of it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alive {
    /// The last committed `seq`.
    pub seq: u64,
    /// The last `seq` JetStream confirmed.
    pub confirmed: u64,
    /// The site's wall clock (ms).
    pub at: i64,
}
