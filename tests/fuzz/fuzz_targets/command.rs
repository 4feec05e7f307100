//! Command argument decoding on arbitrary input: the bytes before the first
//! newline are the command name, the rest a JSON value (inputs whose rest is
//! not JSON are still decoded, as `null`, the "no arguments" case).
//!
//! `Command::decode` may only answer `Ok` or an `invalid` error; a decoded
//! command then goes through the pure core (`decide` against a small floor,
//! as the admin and as a therapist, and `apply` of what it decided), which
//! must not panic either, and whose refusals carry a code and a message.
//! The ack is also rendered with its sender's own view (#21): a therapist's
//! never shows the phone of a visit that is not theirs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use spa_hub::domain::{decide, Actor, Command, ErrorCode, EventRecord, Now, Role, Rules, State};

const NOW: Now = Now {
    ms: 1_795_700_000_000,
    day: 20261126,
};

/// A floor to decide against: rooms, a service, a therapist on the floor,
/// a cashier, visits in several states, the admin's drawer open.
fn floor() -> &'static State {
    static FLOOR: OnceLock<State> = OnceLock::new();
    FLOOR.get_or_init(|| {
        let script = [
            (
                "room.create",
                json!({"name": "Lotus", "light_channel": null}),
            ),
            ("room.create", json!({"name": "Jade", "capacity": 2})),
            (
                "service.create",
                json!({"name": "Thai", "duration_min": 60, "cleanup_min": 10, "price_cents": 5000}),
            ),
            ("staff.create", json!({"name": "Mia", "role": "therapist"})),
            ("staff.create", json!({"name": "Cass", "role": "cashier"})),
            ("therapist.clock_in", json!({"therapist_id": 4})),
            (
                "visit.create",
                json!({"customer_name": "Ann", "service_ids": [3]}),
            ),
            (
                "visit.create",
                json!({"customer_name": "Bob", "service_ids": [3], "phone": "1"}),
            ),
            ("visit.call", json!({"visit_id": 6})),
            ("drawer.open", json!({"float_cents": 1000})),
        ];
        let mut state = State::default();
        for (name, args) in script {
            let mut cmd = Command::decode(name, args).expect("script decodes");
            prepare(&mut cmd);
            let d = decide(&state, &Actor::AdminToken, &cmd, NOW, &rules())
                .unwrap_or_else(|e| panic!("the floor script: {name}: {e:?}"));
            apply(&mut state, d.events);
        }
        state
    })
}

/// What the shell does before the core sees a command: PINs become
/// hashes, new tokens are generated (here: fixed fake hashes).
fn prepare(cmd: &mut Command) {
    match cmd {
        Command::StaffCreate(a) => {
            if a.pin.take().is_some() || a.pin_hash.is_empty() {
                a.pin_hash = "$argon2id$v=19$fuzz".into();
            }
        }
        Command::StaffUpdate(a) => {
            if a.pin.take().is_some() {
                a.pin_hash = Some("$argon2id$v=19$fuzz2".into());
            }
        }
        Command::VisitCreate(a) => a.token_hash = "ab".repeat(32),
        Command::DevicePair(a) => a.token_hash = "cd".repeat(32),
        _ => {}
    }
}

/// The rules with a gift card secret, so card sales are decided in full.
fn rules() -> Rules {
    Rules {
        giftcard_key: Some(spa_hub::domain::money::giftcode::CodeKey::new(&[3; 32])),
        ..Rules::default()
    }
}

fn apply(state: &mut State, events: Vec<spa_hub::domain::Event>) {
    for event in events {
        let record = EventRecord {
            seq: state.seq() + 1,
            at: NOW.ms,
            actor: Actor::AdminToken,
            event,
        };
        state.apply(&record);
        assert_eq!(state.seq(), record.seq, "apply advances seq by one");
    }
}

fuzz_target!(|data: &[u8]| {
    let (name, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let value: Value = serde_json::from_slice(rest).unwrap_or(Value::Null);
    match Command::decode(name, value) {
        Err(e) => {
            assert_eq!(
                e.code,
                ErrorCode::Invalid,
                "decode refuses only as invalid: {e:?}"
            );
            assert!(!e.message.is_empty());
        }
        Ok(mut command) => {
            prepare(&mut command);
            assert!(spa_hub::domain::command::WIRE_COMMANDS.contains(&command.name()));
            let state = floor();
            for actor in [
                Actor::AdminToken,
                Actor::Staff {
                    id: 4,
                    role: Role::Therapist,
                },
                Actor::Staff {
                    id: 5,
                    role: Role::Cashier,
                },
            ] {
                match decide(state, &actor, &command, NOW, &rules()) {
                    Ok(d) => {
                        let mut after = state.clone();
                        apply(&mut after, d.events);
                        let _ = d.reply.render(&after, NOW);
                        // #21: the ack as its sender sees it; a therapist's
                        // never holds a phone of a visit not theirs (Bob's
                        // is "1" and he is not Mia's until she calls him).
                        let viewer = spa_hub::domain::views::Viewer::of(&actor);
                        let ack = d.reply.render_for(viewer, &after, NOW);
                        if let spa_hub::domain::views::Viewer::Therapist(me) = viewer {
                            for v in after.visits.values() {
                                if v.therapist != Some(me) && v.requested_therapist != Some(me) {
                                    if let Some(shown) = ack.get("visit") {
                                        if shown.get("id") == Some(&json!(v.id)) {
                                            assert!(shown.get("phone").is_none(), "{ack}");
                                        }
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => assert!(!e.message.is_empty(), "{:?} without a message", e.code),
                }
            }
        }
    }
});
