//! One table: which roles may send which command.
//!
//! This is the coarse gate the hub checks before a command reaches the
//! writer; finer rules ("a therapist only for themself", "out_of_service
//! only admin or cashier") are `decide`'s, next to the state they need.

use super::Role;
use super::Role::{Admin, Cashier, Customer, Monitor, Therapist};

const STAFF: &[Role] = &[Admin, Cashier, Therapist];
const OFFICE: &[Role] = &[Admin, Cashier];
const ADMIN: &[Role] = &[Admin];
/// The office, and a customer for their own booking (`decide` checks it is theirs).
const OFFICE_AND_CUSTOMER: &[Role] = &[Admin, Cashier, Customer];
const EVERYONE: &[Role] = &[Admin, Cashier, Therapist, Monitor, Customer];

/// role × command. A command missing from the table is allowed to nobody.
pub const TABLE: &[(&str, &[Role])] = &[
    ("room.create", ADMIN),
    ("room.update", ADMIN),
    ("room.remove", ADMIN),
    ("room.set_status", STAFF),
    ("service.create", ADMIN),
    ("service.update", ADMIN),
    ("service.remove", ADMIN),
    ("staff.create", ADMIN),
    ("staff.update", ADMIN),
    ("staff.deactivate", ADMIN),
    ("device.pair", ADMIN),
    ("device.revoke", ADMIN),
    ("therapist.clock_in", STAFF),
    ("therapist.clock_out", STAFF),
    ("therapist.break", STAFF),
    ("therapist.resume", STAFF),
    ("visit.create", OFFICE),
    ("visit.call", STAFF),
    ("visit.start", STAFF),
    ("visit.finish", STAFF),
    ("visit.extend", STAFF),
    ("visit.undo", STAFF),
    ("visit.leave", OFFICE),
    // A cashier's correction needs an admin's PIN at the counter
    // (`approval`; decide checks it).
    ("visit.void", OFFICE),
    ("visit.checkout", OFFICE),
    ("visit.refund", OFFICE),
    ("visit.retip", OFFICE),
    ("drawer.open", OFFICE),
    ("drawer.move", OFFICE),
    ("drawer.close", OFFICE),
    ("report.day", OFFICE),
    ("schedule.set", OFFICE),
    ("block.create", STAFF),
    ("block.remove", STAFF),
    ("booking.availability", OFFICE),
    ("booking.create", OFFICE),
    ("booking.move", OFFICE),
    ("booking.cancel", OFFICE_AND_CUSTOMER),
    ("booking.check_in", OFFICE),
    ("booking.no_show", OFFICE),
    ("booking.list", STAFF),
    ("clock.set", ADMIN),
    ("product.create", ADMIN),
    ("product.update", ADMIN),
    ("product.stock", ADMIN),
    ("giftcard.issue", OFFICE),
    ("giftcard.balance", OFFICE),
    ("sale.checkout", OFFICE),
    ("sale.refund", OFFICE),
    ("customer.create", OFFICE),
    ("customer.update", OFFICE),
    ("customer.search", OFFICE),
    ("customer.history", OFFICE),
    ("customer.merge", ADMIN),
    ("customer.forget", ADMIN),
    ("visit.update", OFFICE),
    ("sync", EVERYONE),
];

/// Whether `role` may send `command` at all.
pub fn allowed(role: Role, command: &str) -> bool {
    TABLE
        .iter()
        .find(|(name, _)| *name == command)
        .is_some_and(|(_, roles)| roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::command::WIRE_COMMANDS;

    #[test]
    fn every_wire_command_is_in_the_table_once() {
        for name in WIRE_COMMANDS {
            let n = TABLE.iter().filter(|(c, _)| c == name).count();
            assert_eq!(n, 1, "{name} appears {n} times");
        }
        assert_eq!(TABLE.len(), WIRE_COMMANDS.len());
    }

    #[test]
    fn unknown_commands_are_allowed_to_nobody() {
        for role in Role::ALL {
            assert!(!allowed(role, "room.explode"));
        }
    }

    #[test]
    fn monitors_and_customers_only_sync() {
        for (name, _) in TABLE {
            assert_eq!(allowed(Monitor, name), *name == "sync", "monitor {name}");
            // A customer may also cancel their own booking (decide checks
            // that it is theirs).
            let customer = *name == "sync" || *name == "booking.cancel";
            assert_eq!(allowed(Customer, name), customer, "customer {name}");
        }
    }
}
