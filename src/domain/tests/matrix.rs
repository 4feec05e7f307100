//! Every wire command × every role: `decide` answers `forbidden` exactly when
//! the permissions table says no, and accepts a well-formed command when it
//! says yes. Then the finer rules the table cannot express.

use serde_json::{json, Value};

use super::harness::*;
use crate::domain::command::WIRE_COMMANDS;
use crate::domain::permissions;
use crate::domain::state::{RoomStatus, VisitState};
use crate::domain::{Actor, Command, ErrorCode, Role};

/// The ids a scenario is built around.
struct Ids {
    admin: u64,
    cashier: u64,
    /// The therapist acting as "me".
    tess: u64,
    /// Another therapist, clocked out.
    otto: u64,
    lotus: u64,
    jade: u64,
    thai: u64,
    lobby: u64,
    visit: u64,
    /// A booking of Tess (see `scenario`), and Tess's own block.
    booking: u64,
    block: u64,
    /// A product on the shelf, and a sale (card-paid) of it.
    product: u64,
    sale: u64,
    /// The code hash of the gift card the counter's scenarios sell.
    card_hash: String,
    /// Two customer records (for `customer.*`, `visit.update`).
    carla: u64,
    dora: u64,
}

/// A floor where `name`, sent by anyone allowed to, makes sense.
fn scenario(name: &str) -> (Floor, Ids) {
    let mut f = Floor::new();
    let admin = f.add_staff("Ada", Role::Admin, &[]);
    let cashier = f.add_staff("Cass", Role::Cashier, &[]);
    let tess = f.add_staff("Tess", Role::Therapist, &[]);
    let otto = f.add_staff("Otto", Role::Therapist, &[]);
    let lotus = f.add_room("Lotus", 1);
    let jade = f.add_room("Jade", 1);
    let thai = f.add_service("Thai", 60, 10);
    let lobby = f.add_device("Lobby");
    let visit = f.add_visit("Vera", &[thai]);
    match name {
        "therapist.clock_in" => {}
        "therapist.resume" => {
            f.clock_in(tess);
            f.run(&ADMIN, take_break(tess));
        }
        _ => f.clock_in(tess),
    }
    // Money: every office actor has an open drawer, and the visit is ready.
    if name.starts_with("visit.checkout")
        || name.starts_with("visit.re")
        || name.starts_with("sale.")
        || name.starts_with("giftcard.")
        || name == "drawer.move"
        || name == "drawer.close"
    {
        for who in [
            ADMIN,
            staff_actor(admin, Role::Admin),
            staff_actor(cashier, Role::Cashier),
        ] {
            f.run(
                &who,
                Command::DrawerOpen(crate::domain::command::DrawerOpen {
                    float_cents: 10_000,
                }),
            );
        }
    }
    if name == "visit.checkout" || name == "visit.refund" || name == "visit.retip" {
        f.call_to(visit, tess, lotus);
        f.start(visit);
        f.finish(visit);
    }
    if name == "visit.refund" || name == "visit.retip" {
        let pay = Command::decode(
            "visit.checkout",
            json!({"visit_id": visit, "request_id": "first", "tip_cents": 500,
                   "payments": [{"method": "card", "amount_cents": 5_500}]}),
        )
        .expect("decodes");
        f.run(&ADMIN, pay);
    }
    // The book: Tess and Otto work today and on the 28th; Tess has a block
    // tonight and a booking (today at 10:00, or on the 28th for a cancel,
    // which a customer may make only 24 h ahead; at 08:15 for a no-show).
    let (mut booking, mut block) = (0, 0);
    if name.starts_with("booking.") || name.starts_with("block.") || name == "schedule.set" {
        for date in ["2026-11-26", "2026-11-28"] {
            for t in [tess, otto] {
                f.run(
                    &ADMIN,
                    book_cmd(
                        "schedule.set",
                        json!({"therapist_id": t, "date": date, "start": "08:00", "end": "20:00"}),
                    ),
                );
            }
        }
        f.run(&ADMIN, book_cmd("block.create", json!({"therapist_id": tess, "start": "2026-11-26T19:00", "end": "2026-11-26T20:00", "reason": "training"})));
        block = f.state.blocks.keys().copied().max().unwrap_or(0);
        let start = match name {
            "booking.cancel" => "2026-11-28T10:00",
            "booking.no_show" => "2026-11-26T08:15",
            _ => "2026-11-26T10:00",
        };
        let mut create = book_cmd(
            "booking.create",
            json!({"start": start, "service_ids": [thai], "therapist_id": tess, "room_id": jade, "customer_name": "Bea", "phone": "+1 555 0101"}),
        );
        if let Command::BookingCreate(c) = &mut create {
            c.token_hash = "booking-token-hash".into();
        }
        f.run(&ADMIN, create);
        booking = f.state.bookings.keys().copied().max().unwrap_or(0);
        if name == "booking.no_show" {
            f.advance(20);
        }
    }
    let (mut carla, mut dora) = (0, 0);
    if name.starts_with("customer.") {
        carla = f.add_customer("Carla Núñez", "+34 600 111 222", "nut oil allergy");
        dora = f.add_customer("Dora", "600 333 444", "");
    }
    match name {
        "visit.start" | "visit.undo" => f.call_to(visit, tess, lotus),
        "visit.finish" | "visit.extend" => {
            f.call_to(visit, tess, lotus);
            f.start(visit);
        }
        _ => {}
    }
    // The counter: a product, a gift card with 50.00 on it, a card sale.
    let (mut product, mut sale, mut card_hash) = (0, 0, String::new());
    if name.starts_with("product.") || name.starts_with("sale.") || name.starts_with("giftcard.") {
        f.run(
            &ADMIN,
            book_cmd(
                "product.create",
                json!({"name": "Lavender oil", "sku": "LAV-50", "price_cents": 1_250, "tax_rate_bp": 1_900, "stock": 10}),
            ),
        );
        product = f.state.till.products.keys().copied().max().unwrap_or(0);
    }
    if name.starts_with("sale.") || name.starts_with("giftcard.") {
        let issue = book_cmd(
            "giftcard.issue",
            json!({"request_id": "card-1", "amount_cents": 5_000, "payments": [{"method": "card", "amount_cents": 5_000}]}),
        );
        let code = f.run(&ADMIN, issue).reply["code"]
            .as_str()
            .expect("the card's code")
            .to_string();
        card_hash = crate::domain::money::giftcode::hash(&code);
        let sell = book_cmd(
            "sale.checkout",
            json!({"request_id": "sale-1", "items": [{"product_id": product, "qty": 2}], "payments": [{"method": "card", "amount_cents": 2_500}]}),
        );
        let done = f.run(&ADMIN, sell);
        sale = done.reply["sale_id"].as_u64().expect("sale id");
    }
    let ids = Ids {
        admin,
        cashier,
        tess,
        otto,
        lotus,
        jade,
        thai,
        lobby,
        visit,
        booking,
        block,
        product,
        sale,
        card_hash,
        carla,
        dora,
    };
    (f, ids)
}

fn book_cmd(name: &str, args: Value) -> Command {
    Command::decode(name, args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The wire arguments of a well-formed `name` in its scenario.
fn wire_args(name: &str, ids: &Ids) -> Value {
    match name {
        "room.create" => json!({"name": "Cedar", "capacity": 2, "light_channel": 2}),
        "room.update" => json!({"room_id": ids.jade, "name": "Jade II", "light_channel": null}),
        "room.remove" => json!({"room_id": ids.jade}),
        "room.set_status" => json!({"room_id": ids.jade, "status": "cleaning"}),
        "service.create" => {
            json!({"name": "Swedish", "duration_min": 45, "cleanup_min": 5, "price_cents": 6500})
        }
        "service.update" => json!({"service_id": ids.thai, "price_cents": 7000, "skill": null}),
        "service.remove" => json!({"service_id": ids.thai}),
        "staff.create" => json!({"name": "Newbie", "role": "cashier", "pin": "123456"}),
        "staff.update" => json!({"staff_id": ids.otto, "skills": ["thai"]}),
        "staff.deactivate" => json!({"staff_id": ids.otto}),
        "device.pair" => json!({"role": "monitor", "name": "Hall"}),
        "device.revoke" => json!({"device_id": ids.lobby}),
        "therapist.clock_in" | "therapist.clock_out" | "therapist.break" | "therapist.resume" => {
            json!({"therapist_id": ids.tess})
        }
        "visit.create" => json!({
            "customer_name": "Wanda",
            "service_ids": [ids.thai],
            "phone": "+1 555 0100",
            "notes": "first visit"
        }),
        "visit.call" => json!({"visit_id": ids.visit}),
        "visit.start" | "visit.finish" | "visit.undo" => json!({"visit_id": ids.visit}),
        "visit.extend" => json!({"visit_id": ids.visit, "minutes": 10}),
        "visit.leave" | "visit.void" => json!({"visit_id": ids.visit, "reason": "changed plans"}),
        "visit.checkout" => json!({
            "visit_id": ids.visit,
            "request_id": "req-1",
            "tip_cents": 1_000,
            "payments": [{"method": "cash", "amount_cents": 4_000}, {"method": "card", "amount_cents": 2_000, "reference": "slip 17"}],
        }),
        "visit.refund" => {
            json!({"visit_id": ids.visit, "amount_cents": 1_000, "method": "card", "reason": "oil allergy"})
        }
        "visit.retip" => {
            json!({"visit_id": ids.visit, "tip_split": [{"therapist_id": ids.tess, "amount_cents": 300}, {"therapist_id": ids.otto, "amount_cents": 200}], "reason": "shared"})
        }
        "drawer.open" => json!({"float_cents": 20_000}),
        "drawer.move" => json!({"kind": "pay_in", "amount_cents": 500, "note": "coins"}),
        "drawer.close" => json!({"counted": {"cash": 10_000, "card": 0}}),
        "schedule.set" => {
            json!({"therapist_id": ids.otto, "date": "2026-11-27", "start": "09:00", "end": "17:00"})
        }
        "block.create" => {
            json!({"therapist_id": ids.tess, "start": "2026-11-26T17:00", "end": "2026-11-26T18:00", "reason": "dentist"})
        }
        "block.remove" => json!({"block_id": ids.block}),
        "booking.availability" => json!({"date": "2026-11-26", "service_ids": [ids.thai]}),
        "booking.create" => {
            json!({"start": "2026-11-26T12:00", "service_ids": [ids.thai], "customer_name": "Ben", "phone": "+1 555 0102", "request_id": "b-1"})
        }
        "booking.move" => json!({"booking_id": ids.booking, "start": "2026-11-26T13:00"}),
        "booking.cancel" => json!({"booking_id": ids.booking, "reason": "changed plans"}),
        "booking.check_in" | "booking.no_show" => json!({"booking_id": ids.booking}),
        "booking.list" => json!({"date": "2026-11-26"}),
        // A day past the fixture's clock (harness::T0 plus its steps).
        "clock.set" => json!({"now_ms": super::harness::T0 + 86_400_000}),
        "product.create" => {
            json!({"name": "Rose cream", "sku": "ROSE-1", "price_cents": 2_000, "tax_rate_bp": 725, "stock": 3})
        }
        "product.update" => json!({"product_id": ids.product, "price_cents": 1_300}),
        "product.stock" => json!({"product_id": ids.product, "delta": -2, "reason": "damaged"}),
        "giftcard.issue" => {
            json!({"request_id": "card-2", "amount_cents": 2_000, "payments": [{"method": "cash", "amount_cents": 2_000}]})
        }
        "giftcard.balance" => json!({"code": "ignored: the hash is set"}),
        "sale.checkout" => json!({
            "request_id": "sale-2",
            "items": [{"product_id": ids.product, "qty": 1}],
            "payments": [{"method": "giftcard", "amount_cents": 1_000, "code": "x"}, {"method": "cash", "amount_cents": 250}],
        }),
        "sale.refund" => {
            json!({"sale_id": ids.sale, "lines": [{"line": 0, "qty": 1}], "restock": true, "reason": "leaking bottle"})
        }
        "customer.create" => {
            json!({"name": "María José", "phone": "+34 612 345 678", "email": "mj@example.com", "notes": "nut oil allergy"})
        }
        "customer.update" => json!({"customer_id": ids.carla, "notes": "no nut oils"}),
        "customer.search" => json!({"q": "car"}),
        "customer.history" => json!({"customer_id": ids.carla}),
        "customer.merge" => json!({"customer_id": ids.dora, "into_id": ids.carla}),
        "customer.forget" => json!({"customer_id": ids.carla, "reason": "asked at the desk"}),
        "visit.update" => {
            json!({"visit_id": ids.visit, "customer_name": "Vera B", "service_ids": [ids.thai, ids.thai]})
        }
        other => panic!("no arguments for {other}: add it to the matrix"),
    }
}

/// Decodes the wire command and fills in what the shell adds (hashes).
fn command(name: &str, ids: &Ids) -> Command {
    let mut cmd = Command::decode(name, wire_args(name, ids))
        .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
    match &mut cmd {
        Command::StaffCreate(c) => c.pin_hash = "$argon2id$newbie".into(),
        Command::DevicePair(c) => c.token_hash = "device-token-hash".into(),
        Command::VisitCreate(c) => c.token_hash = "customer-token-hash".into(),
        Command::BookingCreate(c) => c.token_hash = "another-booking-token-hash".into(),
        Command::GiftcardBalance(c) => c.code_hash = ids.card_hash.clone(),
        Command::SaleCheckout(c) => {
            for p in &mut c.payments {
                if p.code.take().is_some() {
                    p.code_hash = Some(ids.card_hash.clone());
                }
            }
        }
        // A cashier's correction carries the admin's approval the shell
        // checked (the PIN); an admin's needs none.
        Command::VisitVoid(c) => c.approved_by = Some(ids.admin),
        Command::VisitRetip(c) => c.approved_by = Some(ids.admin),
        Command::VisitRefund(c) | Command::SaleRefund(c) => c.approved_by = Some(ids.admin),
        _ => {}
    }
    assert_eq!(cmd.name(), name);
    cmd
}

/// One actor of each kind, with the role its permissions are looked up with.
fn actors(ids: &Ids) -> Vec<(Actor, Role)> {
    vec![
        (Actor::AdminToken, Role::Admin),
        (staff_actor(ids.admin, Role::Admin), Role::Admin),
        (staff_actor(ids.cashier, Role::Cashier), Role::Cashier),
        (staff_actor(ids.tess, Role::Therapist), Role::Therapist),
        (Actor::Device { id: ids.lobby }, Role::Monitor),
        // A customer of the booking where there is one, else of the visit.
        if ids.booking != 0 {
            (
                Actor::BookingCustomer {
                    booking_id: ids.booking,
                },
                Role::Customer,
            )
        } else {
            (
                Actor::Customer {
                    visit_id: ids.visit,
                },
                Role::Customer,
            )
        },
    ]
}

#[test]
fn every_command_by_every_role() {
    let mut checked = 0;
    for name in WIRE_COMMANDS
        .iter()
        .copied()
        .filter(|n| *n != "sync" && *n != "report.day")
    {
        let (_, ids) = scenario(name);
        for (actor, role) in actors(&ids) {
            assert_eq!(actor.role(), Some(role));
            let (mut f, ids) = scenario(name);
            let cmd = command(name, &ids);
            if permissions::allowed(role, name) {
                match f.try_run(&actor, &cmd) {
                    Ok(d) => assert!(d.reply.is_object(), "{name}: {:?}", d.reply),
                    Err(e) => panic!("{name} by {actor:?} ({role:?}) was refused: {e}"),
                }
            } else {
                let err = f.refuse(&actor, cmd, ErrorCode::Forbidden, &[name, role.as_str()]);
                assert_eq!(err.code.as_str(), "forbidden");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (WIRE_COMMANDS.len() - 2) * 6);
}

#[test]
fn the_hubs_timers_send_no_wire_command() {
    for name in WIRE_COMMANDS
        .iter()
        .copied()
        .filter(|n| *n != "sync" && *n != "report.day")
    {
        let (mut f, ids) = scenario(name);
        let cmd = command(name, &ids);
        f.refuse(&Actor::System, cmd, ErrorCode::Forbidden, &[]);
    }
}

#[test]
fn the_table_matches_the_protocol() {
    use Role::*;
    let office = [Admin, Cashier];
    for name in WIRE_COMMANDS {
        let who: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| permissions::allowed(*r, name))
            .collect();
        let want: Vec<Role> = match *name {
            "sync" => Role::ALL.to_vec(),
            "room.set_status" => vec![Admin, Cashier, Therapist],
            n if n.starts_with("therapist.") => vec![Admin, Cashier, Therapist],
            "visit.call" | "visit.start" | "visit.finish" | "visit.extend" | "visit.undo" => {
                vec![Admin, Cashier, Therapist]
            }
            // A cashier's correction needs an admin's PIN (decide checks).
            "visit.void" | "visit.refund" | "visit.retip" => office.to_vec(),
            n if n.starts_with("sale.") || n.starts_with("giftcard.") => office.to_vec(),
            "visit.create" | "visit.leave" | "visit.checkout" | "report.day" | "visit.update" => {
                office.to_vec()
            }
            "customer.create" | "customer.update" | "customer.search" | "customer.history" => {
                office.to_vec()
            }
            "block.create" | "block.remove" | "booking.list" => vec![Admin, Cashier, Therapist],
            "booking.cancel" => vec![Admin, Cashier, Customer],
            n if n.starts_with("booking.") || n == "schedule.set" => office.to_vec(),
            n if n.starts_with("drawer.") => office.to_vec(),
            _ => vec![Admin],
        };
        assert_eq!(who, want, "{name}");
    }
}

/// A therapist acts for themself only; office staff for anyone.
#[test]
fn a_therapist_only_for_themself() {
    for name in [
        "therapist.clock_in",
        "therapist.clock_out",
        "therapist.break",
        "therapist.resume",
        "visit.call",
        "visit.start",
        "visit.finish",
        "visit.extend",
        "visit.undo",
    ] {
        let (mut f, ids) = scenario(name);
        // Otto, clocked in, tries to act for Tess or on Tess's visit.
        f.clock_in(ids.otto);
        let otto = staff_actor(ids.otto, Role::Therapist);
        let cmd = match name {
            "visit.call" => call_with(Some(ids.visit), Some(ids.tess), None),
            _ => command(name, &ids),
        };
        f.refuse(&otto, cmd.clone(), ErrorCode::Forbidden, &[]);
        // Tess herself, and the office, may.
        let tess = staff_actor(ids.tess, Role::Therapist);
        for actor in [tess, staff_actor(ids.cashier, Role::Cashier), ADMIN] {
            let (mut g, ids) = scenario(name);
            g.clock_in(ids.otto);
            let cmd = match name {
                "visit.call" => call_with(Some(ids.visit), Some(ids.tess), None),
                _ => command(name, &ids),
            };
            g.run(&actor, cmd);
        }
    }
}

#[test]
fn out_of_service_only_admin_or_cashier() {
    for (who, ok) in [
        ("token", true),
        ("admin", true),
        ("cashier", true),
        ("therapist", false),
    ] {
        for status in ["available", "held", "cleaning"] {
            let (mut f, ids) = scenario("room.set_status");
            let room = match status {
                "available" => ids.jade,
                "held" => {
                    f.call_to(ids.visit, ids.tess, ids.lotus);
                    ids.lotus
                }
                _ => {
                    f.set_room(ids.jade, RoomStatus::Cleaning);
                    ids.jade
                }
            };
            let actor = match who {
                "token" => ADMIN,
                "admin" => staff_actor(ids.admin, Role::Admin),
                "cashier" => staff_actor(ids.cashier, Role::Cashier),
                _ => staff_actor(ids.tess, Role::Therapist),
            };
            let cmd = set_status(room, RoomStatus::OutOfService, Some("burst pipe"));
            if ok {
                f.run(&actor, cmd);
                assert_eq!(f.room_status(room), RoomStatus::OutOfService);
                if status == "held" {
                    assert_eq!(f.visit_state(ids.visit), VisitState::Waiting);
                }
            } else {
                f.refuse(&actor, cmd, ErrorCode::Forbidden, &["out of service"]);
                // Back from out of service: the same roles as into it.
                f.run(
                    &ADMIN,
                    set_status(ids.jade, RoomStatus::OutOfService, Some("x")),
                );
                for back in [RoomStatus::Available, RoomStatus::Cleaning] {
                    f.refuse(
                        &actor,
                        set_status(ids.jade, back, None),
                        ErrorCode::Forbidden,
                        &["back in service"],
                    );
                }
                assert_eq!(f.room_status(ids.jade), RoomStatus::OutOfService);
                f.run(
                    &staff_actor(ids.cashier, Role::Cashier),
                    set_status(ids.jade, RoomStatus::Available, None),
                );
            }
        }
    }
}

/// Adds Otto's requested customer, whose phone and notes are not Tess's.
fn add_secret_visit(f: &mut Floor, ids: &Ids) -> u64 {
    let mut secret = f.new_visit("Sally", &[ids.thai]);
    secret.phone = Some("+1 555 7777".into());
    secret.notes = Some("SECRET-NOTES".into());
    secret.requested_therapist_id = Some(ids.otto);
    f.add_visit_with(secret)
}

/// Every ack is cut with its sender's own view (#21): for every command and
/// every actor allowed to send it, the ack shows the entity exactly as that
/// actor's broadcasts do, and a therapist's never carries the phone, notes
/// or price of a customer who is not theirs.
#[test]
fn every_ack_is_cut_with_the_senders_view() {
    use crate::domain::views::{self, Viewer};
    use crate::domain::{decide, Reply};
    let mut checked = 0;
    for name in WIRE_COMMANDS
        .iter()
        .copied()
        .filter(|n| *n != "sync" && *n != "report.day")
    {
        let (_, ids) = scenario(name);
        for (actor, role) in actors(&ids) {
            if !permissions::allowed(role, name) {
                continue;
            }
            let (mut f, ids) = scenario(name);
            add_secret_visit(&mut f, &ids);
            let cmd = command(name, &ids);
            let decided = decide(&f.state, &actor, &cmd, f.now, &f.rules)
                .unwrap_or_else(|e| panic!("{name} by {actor:?}: {e}"));
            f.run(&actor, cmd);
            let viewer = Viewer::of(&actor);
            let ack = decided.reply.render_for(viewer, &f.state, f.now);
            let now = f.now.ms;
            match &decided.reply {
                Reply::Visit(id) => {
                    let v = f.state.visits.get(id).expect("visit");
                    assert_eq!(
                        ack["visit"],
                        views::visit_in(viewer, v, &f.state).unwrap_or(Value::Null),
                        "{name} by {actor:?}"
                    );
                }
                Reply::Room(id) => {
                    let r = f.state.rooms.get(id).expect("room");
                    assert_eq!(
                        ack["room"],
                        views::room_for(viewer, r, &f.state, now).unwrap_or(Value::Null),
                        "{name} by {actor:?}"
                    );
                }
                _ => {}
            }
            if let Viewer::Therapist(_) = viewer {
                let text = ack.to_string();
                for secret in ["7777", "SECRET-NOTES", "services_cents", "price_cents"] {
                    assert!(!text.contains(secret), "{name} by {actor:?}: {text}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

/// A therapist calls for themself only what the rotation or a request gives
/// them (#21): another therapist's requested customer, or a customer out of
/// turn, is refused whatever the override reason, and the refusal carries
/// nothing of the customer; the office may override.
#[test]
fn a_therapist_cannot_call_another_therapists_customer() {
    let (mut f, ids) = scenario("visit.call");
    let secret = add_secret_visit(&mut f, &ids);
    f.clock_in(ids.otto);
    let tess = staff_actor(ids.tess, Role::Therapist);
    for reason in [None, Some("Otto is busy")] {
        let cmd = Command::VisitCall(crate::domain::command::VisitCall {
            visit_id: Some(secret),
            override_reason: reason.map(str::to_string),
            ..Default::default()
        });
        let err = f.refuse(&tess, cmd, ErrorCode::Forbidden, &["cashier or an admin"]);
        for leak in ["7777", "SECRET", "Sally"] {
            assert!(!err.message.contains(leak), "{}", err.message);
        }
    }
    assert_eq!(f.visit_state(secret), VisitState::Waiting);
    // Otto himself may; undone, the cashier may override the request for Tess.
    let otto = staff_actor(ids.otto, Role::Therapist);
    f.run(&otto, call_with(Some(secret), None, None));
    f.run(
        &otto,
        crate::domain::Command::decode("visit.undo", json!({"visit_id": secret})).expect("undo"),
    );
    f.run(
        &staff_actor(ids.cashier, Role::Cashier),
        Command::VisitCall(crate::domain::command::VisitCall {
            visit_id: Some(secret),
            therapist_id: Some(ids.tess),
            override_reason: Some("Otto is busy".into()),
            ..Default::default()
        }),
    );
    assert_eq!(f.visit(secret).therapist, Some(ids.tess));
}
