//! Socket.IO v5 text packets (the payload of an Engine.IO `message`, i.e.
//! what follows the leading `4` of a WebSocket text frame): decoding a
//! client packet into a [`SioPacket`] and encoding the packets the hub
//! sends (CONNECT ok, CONNECT_ERROR, EVENT, ACK, DISCONNECT).
//!
//! Pure code: no I/O, no async, and no panics on any input.
//!
//! Wire format of one packet (default socket.io-parser encoding):
//! `<type>[<namespace>,][<ack id>][<JSON payload>]`, where the namespace
//! (only present when it is not `/`) starts with `/` and runs to the first
//! `,` or to the end of the packet, and the ack id is a run of decimal
//! digits. Binary packets (`5`, `6`) are refused with
//! [`SioError::BinaryNotSupported`].
//!
//! Encoders come in two forms: `encode_*` returns the Socket.IO packet
//! *without* the Engine.IO `4` prefix (wrap it with
//! `engineio::encode_message`), and `encode_*_frame` returns the complete
//! WebSocket text frame *with* the `4` prefix, built in one allocation.

use serde_json::Value;
use std::fmt::Write as _;

/// At most this many decimal digits are accepted in an ack id.
pub const MAX_ACK_ID_DIGITS: usize = 15;
/// Largest ack id accepted: JavaScript's `Number.MAX_SAFE_INTEGER`.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;
/// Event names the reference parser refuses, because the JavaScript
/// libraries use them for their own purposes.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One decoded Socket.IO packet sent by a client.
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket {
    /// `0[/ns,][{auth object}]`: join a namespace, with an optional auth
    /// payload (always a JSON object when present).
    Connect {
        namespace: String,
        auth: Option<Value>,
    },
    /// `1[/ns,]`: leave a namespace.
    Disconnect { namespace: String },
    /// `2[/ns,][id]["name",...args]`: an event; `ack_id` asks for an ACK.
    Event {
        namespace: String,
        ack_id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3[/ns,]<id>[...args]`: the answer to an event the server sent.
    Ack {
        namespace: String,
        ack_id: u64,
        args: Vec<Value>,
    },
}

impl SioPacket {
    /// The namespace the packet is addressed to (`/` by default).
    pub fn namespace(&self) -> &str {
        match self {
            SioPacket::Connect { namespace, .. }
            | SioPacket::Disconnect { namespace }
            | SioPacket::Event { namespace, .. }
            | SioPacket::Ack { namespace, .. } => namespace,
        }
    }
}

/// Why a Socket.IO packet from a client is refused. Every variant means
/// the client broke the protocol; the reference server closes the
/// connection in each case. Messages never echo client data (bar a
/// single, escaped, packet-type character).
#[derive(Debug, thiserror::Error)]
pub enum SioError {
    /// The Engine.IO message was empty (a lone `4` frame).
    #[error("empty Socket.IO packet")]
    Empty,
    /// The first character is not a Socket.IO packet type.
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownType(char),
    /// Type `4` (CONNECT_ERROR) is only sent by servers.
    #[error("a client must not send a CONNECT_ERROR packet")]
    ConnectErrorFromClient,
    /// Types `5` (BINARY_EVENT) and `6` (BINARY_ACK).
    #[error("binary attachments are not supported")]
    BinaryNotSupported,
    /// The ack id has more than 15 digits, exceeds 2^53-1, or is missing
    /// from an ACK packet.
    #[error("invalid ack id: an ACK needs one, and it must be at most 15 decimal digits")]
    BadAckId,
    /// An EVENT payload that is missing, not an array, empty, or whose
    /// first element is not a string.
    #[error("EVENT payload must be a JSON array starting with the event name as a string")]
    BadEventPayload,
    /// An EVENT whose name is reserved by the Socket.IO libraries.
    #[error("event name {0:?} is reserved")]
    ReservedEventName(&'static str),
    /// An ACK payload that is missing or not an array.
    #[error("ACK payload must be a JSON array")]
    BadAckPayload,
    /// A CONNECT payload that is not a JSON object.
    #[error("CONNECT payload must be a JSON object")]
    BadConnectPayload,
    /// A DISCONNECT packet with anything after its namespace.
    #[error("DISCONNECT packet must not carry a payload")]
    BadDisconnectPayload,
    /// The payload is not one JSON value: syntax errors, bad escapes,
    /// truncation, trailing data, numbers out of range, or nesting deeper
    /// than serde_json's recursion limit (128).
    #[error("invalid JSON in Socket.IO packet: {0}")]
    InvalidJson(#[from] serde_json::Error),
}

impl SioError {
    /// A short, stable code for logs and close reasons.
    pub fn close_reason(&self) -> &'static str {
        match self {
            SioError::Empty => "sio_empty_packet",
            SioError::UnknownType(_) => "sio_unknown_packet_type",
            SioError::ConnectErrorFromClient => "sio_connect_error_from_client",
            SioError::BinaryNotSupported => "sio_binary_not_supported",
            SioError::BadAckId => "sio_bad_ack_id",
            SioError::BadEventPayload => "sio_bad_event_payload",
            SioError::ReservedEventName(_) => "sio_reserved_event_name",
            SioError::BadAckPayload => "sio_bad_ack_payload",
            SioError::BadConnectPayload => "sio_bad_connect_payload",
            SioError::BadDisconnectPayload => "sio_bad_disconnect_payload",
            SioError::InvalidJson(_) => "sio_invalid_json",
        }
    }
}

/// Decodes one Socket.IO packet (the Engine.IO message payload, without
/// the leading `4`).
///
/// JSON whitespace around the payload is accepted, as `JSON.parse` does;
/// anything else after the JSON value is an error.
pub fn decode(payload: &str) -> Result<SioPacket, SioError> {
    let mut chars = payload.chars();
    let kind = chars.next().ok_or(SioError::Empty)?;
    let rest = chars.as_str();
    match kind {
        '0' => {
            let (namespace, rest) = split_namespace(rest);
            decode_connect(namespace, rest)
        }
        '1' => {
            let (namespace, rest) = split_namespace(rest);
            if rest.is_empty() {
                Ok(SioPacket::Disconnect {
                    namespace: namespace.to_owned(),
                })
            } else {
                Err(SioError::BadDisconnectPayload)
            }
        }
        '2' => {
            let (namespace, rest) = split_namespace(rest);
            decode_event(namespace, rest)
        }
        '3' => {
            let (namespace, rest) = split_namespace(rest);
            decode_ack(namespace, rest)
        }
        '4' => Err(SioError::ConnectErrorFromClient),
        '5' | '6' => Err(SioError::BinaryNotSupported),
        other => Err(SioError::UnknownType(other)),
    }
}

/// Splits an optional `/namespace,` prefix; the namespace also ends at the
/// end of the packet (`40/admin` is what the reference test suite sends).
/// Splitting happens at an ASCII `,`, so always at a char boundary.
fn split_namespace(rest: &str) -> (&str, &str) {
    if !rest.starts_with('/') {
        return ("/", rest);
    }
    rest.split_once(',').unwrap_or((rest, ""))
}

/// Splits a leading run of ASCII digits off as an ack id.
fn split_ack_id(rest: &str) -> Result<(Option<u64>, &str), SioError> {
    let digits = rest
        .bytes()
        .take(MAX_ACK_ID_DIGITS + 1)
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return Ok((None, rest));
    }
    if digits > MAX_ACK_ID_DIGITS {
        return Err(SioError::BadAckId);
    }
    // `digits` counts ASCII bytes, so this is a char boundary; the checked
    // split keeps that an error rather than a panic regardless.
    let (id_text, json) = rest.split_at_checked(digits).ok_or(SioError::BadAckId)?;
    let id: u64 = id_text.parse().map_err(|_| SioError::BadAckId)?;
    if id > MAX_ACK_ID {
        return Err(SioError::BadAckId);
    }
    Ok((Some(id), json))
}

fn decode_connect(namespace: &str, json: &str) -> Result<SioPacket, SioError> {
    let auth = if json.is_empty() {
        None
    } else {
        match serde_json::from_str::<Value>(json)? {
            object @ Value::Object(_) => Some(object),
            _ => return Err(SioError::BadConnectPayload),
        }
    };
    Ok(SioPacket::Connect {
        namespace: namespace.to_owned(),
        auth,
    })
}

fn decode_event(namespace: &str, rest: &str) -> Result<SioPacket, SioError> {
    let (ack_id, json) = split_ack_id(rest)?;
    if json.is_empty() {
        return Err(SioError::BadEventPayload);
    }
    let Value::Array(items) = serde_json::from_str::<Value>(json)? else {
        return Err(SioError::BadEventPayload);
    };
    let mut items = items.into_iter();
    let Some(Value::String(name)) = items.next() else {
        return Err(SioError::BadEventPayload);
    };
    if let Some(reserved) = RESERVED_EVENTS.iter().find(|r| **r == name) {
        return Err(SioError::ReservedEventName(reserved));
    }
    Ok(SioPacket::Event {
        namespace: namespace.to_owned(),
        ack_id,
        name,
        args: items.collect(),
    })
}

fn decode_ack(namespace: &str, rest: &str) -> Result<SioPacket, SioError> {
    let (ack_id, json) = split_ack_id(rest)?;
    let ack_id = ack_id.ok_or(SioError::BadAckId)?;
    if json.is_empty() {
        return Err(SioError::BadAckPayload);
    }
    let Value::Array(args) = serde_json::from_str::<Value>(json)? else {
        return Err(SioError::BadAckPayload);
    };
    Ok(SioPacket::Ack {
        namespace: namespace.to_owned(),
        ack_id,
        args,
    })
}

// ---------------------------------------------------------------- encoding

/// Appends `s` as a JSON string literal, escaped by serde_json.
fn push_json_str(out: &mut String, s: &str) {
    // `Value`'s Display writes serde_json's compact form; writing to a
    // String cannot fail.
    let _ = write!(out, "{}", Value::from(s));
}

/// Appends `/ns,` unless the namespace is the main one (`/`) or empty.
fn push_namespace(out: &mut String, namespace: &str) {
    if !namespace.is_empty() && namespace != "/" {
        out.push_str(namespace);
        out.push(',');
    }
}

fn new_packet(frame: bool, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity + 2);
    if frame {
        out.push('4');
    }
    out
}

fn connect_ok(frame: bool, sid: &str) -> String {
    let mut out = new_packet(frame, sid.len() + 12);
    out.push_str("0{\"sid\":");
    push_json_str(&mut out, sid);
    out.push('}');
    out
}

fn connect_error(frame: bool, namespace: &str, message: &str) -> String {
    let mut out = new_packet(frame, namespace.len() + message.len() + 16);
    out.push('4');
    push_namespace(&mut out, namespace);
    out.push_str("{\"message\":");
    push_json_str(&mut out, message);
    out.push('}');
    out
}

fn event(frame: bool, name: &str, payload_json: &str) -> String {
    let mut out = new_packet(frame, name.len() + payload_json.len() + 8);
    out.push_str("2[");
    push_json_str(&mut out, name);
    if !payload_json.is_empty() {
        out.push(',');
        out.push_str(payload_json);
    }
    out.push(']');
    out
}

fn ack(frame: bool, ack_id: u64, payload_json: &str) -> String {
    let mut out = new_packet(frame, payload_json.len() + 24);
    out.push('3');
    let _ = write!(out, "{ack_id}");
    out.push('[');
    out.push_str(payload_json);
    out.push(']');
    out
}

/// CONNECT accepted with a recovery id (Socket.IO 4.6+ connection state
/// recovery), as an Engine.IO frame: `40{"sid":"…","pid":"…"}`.
pub fn encode_connect_ok_with_pid_frame(sid: &str, pid: &str) -> String {
    let mut out = new_packet(true, sid.len() + pid.len() + 20);
    out.push_str("0{\"sid\":");
    push_json_str(&mut out, sid);
    out.push_str(",\"pid\":");
    push_json_str(&mut out, pid);
    out.push('}');
    out
}

/// An event frame with its offset as the last argument
/// (`42["name",{…},"17"]`), which a recovering client sends back. A frame
/// that is not an event array is returned as it is.
pub fn with_offset(frame: &str, offset: u64) -> String {
    match frame.strip_suffix(']') {
        Some(head) if head.contains('[') => format!("{head},\"{offset}\"]"),
        _ => frame.to_string(),
    }
}

/// CONNECT accepted on the main namespace: `0{"sid":"…"}` (sid escaped).
pub fn encode_connect_ok(sid: &str) -> String {
    connect_ok(false, sid)
}

/// CONNECT refused on the main namespace: `4{"message":"…"}`.
pub fn encode_connect_error(message: &str) -> String {
    connect_error(false, "/", message)
}

/// CONNECT refused on a given namespace: `4/ns,{"message":"…"}` (the
/// namespace is omitted when it is `/`). The JS client only delivers the
/// error to the socket of that namespace, so a refusal of `40/other` must
/// name `/other`. `namespace` must come from [`decode`] (it then holds no
/// `,`) or be a trusted constant.
pub fn encode_connect_error_in(namespace: &str, message: &str) -> String {
    connect_error(false, namespace, message)
}

/// EVENT on the main namespace: `2["name",<payload_json>]`.
///
/// `payload_json` must already be serialised JSON (one value, or several
/// comma-separated values for several arguments); it is copied verbatim,
/// never reparsed or checked. An empty `payload_json` gives `2["name"]`
/// (an event without arguments). `name` is JSON-escaped.
pub fn encode_event(name: &str, payload_json: &str) -> String {
    event(false, name, payload_json)
}

/// ACK on the main namespace: `3<id>[<payload_json>]`.
///
/// `payload_json` is serialised JSON as for [`encode_event`], copied
/// verbatim; an empty one gives `3<id>[]` (an ACK without arguments).
pub fn encode_ack(ack_id: u64, payload_json: &str) -> String {
    ack(false, ack_id, payload_json)
}

/// DISCONNECT from the main namespace: `1`.
pub fn encode_disconnect() -> String {
    "1".to_owned()
}

/// [`encode_connect_ok`] as a WebSocket frame: `40{"sid":"…"}`.
pub fn encode_connect_ok_frame(sid: &str) -> String {
    connect_ok(true, sid)
}

/// [`encode_connect_error`] as a WebSocket frame: `44{"message":"…"}`.
pub fn encode_connect_error_frame(message: &str) -> String {
    connect_error(true, "/", message)
}

/// [`encode_connect_error_in`] as a WebSocket frame: `44/ns,{"message":"…"}`.
pub fn encode_connect_error_in_frame(namespace: &str, message: &str) -> String {
    connect_error(true, namespace, message)
}

/// [`encode_event`] as a WebSocket frame: `42["name",<payload_json>]`.
pub fn encode_event_frame(name: &str, payload_json: &str) -> String {
    event(true, name, payload_json)
}

/// [`encode_ack`] as a WebSocket frame: `43<id>[<payload_json>]`.
pub fn encode_ack_frame(ack_id: u64, payload_json: &str) -> String {
    ack(true, ack_id, payload_json)
}

/// [`encode_disconnect`] as a WebSocket frame: `41`.
pub fn encode_disconnect_frame() -> String {
    "41".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decodes a whole WebSocket text frame the way the hub does: Engine.IO
    /// first, then Socket.IO. Errors are reduced to their close codes.
    fn decode_frame(frame: &str) -> Result<SioPacket, &'static str> {
        match super::super::engineio::decode(frame) {
            Ok(super::super::engineio::EioPacket::Message(payload)) => {
                decode(payload).map_err(|e| e.close_reason())
            }
            Ok(other) => panic!("{frame:?} is not a message: {other:?}"),
            Err(e) => Err(e.close_reason()),
        }
    }

    fn event(ns: &str, ack_id: Option<u64>, name: &str, args: Vec<Value>) -> SioPacket {
        SioPacket::Event {
            namespace: ns.to_owned(),
            ack_id,
            name: name.to_owned(),
            args,
        }
    }

    // ------------------------------------------------ official JS client

    #[test]
    fn offsets_and_pids() {
        assert_eq!(
            with_offset("42[\"seq\",{\"seq\":3}]", 3),
            "42[\"seq\",{\"seq\":3},\"3\"]"
        );
        assert_eq!(with_offset("40{}", 3), "40{}");
        assert_eq!(
            encode_connect_ok_with_pid_frame("s\"", "p"),
            "40{\"sid\":\"s\\\"\",\"pid\":\"p\"}"
        );
    }

    #[test]
    fn js_client_connect_and_reply() {
        assert_eq!(
            decode_frame("40"),
            Ok(SioPacket::Connect {
                namespace: "/".into(),
                auth: None
            })
        );
        assert_eq!(
            decode_frame("40{\"token\":\"abc\"}"),
            Ok(SioPacket::Connect {
                namespace: "/".into(),
                auth: Some(json!({"token": "abc"}))
            })
        );
        // What the server sends back.
        assert_eq!(
            encode_connect_ok_frame("wZX3oN0bSVIhsaknAAAI"),
            "40{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}"
        );
        assert_eq!(
            encode_connect_error_frame("Not authorized"),
            "44{\"message\":\"Not authorized\"}"
        );
    }

    #[test]
    fn js_client_events_and_reply() {
        assert_eq!(
            decode_frame("42[\"sync\"]"),
            Ok(event("/", None, "sync", vec![]))
        );
        assert_eq!(
            decode_frame("421[\"room.create\",{\"name\":\"A\"}]"),
            Ok(event(
                "/",
                Some(1),
                "room.create",
                vec![json!({"name": "A"})]
            ))
        );
        // The server's answer to the ack request and a broadcast.
        assert_eq!(encode_ack_frame(1, "{\"ok\":true}"), "431[{\"ok\":true}]");
        assert_eq!(
            encode_event_frame("state", "{\"rooms\":[]}"),
            "42[\"state\",{\"rooms\":[]}]"
        );
        assert_eq!(encode_disconnect_frame(), "41");
    }

    #[test]
    fn reference_test_suite_frames() {
        assert_eq!(
            decode_frame("42[\"message\",1,\"2\",{\"3\":[true]}]"),
            Ok(event(
                "/",
                None,
                "message",
                vec![json!(1), json!("2"), json!({"3": [true]})]
            ))
        );
        assert_eq!(
            decode_frame("42456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]"),
            Ok(event(
                "/",
                Some(456),
                "message-with-ack",
                vec![json!(1), json!("2"), json!({"3": [false]})]
            ))
        );
        assert_eq!(
            encode_ack_frame(456, "1,\"2\",{\"3\":[false]}"),
            "43456[1,\"2\",{\"3\":[false]}]"
        );
        assert_eq!(
            decode_frame("452-[\"message\",{\"_placeholder\":true,\"num\":0}]"),
            Err("sio_binary_not_supported")
        );
        assert_eq!(decode_frame("42{}"), Err("sio_bad_event_payload"));
        assert_eq!(decode_frame("4abc"), Err("sio_unknown_packet_type"));
        assert!(decode_frame("42abc[\"message-with-ack\",1]").is_err());
        assert_eq!(
            encode_connect_error_in_frame("/random", "Invalid namespace"),
            "44/random,{\"message\":\"Invalid namespace\"}"
        );
    }

    // ------------------------------------------------ every packet type

    #[test]
    fn connect_packets() {
        let cases = [
            ("0", "/", None),
            ("0/admin,", "/admin", None),
            ("0/admin", "/admin", None),
            ("0/,", "/", None),
            ("0{}", "/", Some(json!({}))),
            (
                "0/custom,{\"token\":\"abc\"}",
                "/custom",
                Some(json!({"token": "abc"})),
            ),
            (
                "0 {\"a\":[1,{\"b\":null}]} ",
                "/",
                Some(json!({"a": [1, {"b": null}]})),
            ),
        ];
        for (input, ns, auth) in cases {
            assert_eq!(
                decode(input).ok(),
                Some(SioPacket::Connect {
                    namespace: ns.into(),
                    auth
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn disconnect_packets() {
        for (input, ns) in [("1", "/"), ("1/admin,", "/admin"), ("1/custom", "/custom")] {
            assert_eq!(
                decode(input).ok(),
                Some(SioPacket::Disconnect {
                    namespace: ns.into()
                }),
                "{input:?}"
            );
        }
        assert!(matches!(decode("1x"), Err(SioError::BadDisconnectPayload)));
        assert!(matches!(decode("11"), Err(SioError::BadDisconnectPayload)));
        assert!(matches!(
            decode("1/a,[]"),
            Err(SioError::BadDisconnectPayload)
        ));
    }

    #[test]
    fn event_packets() {
        assert_eq!(
            decode("2[\"foo\"]").ok(),
            Some(event("/", None, "foo", vec![]))
        );
        assert_eq!(
            decode("2/admin,[\"bar\"]").ok(),
            Some(event("/admin", None, "bar", vec![]))
        );
        assert_eq!(
            decode("212[\"foo\"]").ok(),
            Some(event("/", Some(12), "foo", vec![]))
        );
        assert_eq!(
            decode("2/admin,13[\"x\",null,[1,2],\"s\"]").ok(),
            Some(event(
                "/admin",
                Some(13),
                "x",
                vec![Value::Null, json!([1, 2]), json!("s")]
            ))
        );
        // JSON whitespace is accepted, like JSON.parse.
        assert_eq!(
            decode("2 [\"x\"] \n").ok(),
            Some(event("/", None, "x", vec![]))
        );
        assert_eq!(decode("2[\"\"]").ok(), Some(event("/", None, "", vec![])));
    }

    #[test]
    fn ack_packets() {
        assert_eq!(
            decode("30[]").ok(),
            Some(SioPacket::Ack {
                namespace: "/".into(),
                ack_id: 0,
                args: vec![]
            })
        );
        assert_eq!(
            decode("3/admin,13[\"bar\",{\"k\":1}]").ok(),
            Some(SioPacket::Ack {
                namespace: "/admin".into(),
                ack_id: 13,
                args: vec![json!("bar"), json!({"k": 1})]
            })
        );
        assert!(matches!(decode("3[\"x\"]"), Err(SioError::BadAckId)));
        assert!(matches!(decode("3/a,[]"), Err(SioError::BadAckId)));
        assert!(matches!(decode("31"), Err(SioError::BadAckPayload)));
        assert!(matches!(decode("31{}"), Err(SioError::BadAckPayload)));
        assert!(matches!(decode("31\"x\""), Err(SioError::BadAckPayload)));
    }

    #[test]
    fn refused_packet_types() {
        assert!(matches!(
            decode("4{\"message\":\"x\"}"),
            Err(SioError::ConnectErrorFromClient)
        ));
        assert!(matches!(decode("4"), Err(SioError::ConnectErrorFromClient)));
        assert!(matches!(
            decode("51-[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            Err(SioError::BinaryNotSupported)
        ));
        assert!(matches!(
            decode("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]"),
            Err(SioError::BinaryNotSupported)
        ));
        assert!(matches!(decode("5"), Err(SioError::BinaryNotSupported)));
        assert_eq!(
            SioError::BinaryNotSupported.to_string(),
            "binary attachments are not supported"
        );
        assert!(matches!(decode(""), Err(SioError::Empty)));
        assert!(matches!(decode("7[]"), Err(SioError::UnknownType('7'))));
        assert!(matches!(decode("x"), Err(SioError::UnknownType('x'))));
        assert!(matches!(decode("é2[]"), Err(SioError::UnknownType('é'))));
    }

    // ------------------------------------------------ ack ids

    #[test]
    fn ack_ids() {
        let id = |s: &str| match decode(s) {
            Ok(SioPacket::Event { ack_id, .. }) => Ok(ack_id),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.close_reason()),
        };
        assert_eq!(id("2[\"x\"]"), Ok(None));
        assert_eq!(id("20[\"x\"]"), Ok(Some(0)));
        assert_eq!(id("2007[\"x\"]"), Ok(Some(7)));
        assert_eq!(id("2999999999999999[\"x\"]"), Ok(Some(999_999_999_999_999)));
        assert_eq!(
            id("2/a,999999999999999[\"x\"]"),
            Ok(Some(999_999_999_999_999))
        );
        // 16 digits, even when still a safe integer, and beyond.
        assert_eq!(id("21000000000000000[\"x\"]"), Err("sio_bad_ack_id"));
        assert_eq!(id("29007199254740991[\"x\"]"), Err("sio_bad_ack_id"));
        assert_eq!(id("29007199254740992[\"x\"]"), Err("sio_bad_ack_id"));
        assert_eq!(id("218446744073709551616[\"x\"]"), Err("sio_bad_ack_id"));
        assert_eq!(
            id(&format!("2{}[\"x\"]", "9".repeat(10_000))),
            Err("sio_bad_ack_id")
        );
        // Leading junk: not digits, so it is read as (invalid) JSON.
        assert_eq!(id("2abc[\"x\"]"), Err("sio_invalid_json"));
        assert_eq!(id("2-1[\"x\"]"), Err("sio_invalid_json"));
        assert_eq!(id("2+1[\"x\"]"), Err("sio_invalid_json"));
        assert_eq!(id("2 1[\"x\"]"), Err("sio_invalid_json"));
        assert_eq!(id("2１[\"x\"]"), Err("sio_invalid_json")); // full-width digit
        assert_eq!(id("21.5[\"x\"]"), Err("sio_invalid_json"));
        assert_eq!(id("21e3[\"x\"]"), Err("sio_invalid_json"));
        // Same limits on ACK.
        assert!(matches!(
            decode("31000000000000000[]"),
            Err(SioError::BadAckId)
        ));
        assert!(matches!(
            decode("3999999999999999[]"),
            Ok(SioPacket::Ack {
                ack_id: 999_999_999_999_999,
                ..
            })
        ));
    }

    // ------------------------------------------------ malformed input

    #[test]
    fn malformed_frames() {
        let deep_ok = format!("42[\"x\",{}{}]", "[".repeat(100), "]".repeat(100));
        assert!(decode_frame(&deep_ok).is_ok());
        let cases: &[(&str, &str)] = &[
            ("", "eio_empty_packet"),
            ("x42[\"a\"]", "eio_unknown_packet_type"),
            ("4", "sio_empty_packet"),
            ("4x", "sio_unknown_packet_type"),
            ("4abc", "sio_unknown_packet_type"),
            ("47[\"a\"]", "sio_unknown_packet_type"),
            ("4 2[\"a\"]", "sio_unknown_packet_type"),
            ("4é", "sio_unknown_packet_type"),
            ("4☕[\"a\"]", "sio_unknown_packet_type"),
            ("44{\"message\":\"x\"}", "sio_connect_error_from_client"),
            ("451-[\"x\"]", "sio_binary_not_supported"),
            ("461-1[\"x\"]", "sio_binary_not_supported"),
            ("42", "sio_bad_event_payload"),
            ("42[", "sio_invalid_json"),
            ("42[1]", "sio_bad_event_payload"),
            ("42{}", "sio_bad_event_payload"),
            ("42[]", "sio_bad_event_payload"),
            ("42[null]", "sio_bad_event_payload"),
            ("42[[\"a\"]]", "sio_bad_event_payload"),
            ("42[{\"a\":1}]", "sio_bad_event_payload"),
            ("42\"a\"", "sio_bad_event_payload"),
            ("42null", "sio_bad_event_payload"),
            ("421", "sio_bad_event_payload"),
            ("42/admin", "sio_bad_event_payload"),
            ("42/admin,", "sio_bad_event_payload"),
            ("42/admin[\"a\"]", "sio_bad_event_payload"),
            ("42[\"connect\"]", "sio_reserved_event_name"),
            ("42[\"disconnect\",1]", "sio_reserved_event_name"),
            ("42[\"newListener\"]", "sio_reserved_event_name"),
            ("42[\"\\x\"]", "sio_invalid_json"),
            ("42[\"caf\\é\"]", "sio_invalid_json"),
            ("42[\"\\u12\"]", "sio_invalid_json"),
            ("42[\"\\uZZZZ\"]", "sio_invalid_json"),
            ("42[\"\\ud800\"]", "sio_invalid_json"),
            ("42[\"\\udc00x\"]", "sio_invalid_json"),
            ("42[\"\u{1}\"]", "sio_invalid_json"),
            ("42[\"a", "sio_invalid_json"),
            ("42[\"a\"", "sio_invalid_json"),
            ("42[\"a\",", "sio_invalid_json"),
            ("42[\"a\",{\"b\":]", "sio_invalid_json"),
            ("42[\"a\",{\"b\"}]", "sio_invalid_json"),
            ("42[\"a\",]", "sio_invalid_json"),
            ("42['a']", "sio_invalid_json"),
            ("42[\"a\",NaN]", "sio_invalid_json"),
            ("42[\"a\",1e999]", "sio_invalid_json"),
            ("42[\"a\",01]", "sio_invalid_json"),
            ("42[\"a\"]x", "sio_invalid_json"),
            ("42[\"a\"][\"b\"]", "sio_invalid_json"),
            ("42[\"a\"]\u{0}", "sio_invalid_json"),
            ("42\u{0}[\"a\"]", "sio_invalid_json"),
            ("42\u{feff}[\"a\"]", "sio_invalid_json"),
            ("42abc[\"a\"]", "sio_invalid_json"),
            ("421234567890123456[\"a\"]", "sio_bad_ack_id"),
            ("43[\"a\"]", "sio_bad_ack_id"),
            ("43", "sio_bad_ack_id"),
            ("431", "sio_bad_ack_payload"),
            ("431{}", "sio_bad_ack_payload"),
            ("431[", "sio_invalid_json"),
            ("40[]", "sio_bad_connect_payload"),
            ("40\"tok\"", "sio_bad_connect_payload"),
            ("40null", "sio_bad_connect_payload"),
            ("401", "sio_bad_connect_payload"),
            ("40{", "sio_invalid_json"),
            ("40{\"a\":1}}", "sio_invalid_json"),
            ("40/admin,{\"a\"", "sio_invalid_json"),
            ("40 ", "sio_invalid_json"),
            ("41x", "sio_bad_disconnect_payload"),
            ("41/admin,{}", "sio_bad_disconnect_payload"),
        ];
        assert!(cases.len() >= 30);
        for (frame, code) in cases {
            assert_eq!(decode_frame(frame).map(|_| ()), Err(*code), "{frame:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for input in [
            format!("2{}", "[".repeat(100_000)),
            format!("2[\"x\",{}", "[".repeat(100_000)),
            format!("2[\"x\",{}{}]", "[".repeat(100_000), "]".repeat(100_000)),
            format!("0{}", "{\"a\":".repeat(100_000)),
            format!("31{}", "[".repeat(100_000)),
        ] {
            match decode(&input) {
                Err(SioError::InvalidJson(e)) => {
                    assert!(e.to_string().contains("recursion limit"), "{e}")
                }
                other => panic!("unexpected {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn errors_have_messages_and_distinct_codes() {
        let json_error = decode("2[").err();
        let errors = [
            SioError::Empty,
            SioError::UnknownType('\u{1b}'),
            SioError::ConnectErrorFromClient,
            SioError::BinaryNotSupported,
            SioError::BadAckId,
            SioError::BadEventPayload,
            SioError::ReservedEventName("connect"),
            SioError::BadAckPayload,
            SioError::BadConnectPayload,
            SioError::BadDisconnectPayload,
        ];
        let mut codes: Vec<&str> = errors.iter().map(SioError::close_reason).collect();
        assert!(matches!(json_error, Some(SioError::InvalidJson(_))));
        if let Some(e) = &json_error {
            assert!(e.to_string().starts_with("invalid JSON"));
            codes.push(e.close_reason());
        }
        for e in &errors {
            assert!(e.to_string().len() > 10, "{e}");
        }
        assert_eq!(
            SioError::UnknownType('\u{1b}').to_string(),
            "unknown Socket.IO packet type '\\u{1b}'"
        );
        let count = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), count);
        assert!(codes.iter().all(|c| c.starts_with("sio_")));
    }

    // ------------------------------------------------ unicode and namespaces

    #[test]
    fn unicode_names_and_namespaces() {
        assert_eq!(
            decode("2[\"café ☕ 日本 😀\",\"é\"]").ok(),
            Some(event("/", None, "café ☕ 日本 😀", vec![json!("é")]))
        );
        assert_eq!(
            decode("2[\"\\u00e9\"]").ok(),
            Some(event("/", None, "é", vec![]))
        );
        assert_eq!(
            decode("2[\"\\ud83d\\ude00\"]").ok(),
            Some(event("/", None, "😀", vec![]))
        );
        assert_eq!(
            decode("2/ñandú☕,5[\"x\"]").ok(),
            Some(event("/ñandú☕", Some(5), "x", vec![]))
        );
        let p = decode("0/ünï,").ok();
        assert_eq!(p.as_ref().map(SioPacket::namespace), Some("/ünï"));
        assert_eq!(
            decode("1").ok().as_ref().map(SioPacket::namespace),
            Some("/")
        );
    }

    // ------------------------------------------------ encoders

    #[test]
    fn encoders_exact() {
        assert_eq!(encode_connect_ok("abc"), "0{\"sid\":\"abc\"}");
        assert_eq!(
            encode_connect_error("Not authorized"),
            "4{\"message\":\"Not authorized\"}"
        );
        assert_eq!(encode_connect_error_in("/", "m"), "4{\"message\":\"m\"}");
        assert_eq!(
            encode_connect_error_in("/x", "m"),
            "4/x,{\"message\":\"m\"}"
        );
        assert_eq!(
            encode_connect_error_in_frame("/x", "m"),
            "44/x,{\"message\":\"m\"}"
        );
        assert_eq!(encode_event("hey", "\"Jude\""), "2[\"hey\",\"Jude\"]");
        assert_eq!(encode_event("hey", ""), "2[\"hey\"]");
        assert_eq!(encode_event_frame("hey", ""), "42[\"hey\"]");
        assert_eq!(encode_ack(12, ""), "312[]");
        assert_eq!(encode_ack(0, "null"), "30[null]");
        assert_eq!(encode_ack(u64::MAX, "1"), format!("3{}[1]", u64::MAX));
        assert_eq!(encode_disconnect(), "1");
        // The payload is copied verbatim, not reparsed (key order kept).
        assert_eq!(
            encode_event("s", "{\"z\":1,\"a\":[1.50]}"),
            "2[\"s\",{\"z\":1,\"a\":[1.50]}]"
        );
    }

    #[test]
    fn encoders_escape_strings() {
        assert_eq!(
            encode_event("a\"b\\c\n\u{1}", "1"),
            "2[\"a\\\"b\\\\c\\n\\u0001\",1]"
        );
        assert_eq!(encode_connect_ok("\""), "0{\"sid\":\"\\\"\"}");
        assert_eq!(
            encode_connect_error("</script>\u{2028}é"),
            "4{\"message\":\"</script>\u{2028}é\"}"
        );
    }

    #[test]
    fn frames_equal_wrapped_packets() {
        use super::super::engineio::encode_message;
        assert_eq!(
            encode_connect_ok_frame("s"),
            encode_message(&encode_connect_ok("s"))
        );
        assert_eq!(
            encode_connect_error_frame("m"),
            encode_message(&encode_connect_error("m"))
        );
        assert_eq!(
            encode_connect_error_in_frame("/n", "m"),
            encode_message(&encode_connect_error_in("/n", "m"))
        );
        assert_eq!(
            encode_event_frame("e", "[1]"),
            encode_message(&encode_event("e", "[1]"))
        );
        assert_eq!(
            encode_ack_frame(9, "{}"),
            encode_message(&encode_ack(9, "{}"))
        );
        assert_eq!(
            encode_disconnect_frame(),
            encode_message(&encode_disconnect())
        );
    }

    #[test]
    fn round_trips() {
        let names = [
            "sync",
            "room.create",
            "",
            "a\"b\\c\n\t\u{0}",
            "café ☕ 😀",
            "</x>",
        ];
        let payloads = [
            "",
            "null",
            "{\"name\":\"A\"}",
            "[1,[2,[3]]]",
            "\"é\\n\"",
            "-1.5e3",
        ];
        for name in names {
            for payload in payloads {
                let frame = encode_event_frame(name, payload);
                let mut args = Vec::new();
                if !payload.is_empty() {
                    args.push(serde_json::from_str::<Value>(payload).unwrap_or(Value::Null));
                }
                assert_eq!(
                    decode_frame(&frame),
                    Ok(event("/", None, name, args)),
                    "{frame}"
                );
            }
        }
        for id in [0, 1, 456, 15, 999_999_999_999_999] {
            assert_eq!(
                decode(&encode_ack(id, "\"ok\",2")).ok(),
                Some(SioPacket::Ack {
                    namespace: "/".into(),
                    ack_id: id,
                    args: vec![json!("ok"), json!(2)]
                })
            );
        }
        assert_eq!(
            decode(&encode_connect_ok("x\"y")).ok(),
            Some(SioPacket::Connect {
                namespace: "/".into(),
                auth: Some(json!({"sid": "x\"y"}))
            })
        );
        assert_eq!(
            decode(&encode_disconnect()).ok(),
            Some(SioPacket::Disconnect {
                namespace: "/".into()
            })
        );
        // A CONNECT_ERROR is server-only, so decoding one is refused.
        assert!(matches!(
            decode(&encode_connect_error("no")),
            Err(SioError::ConnectErrorFromClient)
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of some tricky inputs, cut at every char boundary.
        let inputs = [
            "2/ñ,123[\"é☕\",{\"a\":[1,2,{\"b\":\"\\ud83d\\ude00\"}]}]",
            "3/x,99[\"\\u00e9\"]",
            "0/😀,{\"t\":\"é\"}",
            "61-/a,1[\"x\"]",
        ];
        for input in inputs {
            for (i, _) in input.char_indices() {
                let (head, tail) = input.split_at(i);
                let _ = decode(head);
                let _ = decode(tail);
            }
        }
        // Every single char in the first two Unicode planes as a packet
        // type, and after each valid type.
        for c in (0u32..0x2_0000).filter_map(char::from_u32) {
            let _ = decode(&c.to_string());
            for t in ['0', '1', '2', '3'] {
                let _ = decode(&format!("{t}{c}"));
            }
        }
    }
}
