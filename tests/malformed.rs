//! Bad input, table-driven, over real connections to the real daemon (a
//! child process, so a panic anywhere would show in its stderr or kill it):
//!
//! - frames that break Engine.IO / Socket.IO: each closes its connection
//!   with the documented code (1002 malformed, 1003 binary, 1009 too big,
//!   1008 policy);
//! - commands that are well-formed packets with bad arguments: each gets
//!   its documented error ack (`invalid`, `not_found`, `conflict`, …) and
//!   the connection stays usable;
//! - raw WebSocket frames no library would send (invalid UTF-8, unmasked,
//!   reserved bits and opcodes, lying lengths, bad close frames): the
//!   connection is failed as RFC 6455 says (1007 for text that is not UTF-8,
//!   1002 for a protocol violation, 1009 for a length past maxPayload), the
//!   daemon stays up.
//!
//! - long-polling input (#18): unknown or missing `sid`, packets that are
//!   not Engine.IO v4 (v3 length prefixes, garbage between separators, empty
//!   pieces), binary packets, invalid UTF-8, a POST over `maxPayload`, a
//!   second concurrent GET, bad methods, versions and transports, and a
//!   Socket.IO-level malformed packet after CONNECT: each gets the
//!   specification's `400` (`413` for the size) and, where it says so, the
//!   session ends (the next GET is `400`); a waiting GET is released.
//!
//! After all of it: the daemon answers /healthz, no `panicked` in its log,
//! and the seq and the whole snapshot are exactly as before (every input
//! here must change nothing). tests/hub.rs has a few of the frame cases
//! already (one of each close code); this table is the exhaustive one.

mod common;
mod faultkit;

use std::io::{Read, Write};

use faultkit::{raw_ws, read_frame, ws_frame};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use spa_hub::client::Client;
use tokio_tungstenite::tungstenite::Message;

const MAX_PAYLOAD: usize = 4096;
const T: Duration = Duration::from_secs(10);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(T, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads until the server closes: Some(code) for a close frame, None for a
/// dropped connection.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(T, ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("the server kept the connection open"),
        }
    }
}

async fn connected(url: &str, auth: bool) -> Ws {
    let mut cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    cfg.max_message_size = None;
    cfg.max_frame_size = None;
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("{url}/socket.io/?EIO=4&transport=websocket"),
        Some(cfg),
        false,
    )
    .await
    .expect("ws");
    assert!(recv_text(&mut ws).await.expect("open").starts_with("0{"));
    if auth {
        ws.send(Message::text(format!(
            "40{}",
            json!({"token": common::ADMIN})
        )))
        .await
        .expect("send");
        assert!(recv_text(&mut ws).await.expect("40").starts_with("40{"));
        assert!(recv_text(&mut ws)
            .await
            .expect("snapshot")
            .starts_with("42[\"snapshot\""));
    }
    ws
}

fn deep(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// Frames sent after CONNECT that must close the connection with a code.
fn frame_cases() -> Vec<(String, String, u16)> {
    let big = format!(
        "42[\"room.create\",{{\"name\":\"{}\"}}]",
        "x".repeat(MAX_PAYLOAD)
    );
    let cases: Vec<(&str, String, u16)> = vec![
        ("empty frame", "".into(), 1002),
        ("unknown Engine.IO type 9", "9".into(), 1002),
        ("unknown Engine.IO type 7", "7".into(), 1002),
        ("letter as type", "x42[\"sync\"]".into(), 1002),
        ("non-ASCII type", "é".into(), 1002),
        ("whitespace before type", " 42[\"sync\"]".into(), 1002),
        ("polling separator", "\u{1e}42[\"sync\"]".into(), 1002),
        ("base64 binary (polling)", "bAQID".into(), 1002),
        ("OPEN from a client", "0".into(), 1002),
        ("OPEN with data", "0{\"sid\":\"x\"}".into(), 1002),
        ("close with payload", "1x".into(), 1002),
        ("upgrade", "5".into(), 1002),
        ("upgrade with payload", "5probe".into(), 1002),
        ("noop with payload", "6 ".into(), 1002),
        ("empty Socket.IO packet", "4".into(), 1002),
        ("unknown Socket.IO type", "4x".into(), 1002),
        ("Socket.IO type 7", "47".into(), 1002),
        (
            "CONNECT_ERROR from a client",
            "44{\"message\":\"x\"}".into(),
            1002,
        ),
        ("CONNECT with an array", "40[1]".into(), 1002),
        ("CONNECT with a string", "40\"token\"".into(), 1002),
        ("CONNECT with truncated JSON", "40{\"token\":".into(), 1002),
        ("DISCONNECT with payload", "41x".into(), 1002),
        ("event without payload", "42".into(), 1002),
        ("event with an object", "42{\"a\":1}".into(), 1002),
        ("event with an empty array", "42[]".into(), 1002),
        ("event with a numeric name", "42[1]".into(), 1002),
        ("event with a null name", "42[null]".into(), 1002),
        ("event with a nested name", "42[[\"sync\"]]".into(), 1002),
        ("event with an object name", "42[{\"sync\":1}]".into(), 1002),
        ("letters as ack id", "42abc[\"sync\"]".into(), 1002),
        (
            "16-digit ack id",
            "421234567890123456[\"sync\"]".into(),
            1002,
        ),
        (
            "20-digit ack id",
            "4299999999999999999999[\"sync\"]".into(),
            1002,
        ),
        ("negative ack id", "42-1[\"sync\"]".into(), 1002),
        ("truncated JSON", "42[\"sync\"".into(), 1002),
        ("truncated string", "42[\"sy".into(), 1002),
        ("trailing bracket", "42[\"sync\"]]".into(), 1002),
        ("trailing garbage", "42[\"sync\"] x".into(), 1002),
        (
            "two packets in one frame",
            "42[\"sync\"]42[\"sync\"]".into(),
            1002,
        ),
        ("single quotes", "42['sync']".into(), 1002),
        ("NaN", "42[\"sync\",NaN]".into(), 1002),
        (
            "number overflowing f64",
            "42[\"room.create\",{\"name\":1e999999}]".into(),
            1002,
        ),
        (
            "lone surrogate escape",
            "42[\"sync\",\"\\ud800\"]".into(),
            1002,
        ),
        ("bad escape", "42[\"sync\",\"\\x41\"]".into(), 1002),
        (
            "control character in a string",
            "42[\"sync\",\"a\u{1}b\"]".into(),
            1002,
        ),
        (
            "JSON nested 200 deep",
            format!("42[\"sync\",{}]", deep(200)),
            1002,
        ),
        (
            "JSON nested 129 deep",
            format!("42[\"sync\",{}]", deep(129)),
            1002,
        ),
        ("reserved event connect", "42[\"connect\"]".into(), 1002),
        (
            "reserved event disconnect",
            "42[\"disconnect\",{}]".into(),
            1002,
        ),
        (
            "reserved event newListener",
            "42[\"newListener\"]".into(),
            1002,
        ),
        ("ACK without id", "43[{}]".into(), 1002),
        ("ACK without payload", "431".into(), 1002),
        ("ACK with an object", "431{}".into(), 1002),
        (
            "binary event",
            "451-[\"x\",{\"_placeholder\":true,\"num\":0}]".into(),
            1003,
        ),
        (
            "binary ack",
            "461-[{\"_placeholder\":true,\"num\":0}]".into(),
            1003,
        ),
        ("binary event without count", "45[\"x\"]".into(), 1003),
        (
            "event to another namespace",
            "42/admin,[\"sync\"]".into(),
            1008,
        ),
        ("frame over maxPayload", big, 1009),
    ];
    cases
        .into_iter()
        .map(|(n, f, c)| (n.to_string(), f, c))
        .collect()
}

/// Commands that are valid packets with bad arguments → (name, args, code).
fn command_cases(
    visit: u64,
    waiting: u64,
) -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let i64_over = serde_json::from_str::<Value>("9223372036854775808").expect("json");
    let u64_over = serde_json::from_str::<Value>("18446744073709551616").expect("json");
    vec![
        ("unknown command", "room.explode", json!({}), "invalid"),
        ("empty command name", "", json!({}), "invalid"),
        ("1000-char command name", "x", json!("long"), "invalid"), // name replaced below
        (
            "command name with NUL",
            "room.create\u{0}",
            json!({"name": "N"}),
            "invalid",
        ),
        (
            "upper-case name",
            "ROOM.CREATE",
            json!({"name": "U"}),
            "invalid",
        ),
        ("args a string", "room.create", json!("Lotus"), "invalid"),
        ("args a number", "room.create", json!(5), "invalid"),
        (
            "args an array",
            "room.create",
            json!([{"name": "A"}]),
            "invalid",
        ),
        ("args true", "room.create", json!(true), "invalid"),
        (
            "missing required field",
            "room.create",
            json!({}),
            "invalid",
        ),
        (
            "name a number",
            "room.create",
            json!({"name": 5}),
            "invalid",
        ),
        ("name null", "room.create", json!({"name": null}), "invalid"),
        ("name empty", "room.create", json!({"name": ""}), "invalid"),
        (
            "name only spaces",
            "room.create",
            json!({"name": "   "}),
            "invalid",
        ),
        (
            "name 10 000 chars",
            "room.create",
            json!({"name": "n".repeat(3000)}),
            "invalid",
        ),
        (
            "name with a control char",
            "room.create",
            json!({"name": "a\u{7}b"}),
            "invalid",
        ),
        (
            "unknown field",
            "room.create",
            json!({"name": "A", "nmae": "B"}),
            "invalid",
        ),
        (
            "capacity a string",
            "room.create",
            json!({"name": "A", "capacity": "two"}),
            "invalid",
        ),
        (
            "capacity 300 (u8)",
            "room.create",
            json!({"name": "A", "capacity": 300}),
            "invalid",
        ),
        (
            "capacity negative",
            "room.create",
            json!({"name": "A", "capacity": -1}),
            "invalid",
        ),
        (
            "capacity 0",
            "room.create",
            json!({"name": "A", "capacity": 0}),
            "invalid",
        ),
        (
            "capacity fractional",
            "room.create",
            json!({"name": "A", "capacity": 1.5}),
            "invalid",
        ),
        (
            "light channel a string",
            "room.create",
            json!({"name": "A", "light_channel": "1"}),
            "invalid",
        ),
        (
            "id 1e300",
            "room.remove",
            json!({"room_id": 1e300}),
            "invalid",
        ),
        (
            "id beyond u64",
            "room.remove",
            json!({"room_id": u64_over}),
            "invalid",
        ),
        (
            "id negative",
            "room.remove",
            json!({"room_id": -1}),
            "invalid",
        ),
        (
            "id u64::MAX",
            "room.remove",
            json!({"room_id": u64::MAX}),
            "not_found",
        ),
        (
            "id a string",
            "room.remove",
            json!({"room_id": "1"}),
            "invalid",
        ),
        (
            "status unknown",
            "room.set_status",
            json!({"room_id": 1, "status": "exploded"}),
            "invalid",
        ),
        (
            "price beyond i64",
            "service.create",
            json!({"name": "S", "duration_min": 30, "price_cents": i64_over}),
            "invalid",
        ),
        (
            "price negative",
            "service.create",
            json!({"name": "S", "duration_min": 30, "price_cents": -1}),
            "invalid",
        ),
        (
            "duration 0",
            "service.create",
            json!({"name": "S", "duration_min": 0, "price_cents": 100}),
            "invalid",
        ),
        (
            "turn weight NaN-ish string",
            "service.create",
            json!({"name": "S", "duration_min": 30, "price_cents": 1, "turn_weight": "NaN"}),
            "invalid",
        ),
        (
            "turn weight negative",
            "service.create",
            json!({"name": "S", "duration_min": 30, "price_cents": 1, "turn_weight": -1.0}),
            "invalid",
        ),
        (
            "role unknown",
            "staff.create",
            json!({"name": "Z", "role": "god", "pin": "1234"}),
            "invalid",
        ),
        (
            "PIN too short",
            "staff.create",
            json!({"name": "Z", "role": "cashier", "pin": "12"}),
            "invalid",
        ),
        (
            "PIN letters",
            "staff.create",
            json!({"name": "Z", "role": "cashier", "pin": "abcd"}),
            "invalid",
        ),
        (
            "PIN a number",
            "staff.create",
            json!({"name": "Z", "role": "cashier", "pin": 1234}),
            "invalid",
        ),
        (
            "device role admin",
            "device.pair",
            json!({"role": "admin", "name": "D"}),
            "invalid",
        ),
        (
            "visit without services",
            "visit.create",
            json!({"customer_name": "A", "service_ids": []}),
            "invalid",
        ),
        (
            "visit with unknown service",
            "visit.create",
            json!({"customer_name": "A", "service_ids": [999]}),
            "not_found",
        ),
        (
            "visit services not a list",
            "visit.create",
            json!({"customer_name": "A", "service_ids": 1}),
            "invalid",
        ),
        (
            "visit unknown",
            "visit.start",
            json!({"visit_id": 999}),
            "not_found",
        ),
        (
            "extend 0 minutes",
            "visit.extend",
            json!({"visit_id": waiting, "minutes": 0}),
            "invalid",
        ),
        (
            "extend 10^6 minutes",
            "visit.extend",
            json!({"visit_id": waiting, "minutes": 1_000_000}),
            "invalid",
        ),
        (
            "extend negative",
            "visit.extend",
            json!({"visit_id": waiting, "minutes": -5}),
            "invalid",
        ),
        (
            "leave without reason",
            "visit.leave",
            json!({"visit_id": waiting, "reason": ""}),
            "invalid",
        ),
        (
            "negative payment",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m1", "payments": [{"method": "cash", "amount_cents": -5000}]}),
            "invalid",
        ),
        (
            "zero payment",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m2", "payments": [{"method": "cash", "amount_cents": 0}]}),
            "invalid",
        ),
        (
            "payment beyond i64",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m3", "payments": [{"method": "cash", "amount_cents": i64_over}]}),
            "invalid",
        ),
        (
            "payments overflowing the sum",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m4", "payments": [{"method": "card", "amount_cents": i64::MAX}, {"method": "card", "amount_cents": i64::MAX}]}),
            "invalid",
        ),
        (
            "payments not adding up",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m5", "payments": [{"method": "card", "amount_cents": 1}]}),
            "invalid",
        ),
        (
            "card over-tendered",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m6", "payments": [{"method": "card", "amount_cents": 9000}]}),
            "invalid",
        ),
        (
            "no payments",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m7", "payments": []}),
            "invalid",
        ),
        (
            "nine payments",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m8", "payments": vec![json!({"method": "cash", "amount_cents": 1}); 9]}),
            "invalid",
        ),
        (
            "unknown method",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m9", "payments": [{"method": "bitcoin", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "negative tip",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m10", "tip_cents": -100, "payments": [{"method": "card", "amount_cents": 4900}]}),
            "invalid",
        ),
        (
            "discount 101 %",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m11", "discount": {"percent": 101, "reason": "x"}, "payments": [{"method": "card", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "discount negative",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m12", "discount": {"amount_cents": -1, "reason": "x"}, "payments": [{"method": "card", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "discount both kinds",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m13", "discount": {"amount_cents": 1, "percent": 1, "reason": "x"}, "payments": [{"method": "card", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "empty request id",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": " ", "payments": [{"method": "card", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "request id 65 chars",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "r".repeat(65), "payments": [{"method": "card", "amount_cents": 5000}]}),
            "invalid",
        ),
        (
            "payment unknown field",
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "m14", "payments": [{"method": "card", "amount_cents": 5000, "cvv": "123"}]}),
            "invalid",
        ),
        (
            "refund negative",
            "visit.refund",
            json!({"visit_id": visit, "amount_cents": -1, "method": "cash", "reason": "x"}),
            "conflict",
        ),
        (
            "drawer float negative",
            "drawer.open",
            json!({"float_cents": -100}),
            "invalid",
        ),
        (
            "drawer move negative",
            "drawer.move",
            json!({"kind": "pay_in", "amount_cents": -1}),
            "invalid",
        ),
        (
            "drawer move unknown kind",
            "drawer.move",
            json!({"kind": "steal", "amount_cents": 1}),
            "invalid",
        ),
        (
            "drawer move beyond the cap",
            "drawer.move",
            json!({"kind": "pay_in", "amount_cents": 1_000_000_001i64}),
            "invalid",
        ),
        (
            "drawer close without counts",
            "drawer.close",
            json!({}),
            "invalid",
        ),
        (
            "drawer close count a string",
            "drawer.close",
            json!({"counted": {"cash": "lots"}}),
            "invalid",
        ),
        (
            "report with a bad date",
            "report.day",
            json!({"date": "2026-13-45"}),
            "invalid",
        ),
        (
            "report with an unknown field",
            "report.day",
            json!({"day": "2026-01-01"}),
            "invalid",
        ),
        (
            "clock in an unknown therapist",
            "therapist.clock_in",
            json!({"therapist_id": 999}),
            "not_found",
        ),
    ]
}

/// After a bad raw frame: Ok(Some(code)) for a close frame, Ok(None) when
/// the server dropped the connection without one.
fn raw_outcome(s: &mut TcpStream) -> Option<u16> {
    loop {
        match read_frame(s) {
            Some((8, p)) if p.len() >= 2 => return Some(u16::from_be_bytes([p[0], p[1]])),
            Some((8, _)) => return Some(0),
            Some(_) => continue,
            None => return None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum RawExpect {
    /// A close frame with this code.
    Close(u16),
    /// The connection is failed: a close frame with any code, or dropped.
    Failed,
}

fn raw_cases() -> Vec<(&'static str, bool, Vec<u8>, RawExpect)> {
    use RawExpect::*;
    let mut over = ws_frame(true, 0, 1, b"", true);
    // A text frame header announcing 1 GiB (then nothing).
    over.truncate(0);
    over.extend_from_slice(&[0x81, 0x80 | 127]);
    over.extend_from_slice(&(1u64 << 30).to_be_bytes());
    over.extend_from_slice(&[0, 0, 0, 0]);
    let mut huge_len = vec![0x81, 0x80 | 127];
    huge_len.extend_from_slice(&u64::MAX.to_be_bytes());
    huge_len.extend_from_slice(&[0, 0, 0, 0]);
    let chunk = vec![b'x'; MAX_PAYLOAD / 2 + 10];
    let mut fragmented_big = ws_frame(false, 0, 1, b"42[\"sync\",\"", true);
    fragmented_big.extend(ws_frame(false, 0, 0, &chunk, true));
    fragmented_big.extend(ws_frame(false, 0, 0, &chunk, true));
    fragmented_big.extend(ws_frame(true, 0, 0, b"\"]", true));
    vec![
        (
            "invalid UTF-8 text frame",
            true,
            ws_frame(true, 0, 1, b"42[\"\xff\xfe\"]", true),
            Close(1007),
        ),
        (
            "truncated UTF-8 sequence",
            true,
            ws_frame(true, 0, 1, b"42[\"\xe2\x82", true),
            Close(1007),
        ),
        (
            "overlong UTF-8 encoding",
            true,
            ws_frame(true, 0, 1, b"42[\"\xc0\xaf\"]", true),
            Close(1007),
        ),
        (
            "UTF-16 surrogate in UTF-8",
            true,
            ws_frame(true, 0, 1, b"42[\"\xed\xa0\x80\"]", true),
            Close(1007),
        ),
        (
            "invalid UTF-8 before CONNECT",
            false,
            ws_frame(true, 0, 1, b"40{\"token\":\"\xff\"}", true),
            Close(1007),
        ),
        (
            "binary frame of invalid UTF-8",
            true,
            ws_frame(true, 0, 2, b"\xff\xfe\xfd", true),
            Close(1003),
        ),
        (
            "empty binary frame",
            true,
            ws_frame(true, 0, 2, b"", true),
            Close(1003),
        ),
        (
            "unmasked client frame",
            true,
            ws_frame(true, 0, 1, b"42[\"sync\"]", false),
            Close(1002),
        ),
        (
            "RSV1 set (no extension)",
            true,
            ws_frame(true, 4, 1, b"42[\"sync\"]", true),
            Close(1002),
        ),
        (
            "reserved opcode 3",
            true,
            ws_frame(true, 0, 3, b"x", true),
            Close(1002),
        ),
        (
            "reserved control opcode 0xB",
            true,
            ws_frame(true, 0, 0xb, b"x", true),
            Close(1002),
        ),
        (
            "continuation without a start",
            true,
            ws_frame(true, 0, 0, b"42[\"sync\"]", true),
            Close(1002),
        ),
        (
            "fragmented ping",
            true,
            ws_frame(false, 0, 9, b"x", true),
            Close(1002),
        ),
        (
            "ping with 200 bytes",
            true,
            ws_frame(true, 0, 9, &[b'p'; 200], true),
            Close(1002),
        ),
        ("text header announcing 1 GiB", true, over, Close(1009)),
        (
            "64-bit length with the top bit set",
            true,
            huge_len,
            Close(1009),
        ),
        (
            "fragments adding up past maxPayload",
            true,
            fragmented_big,
            Close(1009),
        ),
        (
            "close frame with code 999",
            true,
            ws_frame(true, 0, 8, &999u16.to_be_bytes(), true),
            Failed,
        ),
        (
            "close frame with 1 byte",
            true,
            ws_frame(true, 0, 8, b"\x03", true),
            Close(1002),
        ),
        (
            "close frame with invalid UTF-8 reason",
            true,
            ws_frame(true, 0, 8, b"\x03\xe8\xff", true),
            Close(1007),
        ),
        (
            "new text frame inside a fragmented one",
            true,
            {
                let mut f = ws_frame(false, 0, 1, b"42[\"sy", true);
                f.extend(ws_frame(true, 0, 1, b"42[\"sync\"]", true));
                f
            },
            Close(1002),
        ),
    ]
}

fn snapshot_without_time(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("server_time");
        // The clock's status (an office snapshot) is a reading of the time too.
        m.remove("clock");
    }
    v
}

async fn snapshot_of(url: &str) -> Value {
    let mut c = Client::connect(url, common::ADMIN).await.expect("admin");
    let s = c.next_event(T).await.expect("snapshot");
    assert_eq!(s.name, "snapshot");
    snapshot_without_time(s.data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_inputs_get_their_documented_error_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let max = MAX_PAYLOAD.to_string();
    let daemon = common::Daemon::start(&data, &[("SPA_MAX_PAYLOAD_BYTES", &max)]);
    let url = daemon.ws();
    let port = daemon.port;

    // A floor to aim the bad commands at: a visit awaiting payment with the
    // admin's drawer open, and one waiting.
    let admin = Client::connect(&url, common::ADMIN).await.expect("admin");
    faultkit::ok(&admin, "room.create", json!({"name": "Lotus"})).await;
    let svc = faultkit::ok(
        &admin,
        "service.create",
        json!({"name": "Thai", "duration_min": 60, "cleanup_min": 0, "price_cents": 5000}),
    )
    .await;
    let t = faultkit::ok(
        &admin,
        "staff.create",
        json!({"name": "Mia", "role": "therapist", "pin": "2468"}),
    )
    .await;
    faultkit::ok(
        &admin,
        "therapist.clock_in",
        json!({"therapist_id": t["staff"]["id"]}),
    )
    .await;
    let v = faultkit::ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Ann", "service_ids": [svc["service"]["id"]]}),
    )
    .await;
    let visit = v["visit"]["id"].as_u64().expect("id");
    for step in ["visit.call", "visit.start", "visit.finish"] {
        faultkit::ok(&admin, step, json!({"visit_id": visit})).await;
    }
    let w = faultkit::ok(
        &admin,
        "visit.create",
        json!({"customer_name": "Bob", "service_ids": [svc["service"]["id"]]}),
    )
    .await;
    let waiting = w["visit"]["id"].as_u64().expect("id");
    faultkit::ok(&admin, "drawer.open", json!({"float_cents": 1000})).await;
    let before = snapshot_of(&url).await;
    let seq_before = faultkit::healthz(port).1["seq"].clone();
    let mut tried = 0usize;
    let mut failures = Vec::new();

    // 1. Frames that close the connection with a documented code.
    for (name, frame, want) in frame_cases() {
        let mut ws = connected(&url, true).await;
        ws.send(Message::text(frame.clone())).await.expect("send");
        let got = close_code(&mut ws).await;
        tried += 1;
        if got != Some(want) {
            failures.push(format!(
                "frame `{name}`: expected close {want}, got {got:?}"
            ));
        }
    }
    // Before CONNECT: an event closes with 1008, garbage with 1002.
    for (name, frame, want) in [
        ("event before CONNECT", "42[\"sync\"]", 1008u16),
        (
            "ack id before CONNECT",
            "421[\"room.create\",{\"name\":\"x\"}]",
            1008,
        ),
        ("garbage before CONNECT", "zz", 1002),
        ("binary before CONNECT", "451-[]", 1003),
    ] {
        let mut ws = connected(&url, false).await;
        ws.send(Message::text(frame)).await.expect("send");
        tried += 1;
        let got = close_code(&mut ws).await;
        if got != Some(want) {
            failures.push(format!(
                "pre-CONNECT `{name}`: expected close {want}, got {got:?}"
            ));
        }
    }
    // A CONNECT refused for a bad token stays open (44), five close (1008).
    for auth in [
        "40{\"token\":[]}",
        "40{\"token\":{\"$ne\":null}}",
        &format!("40{}", json!({"token": "t".repeat(300)})),
        "40{\"token\":\"\\u0000\"}",
        "40{\"tok\":\"x\"}",
    ] {
        let mut ws = connected(&url, false).await;
        ws.send(Message::text(auth.to_string()))
            .await
            .expect("send");
        tried += 1;
        let reply = recv_text(&mut ws).await;
        if reply.as_deref() != Some("44{\"message\":\"unauthorized\"}") {
            failures.push(format!(
                "CONNECT `{auth}`: expected 44 unauthorized, got {reply:?}"
            ));
        }
    }

    // 2. Bad arguments: an error ack each, on one connection that stays up.
    let client = Client::connect(&url, common::ADMIN).await.expect("admin");
    for (what, name, args, want) in command_cases(visit, waiting) {
        let long = "x".repeat(1000);
        let name = if what == "1000-char command name" {
            long.as_str()
        } else {
            name
        };
        let ack = client
            .call_timeout(name, args.clone(), T)
            .await
            .unwrap_or_else(|e| panic!("`{what}`: no ack ({e}); log: {}", daemon.stderr()));
        tried += 1;
        let got = faultkit::code(&ack);
        if got != want {
            failures.push(format!(
                "command `{what}` {name} {args}: expected {want}, got {ack}"
            ));
        }
        if ack["error"]["message"]
            .as_str()
            .is_none_or(|m| m.is_empty() || m.len() > 600)
        {
            failures.push(format!(
                "command `{what}`: the error needs a short message: {ack}"
            ));
        }
    }
    // Ack ids at the edges are echoed exactly; a client ACK for an id the
    // hub never asked about is ignored.
    let mut ws = connected(&url, true).await;
    for (frame, want) in [
        ("420[\"room.explode\"]", "430["),
        ("42999999999999999[\"room.explode\"]", "43999999999999999["),
        ("42007[\"room.explode\"]", "437["),
        ("4312345[{\"ok\":true}]", ""),
    ] {
        ws.send(Message::text(frame)).await.expect("send");
        tried += 1;
        if want.is_empty() {
            continue;
        }
        match recv_text(&mut ws).await {
            Some(t) if t.starts_with(want) && t.contains("\"invalid\"") => {}
            other => failures.push(format!("ack id `{frame}`: expected {want}…, got {other:?}")),
        }
    }
    ws.send(Message::text("42[\"sync\"]")).await.expect("send");
    let alive = recv_text(&mut ws).await;
    if !alive
        .as_deref()
        .is_some_and(|t| t.starts_with("42[\"snapshot\""))
    {
        failures.push(format!(
            "after the ack-id cases the connection is not usable: {alive:?}"
        ));
    }

    // 3. Raw WebSocket frames no library sends.
    let mut raw_seen = Vec::new();
    for (what, auth, bytes, want) in raw_cases() {
        let mut s = raw_ws(port, auth);
        s.write_all(&bytes).expect("write");
        let got = raw_outcome(&mut s);
        tried += 1;
        raw_seen.push(format!("{what}: {got:?}"));
        let fine = match want {
            RawExpect::Close(code) => got == Some(code),
            RawExpect::Failed => true, // closed or dropped; it did not hang (read timeout panics)
        };
        if !fine {
            failures.push(format!("raw `{what}`: expected {want:?}, got {got:?}"));
        }
        assert!(
            faultkit::healthz(port).0 == 200,
            "the daemon is up after raw `{what}`"
        );
    }
    println!("raw frame outcomes (close code, None = dropped without a close frame):");
    for r in &raw_seen {
        println!("  {r}");
    }
    // Not a WebSocket at all.
    for junk in [
        "GARBAGE\r\n\r\n".to_string(),
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: x\r\n\r\n".into(),
        format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)),
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{".into(),
        // #21: a login that is not JSON (a cross-site form) is refused
        // before it can count towards a lockout; an oversized JSON body too.
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\nname=Mia&pin=2468".into(),
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 28\r\n\r\n{\"name\":\"Mia\",\"pin\":\"2468\"}".into(),
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n{".into(),
        // #21: the Host header does not make a foreign Origin the hub's own.
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".into(),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("tcp");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let _ = s.write_all(junk.as_bytes());
        let mut out = [0u8; 64];
        let n = s.read(&mut out).unwrap_or(0);
        tried += 1;
        let head = String::from_utf8_lossy(&out[..n]).to_string();
        if n > 0 && !(head.starts_with("HTTP/1.1 4") || head.starts_with("HTTP/1.1 5")) {
            failures.push(format!("junk HTTP: expected an error status or a close, got {head:?}"));
        }
    }

    // 4. Long-polling input.
    let (n, mut polling_failures) = polling_cases(port);
    tried += n;
    failures.append(&mut polling_failures);

    // #21: the sign-in page's `next` never becomes a redirect on the server
    // side (the page itself only follows the hub's own pages).
    for next in [
        "/%5C127.0.0.1:47199/",
        "/%09/127.0.0.1:47199/",
        "//evil.example/",
    ] {
        let (status, _) =
            common::http_get(port, &format!("/?next={next}")).expect("the page answers");
        tried += 1;
        if status != 200 {
            failures.push(format!(
                "/?next={next}: expected the page (200), got {status}"
            ));
        }
    }

    // Nothing changed, nothing panicked, the daemon is fine.
    let (status, h) = faultkit::healthz(port);
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["seq"], seq_before, "no bad input changed the state");
    let after = snapshot_of(&url).await;
    assert_eq!(after, before, "the whole snapshot is unchanged");
    let log = daemon.stderr();
    assert!(!log.contains("panicked"), "a panic in the daemon: {log}");
    let ack = client
        .call("room.create", json!({"name": "after"}))
        .await
        .expect("ack");
    assert_eq!(faultkit::code(&ack), "ok");
    println!("malformed inputs tried: {tried}");
    assert!(tried >= 50);
    assert!(
        failures.is_empty(),
        "{} of {tried} inputs went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const POLL: &str = "/socket.io/?EIO=4&transport=polling";

/// One HTTP request with raw bytes as the body: (status, body).
fn http_raw(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("tcp");
    s.set_read_timeout(Some(T)).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A new polling session's sid (its open packet read).
fn poll_session(port: u16) -> String {
    let (status, body) = http_raw(port, "GET", POLL, b"");
    assert_eq!(status, 200, "handshake: {body}");
    let open: Value = serde_json::from_str(body.trim_start_matches('0')).expect("open packet");
    open["sid"].as_str().expect("sid").to_string()
}

/// The long-polling table: (cases tried, failures).
fn polling_cases(port: u16) -> (usize, Vec<String>) {
    let mut tally = Tally::default();
    // Requests that open nothing.
    for (what, method, path, want) in [
        ("unknown sid GET", "GET", format!("{POLL}&sid=nope"), 400),
        ("unknown sid POST", "POST", format!("{POLL}&sid=nope"), 400),
        ("POST without sid", "POST", POLL.to_string(), 400),
        ("PUT", "PUT", POLL.to_string(), 400),
        (
            "EIO=3",
            "GET",
            "/socket.io/?EIO=3&transport=polling".into(),
            400,
        ),
        ("no EIO", "GET", "/socket.io/?transport=polling".into(), 400),
        (
            "transport=flashsocket",
            "GET",
            "/socket.io/?EIO=4&transport=flashsocket".into(),
            400,
        ),
        (
            "sid of 10 kB",
            "GET",
            format!("{POLL}&sid={}", "x".repeat(10_000)),
            400,
        ),
        (
            "upgrade with an unknown sid",
            "GET",
            "/socket.io/?EIO=4&transport=websocket&sid=nope".into(),
            400,
        ),
    ] {
        tally.expect(what, http_raw(port, method, &path, b"x"), want);
    }
    // Bodies that end the session: refused, and the next GET is 400.
    let big = vec![b'4'; MAX_PAYLOAD + 1];
    for (what, body, want) in [
        ("garbage", &b"abc"[..], 400),
        ("v3 length prefix", b"6:4hello", 400),
        ("empty piece between separators", b"4a\x1e\x1e4b", 400),
        ("a lone separator", b"\x1e", 400),
        ("empty body", b"", 400),
        ("unknown type after a good packet", b"3\x1e9", 400),
        ("binary packet", b"bAQIDBA==", 400),
        ("binary after text", b"4hello\x1ebAQIDBA==", 400),
        ("invalid UTF-8", b"4\xff\xfe", 400),
        ("open from a client with data", b"5probe", 400),
        ("over maxPayload", &big[..], 413),
    ] {
        let sid = poll_session(port);
        let path = format!("{POLL}&sid={sid}");
        tally.expect(what, http_raw(port, "POST", &path, body), want);
        tally.expect(
            &format!("GET after {what}"),
            http_raw(port, "GET", &path, b""),
            400,
        );
    }
    // A Socket.IO packet that is not one, after a good CONNECT: the session
    // is closed (a `1` for the next GET, then 400).
    let sid = poll_session(port);
    let path = format!("{POLL}&sid={sid}");
    let connect = format!("40{}", json!({"token": common::ADMIN}));
    tally.expect(
        "CONNECT",
        http_raw(port, "POST", &path, connect.as_bytes()),
        200,
    );
    let (status, body) = http_raw(port, "GET", &path, b"");
    if !tally.check(status == 200 && body.starts_with("40{")) {
        tally.failures.push(format!(
            "polling CONNECT: expected 40…, got {status} {body:?}"
        ));
    }
    tally.expect(
        "bad Socket.IO packet",
        http_raw(port, "POST", &path, b"4zz"),
        200,
    );
    let closing = http_raw(port, "GET", &path, b"");
    if !tally.check(closing == (200, "1".to_string()) || closing.0 == 400) {
        tally.failures.push(format!(
            "polling after a bad Socket.IO packet: expected a 1 or 400, got {closing:?}"
        ));
    }
    tally.expect(
        "GET after the close",
        http_raw(port, "GET", &path, b""),
        400,
    );
    // A second GET while one waits: 400; the first is released with a `1`.
    let sid = poll_session(port);
    let path = format!("{POLL}&sid={sid}");
    let first = std::thread::spawn({
        let path = path.clone();
        move || http_raw(port, "GET", &path, b"")
    });
    std::thread::sleep(Duration::from_millis(300));
    tally.expect(
        "second concurrent GET",
        http_raw(port, "GET", &path, b""),
        400,
    );
    let first = first.join().expect("first GET");
    if !tally.check(first == (200, "1".to_string())) {
        tally.failures.push(format!(
            "the waiting GET: expected 200 \"1\", got {first:?}"
        ));
    }
    tally.expect(
        "GET after the overlap",
        http_raw(port, "GET", &path, b""),
        400,
    );
    (tally.tried, tally.failures)
}

#[derive(Default)]
struct Tally {
    tried: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, ok: bool) -> bool {
        self.tried += 1;
        ok
    }

    fn expect(&mut self, what: &str, got: (u16, String), want: u16) {
        if !self.check(got.0 == want) {
            self.failures
                .push(format!("polling `{what}`: expected {want}, got {got:?}"));
        }
    }
}
