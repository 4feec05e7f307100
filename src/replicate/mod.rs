//! The event log to NATS JetStream (a site in a chain) and `spa-hub hq`
//! (head office), per PROTOCOL.md "Beyond one box".
//!
//! - [`wire`]: the stream, subjects, headers and payload both sides share;
//! - [`site`]: the site's publisher, following committed batches off the
//!   writer's path with the on-disk log as its outbox;
//! - [`hq`]: head office's consumer and per-site event store, and the day
//!   reports computed with the site's own code; [`hq_http`]: its API and page.
//!
//! What leaves the box is decided by `domain::privacy`.

pub mod hq;
pub mod hq_http;
pub mod site;
pub mod wire;
