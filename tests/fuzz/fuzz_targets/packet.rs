//! The Engine.IO / Socket.IO decoders on arbitrary client frames, and the
//! same bytes as a long-polling POST body.
//!
//! Bytes that are valid UTF-8 are a WebSocket text frame: `engineio::decode`,
//! then `socketio::decode` on a message's payload (and on the whole input,
//! for packets without the `4` prefix). Neither may panic, and what they
//! accept must survive a round trip: an EVENT, re-encoded the way a client
//! library would, decodes to the same packet; a CONNECT's auth stays an
//! object; an error always has a close reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use spa_hub::hub::engineio::{self, EioPacket};
use spa_hub::hub::{polling, recovery};
use spa_hub::hub::socketio::{self, SioPacket};

/// Equal JSON, numbers compared as serde_json can round-trip them (its
/// default float parser is not always correctly rounded: the last bits of
/// a huge literal, or of a subnormal, may move; the hub never re-encodes a
/// client's numbers, so this is not a hub property).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    (x - y).abs() <= x.abs().max(y.abs()) * 1e-12
                        || (x.abs() < 1e-290 && y.abs() < 1e-290)
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check_sio(payload: &str) {
    match socketio::decode(payload) {
        Ok(SioPacket::Event {
            namespace,
            ack_id,
            name,
            args,
        }) => {
            assert!(!socketio::RESERVED_EVENTS.contains(&name.as_str()));
            assert!(ack_id.is_none_or(|id| id <= socketio::MAX_ACK_ID));
            if namespace == "/" {
                let mut all = vec![Value::String(name.clone())];
                all.extend(args.iter().cloned());
                let again = format!(
                    "2{}{}",
                    ack_id.map(|i| i.to_string()).unwrap_or_default(),
                    Value::Array(all)
                );
                match socketio::decode(&again) {
                    Ok(SioPacket::Event {
                        namespace: n2,
                        ack_id: a2,
                        name: name2,
                        args: args2,
                    }) => {
                        assert_eq!(n2, "/");
                        assert_eq!(a2, ack_id);
                        assert_eq!(name2, name);
                        assert_eq!(args2.len(), args.len());
                        for (a, b) in args.iter().zip(&args2) {
                            assert!(same(a, b), "args changed through a round trip: {a} → {b}");
                        }
                    }
                    other => panic!("re-encoded event {again:?} decodes to {other:?}"),
                }
                // The frame the hub would send back as an ACK is valid JSON.
                if let Some(id) = ack_id {
                    let ack = socketio::encode_ack_frame(id, "{\"ok\":false}");
                    assert!(ack.starts_with(&format!("43{id}[")));
                }
            }
        }
        Ok(SioPacket::Connect { auth, namespace }) => {
            assert!(auth.is_none_or(|a| a.is_object()));
            assert!(!namespace.is_empty());
        }
        Ok(SioPacket::Ack { ack_id, .. }) => assert!(ack_id <= socketio::MAX_ACK_ID),
        Ok(SioPacket::Disconnect { .. }) => {}
        Err(e) => {
            assert!(e.close_reason().starts_with("sio_"));
            assert!(!e.to_string().is_empty());
        }
    }
}

/// A POST body: refused as a whole, or split into packets that each
/// decode and join back into the body.
fn check_polling(data: &[u8]) {
    match polling::payload(data) {
        Ok(packets) => {
            assert!(!packets.is_empty());
            for p in &packets {
                assert!(engineio::decode(p).is_ok() && !engineio::is_binary(p));
                if let Ok(EioPacket::Message(payload)) = engineio::decode(p) {
                    check_sio(payload);
                }
            }
            assert_eq!(packets.join("\u{1e}").as_bytes(), data);
        }
        Err(why) => {
            assert!(!why.message().is_empty());
            assert!(matches!(why.code(), 1 | 3));
        }
    }
    // A CONNECT payload's recovery fields never panic either.
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        if let Some(ask) = recovery::ask(Some(&value)) {
            assert!(!ask.pid.is_empty() && ask.pid.len() <= 64);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_polling(data);
    let Ok(text) = std::str::from_utf8(data) else {
        // A binary frame: the hub refuses it before any decoder runs.
        return;
    };
    match engineio::decode(text) {
        Ok(EioPacket::Message(payload)) => check_sio(payload),
        Ok(EioPacket::Ping(p)) => assert_eq!(engineio::encode_pong(p), format!("3{p}")),
        Ok(_) => {}
        Err(e) => assert!(e.close_reason().starts_with("eio_")),
    }
    check_sio(text);
});
