//! Engine.IO v4 text packets over the WebSocket transport: decoding one
//! client text frame into an [`EioPacket`] and encoding the few frames the
//! hub sends at this layer (the `open` handshake, `ping`, `pong`, `close`,
//! and the `message` wrapper around a Socket.IO packet).
//!
//! Pure code: no I/O, no async, and no panics on any input. Binary
//! WebSocket frames are not Engine.IO text packets and are handled (refused)
//! by the caller; the HTTP long-polling framing (`\x1e` separators, `b`
//! base64 prefix) is not supported because the hub speaks WebSocket only.
//!
//! Wire format (one packet per WebSocket frame): `<type digit>[<data>]`,
//! with type `0` open, `1` close, `2` ping, `3` pong, `4` message,
//! `5` upgrade, `6` noop.

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

/// The `open` handshake frame:
/// `0{"sid":"…","upgrades":[],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`.
///
/// The keys are written in this fixed order; the sid is escaped by
/// serde_json. `upgrades` is always empty (WebSocket is the only transport).
pub fn encode_open(
    sid: &str,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    let sid_json = serde_json::Value::from(sid).to_string();
    let mut out = String::with_capacity(sid_json.len() + 96);
    out.push_str("0{\"sid\":");
    out.push_str(&sid_json);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        ",\"upgrades\":[],\"pingInterval\":{ping_interval_ms},\"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}"
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
            encode_open("lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1_000_000),
            "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"
        );
    }

    #[test]
    fn open_escapes_the_sid_and_is_valid_json() {
        let frame = encode_open("a\"b\\c\n\u{1}é", 1, 2, 3);
        let json = frame.strip_prefix('0').unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(json).expect("valid json");
        assert_eq!(value["sid"], "a\"b\\c\n\u{1}é");
        assert_eq!(value["upgrades"], serde_json::json!([]));
        assert_eq!(value["pingInterval"], 1);
        assert_eq!(value["pingTimeout"], 2);
        assert_eq!(value["maxPayload"], 3);
        let extremes = encode_open("", u64::MAX, 0, usize::MAX);
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
    fn round_trips() {
        for payload in ["", "2[\"x\",1]", "0", "é☕\u{0}"] {
            let frame = encode_message(payload);
            assert_eq!(decode(&frame), Ok(EioPacket::Message(payload)));
        }
        assert_eq!(decode(&encode_pong("probe")), Ok(EioPacket::Pong("probe")));
        assert_eq!(decode(&encode_open("s", 1, 2, 3)), Ok(EioPacket::Open));
    }
}
