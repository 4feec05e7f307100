//! Floor set-up through the writer (no hub): commands as the admin token,
//! and a therapist called with a customer into a room.

use serde_json::Value;
use spa_hub::domain::command::*;
use spa_hub::domain::{Actor, Command, Role};
use spa_hub::writer::WriterHandle;

/// Runs `command` as the admin token; it must be accepted.
pub async fn ok(h: &WriterHandle, command: Command) -> Value {
    h.execute(Actor::AdminToken, command)
        .await
        .expect("accepted")
}

/// The id of the `what` record in an ack.
pub fn id(v: &Value, what: &str) -> u64 {
    v[what]["id"].as_u64().expect("id")
}

/// Creates therapist `T{n}` (clocked in) and customer `C{n}` for `service`,
/// and calls the visit into `room` with that therapist. Returns the visit id.
pub async fn called_visit(
    h: &WriterHandle,
    n: impl std::fmt::Display,
    service: u64,
    room: u64,
    override_reason: Option<&str>,
) -> u64 {
    let therapist = id(
        &ok(
            h,
            Command::StaffCreate(StaffCreate {
                name: format!("T{n}"),
                role: Role::Therapist,
                pin: None,
                skills: vec![],
                pin_hash: "x".into(),
            }),
        )
        .await,
        "staff",
    );
    ok(
        h,
        Command::ClockIn(TherapistRef {
            therapist_id: Some(therapist),
        }),
    )
    .await;
    let visit = id(
        &ok(
            h,
            Command::VisitCreate(VisitCreate {
                customer_id: None,
                customer_name: format!("C{n}"),
                service_ids: vec![service],
                requested_therapist_id: None,
                phone: None,
                notes: None,
                token_hash: format!("h{n}"),
            }),
        )
        .await,
        "visit",
    );
    ok(
        h,
        Command::VisitCall(VisitCall {
            visit_id: Some(visit),
            therapist_id: Some(therapist),
            room_id: Some(room),
            override_reason: override_reason.map(str::to_string),
            count_turn: None,
        }),
    )
    .await;
    visit
}
