//! Connection state recovery (Socket.IO 4.6+): a client that asked for it
//! gets a `pid` in its CONNECT reply and every event's offset (its `seq`)
//! as the event's last argument; when it comes back with `{pid, offset}`
//! in its CONNECT payload, the events it missed are read from the event
//! log on disk — so this works across a hub restart too — rendered by the
//! same code as live events ([`fanout::render`]) and filtered by the same
//! rule ([`OutEvent::frames_for`]) for the identity of the token it comes
//! back with. It then gets them instead of a snapshot, with its own `pid`
//! back, so `socket.recovered` is true.
//!
//! Too old (more than `SPA_CLIENT_QUEUE` events missed: the same bound as
//! a slow client's outbox), unknown (an offset beyond the log, or not a
//! number) or a log that cannot be read: a fresh snapshot and a new `pid`,
//! as for any new connection.
//!
//! What is replayed shows each entity as it is now (the state the replay is
//! rendered from), not as of its event: the client ends up exactly where a
//! snapshot would put it, with its `seq` stream gap-free and in order.
//!
//! Offsets are sent only to clients that ask (`recovery: true` in the
//! CONNECT payload, or a recovery attempt): an extra event argument would
//! break python-socketio handlers that take one argument.

use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::fanout::{self, OutEvent};
use super::socketio;
use crate::domain::state::State;
use crate::domain::views::Viewer;
use crate::domain::{Id, Now, Role};
use crate::store::LogReader;

/// What a reconnecting client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub pid: String,
    /// The `seq` of the last event it received.
    pub offset: u64,
}

/// Whether a CONNECT payload asks for offsets (and a `pid`).
pub fn wants_offsets(auth: Option<&Value>) -> bool {
    auth.is_some_and(|a| a.get("recovery") == Some(&Value::Bool(true)) || a.get("pid").is_some())
}

/// A recovery attempt in a CONNECT payload: a `pid` of 1 to 64 letters,
/// digits, `-` or `_`, and an offset (a string or number) that is a `seq`.
pub fn ask(auth: Option<&Value>) -> Option<Ask> {
    let auth = auth?;
    let pid = auth.get("pid")?.as_str()?;
    let pid_ok = (1..=64).contains(&pid.len())
        && pid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !pid_ok {
        return None;
    }
    let offset = match auth.get("offset")? {
        Value::String(s) if !s.is_empty() && s.len() <= 20 => s.parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some(Ask {
        pid: pid.to_string(),
        offset,
    })
}

/// Who the replay is for.
#[derive(Debug, Clone, Copy)]
pub struct For {
    pub viewer: Viewer,
    pub role: Role,
    pub staff_id: Option<Id>,
}

/// The frames a client missed after `offset`, with their offsets, and the
/// `seq` they bring it to; `None` when it must get a snapshot instead.
/// Runs on the writer thread (it needs the state), reading at most
/// `limit` events from the log.
pub fn replay(
    state: &State,
    log: &LogReader,
    offset: u64,
    limit: usize,
    now: Now,
    who: For,
) -> Option<(u64, Vec<Utf8Bytes>)> {
    let current = state.seq();
    if offset > current || current - offset > limit as u64 {
        return None;
    }
    let mut events = Vec::new();
    for record in log.events_from(offset + 1) {
        let record = record.ok()?;
        if record.seq > current {
            break;
        }
        events.push(record);
    }
    // The log must hold every missed event, in order.
    let gap_free = events
        .iter()
        .enumerate()
        .all(|(i, e)| e.seq == offset + 1 + i as u64);
    if !gap_free || events.len() as u64 != current - offset {
        return None;
    }
    let touched: Vec<_> = events.iter().map(|e| state.touched(&e.event)).collect();
    let batch = fanout::render(state, &events, &touched, now);
    Some((current, frames(&batch.events, who)))
}

/// The frames of these events for one client, exactly as a live client
/// gets them (its frames, or the `seq` marker), each with its offset.
pub fn frames(events: &[OutEvent], who: For) -> Vec<Utf8Bytes> {
    let mut out = Vec::new();
    for event in events {
        let before = out.len();
        out.extend(
            event
                .frames_for(who.viewer, who.role, who.staff_id)
                .map(|f| Utf8Bytes::from(socketio::with_offset(f, event.seq))),
        );
        if out.len() == before {
            out.push(Utf8Bytes::from(socketio::with_offset(
                &event.marker,
                event.seq,
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn asks_are_read_strictly() {
        let good = json!({"token": "t", "pid": "abc_1-2", "offset": "17"});
        assert_eq!(
            ask(Some(&good)),
            Some(Ask {
                pid: "abc_1-2".into(),
                offset: 17
            })
        );
        assert_eq!(
            ask(Some(&json!({"pid": "p", "offset": 3}))).map(|a| a.offset),
            Some(3)
        );
        for bad in [
            json!({"pid": "p"}),
            json!({"offset": "3"}),
            json!({"pid": "", "offset": "3"}),
            json!({"pid": "a b", "offset": "3"}),
            json!({"pid": "x".repeat(65), "offset": "3"}),
            json!({"pid": "p", "offset": "-1"}),
            json!({"pid": "p", "offset": "3x"}),
            json!({"pid": "p", "offset": "99999999999999999999999"}),
            json!({"pid": "p", "offset": 1.5}),
            json!({"pid": 5, "offset": "3"}),
            json!("pid"),
        ] {
            assert_eq!(ask(Some(&bad)), None, "{bad}");
        }
        assert_eq!(ask(None), None);
        assert!(wants_offsets(Some(&json!({"recovery": true}))));
        assert!(wants_offsets(Some(&json!({"pid": "p"}))));
        assert!(!wants_offsets(Some(&json!({"recovery": "yes"}))));
        assert!(!wants_offsets(None));
    }
}
