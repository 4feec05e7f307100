//! Engine.IO v4 text packets: decoding one client packet into an
//! [`EioPacket`], encoding the few packets the hub sends at this layer (the
//! `open` handshake, `ping`, `pong`, `close`, `noop` and the `message`
//! wrapper around a Socket.IO packet), and the HTTP long-polling payload
//! (packets joined by the record separator `\x1e`).
//!
//! Pure code: no I/O, no async, and no panics on any input. Binary
//! WebSocket frames and `b<base64>` polling packets carry binary data, which
//! the hub does not take: the caller refuses them.
//!
//! Wire format: `<type digit>[<data>]`, with type `0` open, `1` close,
//! `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop; one packet per
//! WebSocket frame, or several per polling request separated by `\x1e`.

use std::fmt::Write as _;

/// Engine.IO `ping` frame, sent by the server every `pingInterval`.
pub const PING: &str = "2";
/// Engine.IO `pong` frame (the server only sends it in answer to a client
/// `ping`, which a v4 client sends only as the `2probe` upgrade probe).
pub const PONG: &str = "3";
/// Engine.IO `close` frame: the transport is about to be closed.
pub const CLOSE: &str = "1";
/// Engine.IO `noop` frame.
pub const NOOP: &str = "6";

/// One decoded Engine.IO packet, borrowing its payload from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0`: handshake. Only a server sends it; a client sending it is a
    /// protocol violation for the caller to act on. Any data is ignored.
    Open,
    /// `1`: the client is closing the transport.
    Close,
    /// `2[payload]`: ping; the payload is usually empty (`probe` during an
    /// upgrade, which a WebSocket-only client never does).
    Ping(&'a str),
    /// `3[payload]`: pong, the answer to the server's ping.
    Pong(&'a str),
    /// `4<payload>`: a message; for Socket.IO the payload is a Socket.IO
    /// packet (see the sibling `socketio` module). May be empty.
    Message(&'a str),
    /// `5`: upgrade completed (only meaningful after a polling session).
    Upgrade,
    /// `6`: no operation.
    Noop,
}

/// Why a text frame is not a valid Engine.IO v4 packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EioError {
    /// The frame has no characters at all.
    #[error("empty Engine.IO packet")]
    Empty,
    /// The first character is not one of the packet types `0`..=`6`.
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownType(char),
    /// A `close`, `upgrade` or `noop` packet carried data after its type.
    #[error("Engine.IO {0} packet must not carry a payload")]
    UnexpectedPayload(&'static str),
}

impl EioError {
    /// A short, stable code for logs and close reasons.
    pub fn close_reason(&self) -> &'static str {
        match self {
            EioError::Empty => "eio_empty_packet",
            EioError::UnknownType(_) => "eio_unknown_packet_type",
            EioError::UnexpectedPayload(_) => "eio_unexpected_payload",
        }
    }
}

/// Decodes one WebSocket text frame into an Engine.IO packet.
///
/// An empty frame or an unknown type character is an error, as is data
/// after `1` (close), `5` (upgrade) or `6` (noop). The payload of ping,
/// pong and message is returned as is.
pub fn decode(frame: &str) -> Result<EioPacket<'_>, EioError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(EioError::Empty)?;
    // `Chars::as_str` gives the rest of the frame after the first char,
    // so no byte index is ever computed by hand.
    let rest = chars.as_str();
    let no_payload = |packet: EioPacket<'static>, name: &'static str| {
        if rest.is_empty() {
            Ok(packet)
        } else {
            Err(EioError::UnexpectedPayload(name))
        }
    };
    match kind {
        '0' => Ok(EioPacket::Open),
        '1' => no_payload(EioPacket::Close, "close"),
        '2' => Ok(EioPacket::Ping(rest)),
        '3' => Ok(EioPacket::Pong(rest)),
        '4' => Ok(EioPacket::Message(rest)),
        '5' => no_payload(EioPacket::Upgrade, "upgrade"),
        '6' => no_payload(EioPacket::Noop, "noop"),
        other => Err(EioError::UnknownType(other)),
    }
}

/// The record separator between packets of a long-polling payload.
pub const SEPARATOR: char = '\u{1e}';

/// The packets of a long-polling POST body, in order. Empty pieces are
/// kept (and fail [`decode`]), so `4a\x1e\x1e4b` is refused, not mended.
pub fn split_payload(body: &str) -> impl Iterator<Item = &str> {
    body.split(SEPARATOR)
}

/// Whether a polling packet is binary (`b<base64>`), which the hub refuses.
pub fn is_binary(packet: &str) -> bool {
    packet.starts_with('b')
}

/// The `open` handshake frame:
/// `0{"sid":"…","upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`.
///
/// The keys are written in this fixed order; the sid is escaped by
/// serde_json. `upgrades` is `["websocket"]` for a long-polling session
/// (`can_upgrade`) and empty on a WebSocket.
pub fn encode_open(
    sid: &str,
    can_upgrade: bool,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    let sid_json = serde_json::Value::from(sid).to_string();
    let mut out = String::with_capacity(sid_json.len() + 96);
    out.push_str("0{\"sid\":");
    out.push_str(&sid_json);
    // Writing to a String cannot fail.
    let upgrades = if can_upgrade { "[\"websocket\"]" } else { "[]" };
    let _ = write!(
        out,
        ",\"upgrades\":{upgrades},\"pingInterval\":{ping_interval_ms},\"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}"
    );
    out
}

/// Wraps a Socket.IO packet in an Engine.IO `message` frame (prefix `4`).
pub fn encode_message(socketio_packet: &str) -> String {
    let mut out = String::with_capacity(socketio_packet.len() + 1);
    out.push('4');
    out.push_str(socketio_packet);
    out
}

/// A `pong` frame echoing a ping's payload (`2probe` → `3probe`).
pub fn encode_pong(payload: &str) -> String {
    let mut out = String::with_capacity(payload.len() + 1);
    out.push_str(PONG);
    out.push_str(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_packet_type() {
        assert_eq!(decode("0"), Ok(EioPacket::Open));
        assert_eq!(decode("1"), Ok(EioPacket::Close));
        assert_eq!(decode("2"), Ok(EioPacket::Ping("")));
        assert_eq!(decode("3"), Ok(EioPacket::Pong("")));
        assert_eq!(decode("4"), Ok(EioPacket::Message("")));
        assert_eq!(decode("5"), Ok(EioPacket::Upgrade));
        assert_eq!(decode("6"), Ok(EioPacket::Noop));
    }

    #[test]
    fn decodes_payloads() {
        assert_eq!(decode("2probe"), Ok(EioPacket::Ping("probe")));
        assert_eq!(decode("3probe"), Ok(EioPacket::Pong("probe")));
        assert_eq!(decode("4hello"), Ok(EioPacket::Message("hello")));
        assert_eq!(
            decode("42[\"sync\"]"),
            Ok(EioPacket::Message("2[\"sync\"]"))
        );
        assert_eq!(decode("4é☕"), Ok(EioPacket::Message("é☕")));
        // Open from a client is returned (the caller rejects it); its data
        // is ignored.
        assert_eq!(decode("0{\"sid\":\"x\"}"), Ok(EioPacket::Open));
    }

    #[test]
    fn empty_frame_is_an_error() {
        assert_eq!(decode(""), Err(EioError::Empty));
    }

    #[test]
    fn unknown_types_are_errors() {
        for frame in [
            "7", "8", "9", "b", "bAQID", "x", "é", "☕4", " 4", "-1", "\u{1e}4",
        ] {
            let first = frame.chars().next().unwrap_or(' ');
            assert_eq!(
                decode(frame),
                Err(EioError::UnknownType(first)),
                "{frame:?}"
            );
        }
    }

    #[test]
    fn payload_on_payloadless_types_is_an_error() {
        assert_eq!(decode("1x"), Err(EioError::UnexpectedPayload("close")));
        assert_eq!(
            decode("5probe"),
            Err(EioError::UnexpectedPayload("upgrade"))
        );
        assert_eq!(decode("6 "), Err(EioError::UnexpectedPayload("noop")));
    }

    #[test]
    fn errors_have_messages_and_codes() {
        let errors = [
            EioError::Empty,
            EioError::UnknownType('\u{7}'),
            EioError::UnexpectedPayload("close"),
        ];
        for e in errors {
            assert!(!e.to_string().is_empty());
            assert!(e.close_reason().starts_with("eio_"));
        }
        // Control characters from the client are escaped in the message.
        assert_eq!(
            EioError::UnknownType('\u{7}').to_string(),
            "unknown Engine.IO packet type '\\u{7}'"
        );
    }

    #[test]
    fn open_is_exact() {
        assert_eq!(
            encode_open("lv_VI97HAXpY6yYWAAAC", false, 25000, 20000, 1_000_000),
            "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"
        );
    }

    #[test]
    fn open_escapes_the_sid_and_is_valid_json() {
        let frame = encode_open("a\"b\\c\n\u{1}é", false, 1, 2, 3);
        let json = frame.strip_prefix('0').unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(json).expect("valid json");
        assert_eq!(value["sid"], "a\"b\\c\n\u{1}é");
        assert_eq!(value["upgrades"], serde_json::json!([]));
        assert_eq!(value["pingInterval"], 1);
        assert_eq!(value["pingTimeout"], 2);
        assert_eq!(value["maxPayload"], 3);
        let extremes = encode_open("", true, u64::MAX, 0, usize::MAX);
        assert!(extremes.contains("\"upgrades\":[\"websocket\"]"));
        assert!(extremes.contains(&format!("\"pingInterval\":{}", u64::MAX)));
    }

    #[test]
    fn constants_and_message_wrapping() {
        assert_eq!(decode(PING), Ok(EioPacket::Ping("")));
        assert_eq!(decode(PONG), Ok(EioPacket::Pong("")));
        assert_eq!(decode(CLOSE), Ok(EioPacket::Close));
        assert_eq!(decode(NOOP), Ok(EioPacket::Noop));
        assert_eq!(encode_message("0{\"sid\":\"x\"}"), "40{\"sid\":\"x\"}");
        assert_eq!(encode_message(""), "4");
        assert_eq!(encode_pong("probe"), "3probe");
        assert_eq!(encode_pong(""), "3");
    }

    #[test]
    fn polling_payloads_split_on_the_record_separator() {
        let parts: Vec<&str> = split_payload("4a\u{1e}2\u{1e}bAQID").collect();
        assert_eq!(parts, ["4a", "2", "bAQID"]);
        let parts: Vec<&str> = split_payload("4a\u{1e}\u{1e}4b").collect();
        assert_eq!(parts, ["4a", "", "4b"]);
        assert_eq!(decode(parts[1]), Err(EioError::Empty));
        assert_eq!(split_payload("").collect::<Vec<_>>(), [""]);
        assert!(is_binary("bAQID") && !is_binary("4b"));
    }

    #[test]
    fn round_trips() {
        for payload in ["", "2[\"x\",1]", "0", "é☕\u{0}"] {
            let frame = encode_message(payload);
            assert_eq!(decode(&frame), Ok(EioPacket::Message(payload)));
        }
        assert_eq!(decode(&encode_pong("probe")), Ok(EioPacket::Pong("probe")));
        assert_eq!(
            decode(&encode_open("s", true, 1, 2, 3)),
            Ok(EioPacket::Open)
        );
    }
}
