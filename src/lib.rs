//! spa-hub: the spa floor's single source of truth and on-site realtime hub.
//!
//! The crate's map:
//! - [`domain`]: the pure core (state, commands, events, rules, views); no I/O.
//! - [`config`]: env file + environment → [`config::Config`]; bad values exit 78.
//! - [`store`]: sled + postcard: schema version, migrations, event log, records.
//! - [`writer`]: the single writer: batches, one transaction, one flush, then
//!   replies and publishes; the cleanup and overtime timers.
//! - [`clock`]: the wall clock and the spa's local day; whether it is
//!   synchronised, and never back behind the newest event while it is not.
//! - [`tls`]: HTTPS/WSS on the listening port, `spa-hub tls init`, the LAN
//!   addresses; [`edge`]: the headers every response gets and what plain
//!   HTTP may reach when TLS is on.
//! - [`logging`]: the `log` facade to the journal or stderr.
//! - [`replicate`]: the event log to NATS JetStream (a site in a chain) and
//!   `spa-hub hq` (head office).
//! - [`printer`]: ESC/POS receipts, Z reports and the drawer kick on a
//!   network receipt printer, off the writer's path (#17).

pub mod auth;
pub mod bench;
pub mod bench_book;
mod bench_chain;
mod bench_counter;
mod bench_customers;
mod bench_hub;
mod bench_poll;
pub mod bench_wear;
pub mod bench_year;
pub mod client;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod daemon;
pub mod domain;
pub mod edge;
pub mod gate;
pub mod giftsecret;
pub mod http;
pub mod hub;
pub mod keyring;
pub mod lights;
pub mod lockout;
pub mod logging;
pub mod printer;
pub mod replicate;
pub mod store;
pub mod tls;
pub mod web;
pub mod writer;
