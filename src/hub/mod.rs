//! The realtime hub: Engine.IO v4 / Socket.IO v5 over WebSocket.
//!
//! - [`engineio`], [`socketio`]: packet codecs (pure, no I/O).

pub mod engineio;
pub mod socketio;
