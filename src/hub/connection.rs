//! One client connection: the Engine.IO open packet, the CONNECT handshake
//! and its token, the heartbeat, inbound commands with their acks, and the
//! outbound stream of role-filtered broadcast frames.
//!
//! The same task serves both transports ([`Link`]): a WebSocket, or an
//! Engine.IO long-polling session (see the sibling `polling` module) that
//! may upgrade to a WebSocket midway; every rule here (budget, auth,
//! heartbeat, slow clients, close reasons) applies to both.
//!
//! A connection's own memory is small and bounded: tungstenite's buffers are
//! sized by `WebSocketConfig`, broadcast frames are shared (`Utf8Bytes`), and
//! its "outbox" is its position in the shared broadcast ring. When it falls
//! more than `SPA_CLIENT_QUEUE` events behind (or a write stalls past the
//! ping timeout, or a polling client leaves `SPA_CLIENT_QUEUE` packets
//! untaken) it is dropped as a slow client.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, OwnedSemaphorePermit};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::fanout::{Broadcast, Revoked};
use super::polling::{PollEnd, PollIn};
use super::socketio::{self, SioError, SioPacket};
use super::{engineio, recovery, Hub};
use crate::auth;
use crate::domain::views::{self, Viewer};
use crate::domain::{permissions, Actor, Command, DomainError, ErrorCode, Role};
use crate::gate::{CredentialTicket, WsPendingTicket};

/// Ring batches a connection gathers into one write when it is behind.
const MAX_BATCHES_PER_WRITE: usize = 16;

/// Failed CONNECT attempts tolerated on one connection.
const MAX_CONNECT_ATTEMPTS: u32 = 5;

/// Who is on the other end, once authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub actor: Actor,
    pub role: Role,
    pub viewer: Viewer,
    /// The staff session's token hash (for logout).
    pub session: Option<String>,
    /// When the credential stops working (wall clock, ms): the connection
    /// is closed then.
    pub expires_at: Option<i64>,
    pub me: Value,
}

impl Identity {
    fn revoked_by(&self, r: &Revoked) -> bool {
        match (r, &self.actor) {
            (Revoked::Session(h), _) => self.session.as_deref() == Some(h.as_str()),
            (Revoked::Staff(id), Actor::Staff { id: mine, .. }) => id == mine,
            (Revoked::Device(id), Actor::Device { id: mine }) => id == mine,
            _ => false,
        }
    }
}

enum Flow {
    Continue,
    Close(CloseCode, String),
}

/// The transport a connection speaks over. The WebSocket, the common
/// case, stays inline (no extra allocation per connection); a polling
/// session's end is boxed and dropped at the upgrade.
#[allow(clippy::large_enum_variant)]
enum Link<S> {
    Ws(WebSocketStream<S>),
    Poll(Box<PollEnd>),
}

/// One thing the client sent, whatever the transport.
enum Incoming {
    Text(Utf8Bytes),
    Binary,
    /// The client closed the transport.
    Closed,
    /// The transport failed in a way that closes the connection.
    Broken(Flow),
    /// The transport is gone (nothing more can be sent).
    Gone,
    /// Nothing for the connection (WebSocket control frames).
    Nothing,
    /// A polling session's upgraded WebSocket (see `polling::upgrade`).
    Upgraded(Box<dyn std::any::Any + Send>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    async fn next(&mut self) -> Incoming {
        match self {
            Link::Ws(ws) => match ws.next().await {
                Some(Ok(Message::Text(t))) => Incoming::Text(t),
                Some(Ok(Message::Binary(_))) => Incoming::Binary,
                Some(Ok(Message::Close(_))) => Incoming::Closed,
                Some(Ok(_)) => Incoming::Nothing,
                Some(Err(WsError::Capacity(_))) => {
                    Incoming::Broken(close(CloseCode::Size, "message larger than maxPayload"))
                }
                // RFC 6455 §7.4.1: fail the connection with the reason.
                Some(Err(WsError::Utf8(_))) => {
                    Incoming::Broken(close(CloseCode::Invalid, "a text frame that is not UTF-8"))
                }
                Some(Err(WsError::Protocol(e))) => Incoming::Broken(close(
                    CloseCode::Protocol,
                    format!("WebSocket protocol error: {e}"),
                )),
                Some(Err(_)) | None => Incoming::Gone,
            },
            Link::Poll(end) => match end.next().await {
                PollIn::Packet(p) => Incoming::Text(Utf8Bytes::from(p)),
                PollIn::Fail(why) => Incoming::Broken(close(CloseCode::Protocol, why)),
                PollIn::Upgraded(ws) => Incoming::Upgraded(ws),
            },
        }
    }
}

/// A connection's deadlines: the next ping, the pong it waits for, the
/// CONNECT it waits for and its credential's expiry.
struct Timers {
    ping_every: Duration,
    pong_within: Duration,
    connect_by: Instant,
    next_ping: Instant,
}

/// What a connection's timer found due.
enum Due {
    Nothing,
    Ping,
    Close(Flow),
}

impl Timers {
    /// The earliest deadline still pending.
    fn next<S>(&self, c: &Connection<S>) -> Instant {
        let mut next = self.next_ping;
        if let Some(sent) = c.awaiting_pong {
            next = next.min(sent + self.pong_within);
        }
        if c.identity.is_none() {
            next = next.min(self.connect_by);
        }
        if let Some(at) = c.expires {
            next = next.min(at);
        }
        if let Link::Poll(end) = &c.link {
            if let Some(at) = end.unpolled_by(self.pong_within) {
                next = next.min(at);
            }
        }
        next
    }

    /// Acts on the deadlines reached at `now`: a missed pong, a missing
    /// CONNECT and an expired credential close; a ping due is sent.
    fn due<S>(&mut self, c: &mut Connection<S>, now: Instant) -> Due {
        if c.awaiting_pong
            .is_some_and(|sent| now >= sent + self.pong_within)
        {
            c.hub.metrics.heartbeat_drops.fetch_add(1, Relaxed);
            return Due::Close(close(CloseCode::Away, "ping timeout"));
        }
        if c.identity.is_none() && now >= self.connect_by {
            return Due::Close(close(CloseCode::Policy, "no CONNECT in time"));
        }
        if c.expires.is_some_and(|at| now >= at) {
            return Due::Close(close(CloseCode::Policy, "session expired"));
        }
        if let Link::Poll(end) = &c.link {
            if end
                .unpolled_by(self.pong_within)
                .is_some_and(|at| now >= at)
            {
                c.hub.metrics.heartbeat_drops.fetch_add(1, Relaxed);
                return Due::Close(close(CloseCode::Away, "not polled within the ping timeout"));
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.ping_every;
            if c.awaiting_pong.is_none() {
                c.awaiting_pong = Some(now);
            }
            return Due::Ping;
        }
        Due::Nothing
    }
}

fn close(code: CloseCode, reason: impl Into<String>) -> Flow {
    Flow::Close(code, reason.into())
}

fn error_ack(code: ErrorCode, message: impl Into<String>) -> Value {
    json!({"ok": false, "error": {"code": code.as_str(), "message": message.into()}})
}

fn domain_error_ack(err: &DomainError) -> Value {
    error_ack(err.code, err.message.clone())
}

/// A connection's place at the gate: waiting for CONNECT (per address), or
/// admitted with a credential (per token, customers' share).
enum Place {
    Pending(#[allow(dead_code)] WsPendingTicket),
    Admitted(#[allow(dead_code)] CredentialTicket),
}

pub struct Connection<S> {
    hub: Arc<Hub>,
    /// Boxed: one pointer in every connection's task.
    place: Option<Box<Place>>,
    link: Link<S>,
    peer: SocketAddr,
    sid: String,
    identity: Option<Identity>,
    connect_attempts: u32,
    /// Last seq this client has been sent (snapshot or event).
    seq: u64,
    ring: Option<broadcast::Receiver<Arc<Broadcast>>>,
    awaiting_pong: Option<Instant>,
    /// When the credential expires (monotonic, computed once at CONNECT).
    expires: Option<Instant>,
    /// The client asked for connection state recovery: its events carry
    /// their offset (see the sibling `recovery` module).
    offsets: bool,
    /// Came over plain HTTP to a hub that serves HTTPS: staff credentials
    /// are refused (they would cross the Wi-Fi in the clear).
    plain: bool,
}

/// A new Engine.IO session id (also a polling session's key).
pub fn new_sid() -> String {
    auth::new_token()[..20].to_string()
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// A WebSocket connection.
    pub fn new(
        hub: Arc<Hub>,
        ws: WebSocketStream<S>,
        peer: SocketAddr,
        pending: WsPendingTicket,
    ) -> Self {
        Self::over(hub, Link::Ws(ws), new_sid(), peer, pending)
    }

    /// A long-polling session (`sid` is the one it was opened with).
    pub fn polling(
        hub: Arc<Hub>,
        end: PollEnd,
        sid: String,
        peer: SocketAddr,
        pending: WsPendingTicket,
    ) -> Self {
        Self::over(hub, Link::Poll(Box::new(end)), sid, peer, pending)
    }

    fn over(
        hub: Arc<Hub>,
        link: Link<S>,
        sid: String,
        peer: SocketAddr,
        pending: WsPendingTicket,
    ) -> Self {
        Connection {
            hub,
            place: Some(Box::new(Place::Pending(pending))),
            link,
            peer,
            sid,
            identity: None,
            connect_attempts: 0,
            seq: 0,
            ring: None,
            awaiting_pong: None,
            expires: None,
            offsets: false,
            plain: false,
        }
    }

    /// Marks a connection that came over plain HTTP while the hub serves
    /// HTTPS.
    pub fn over_plain_http(mut self, plain: bool) -> Self {
        self.plain = plain;
        self
    }

    /// Runs the connection to its end. The permit is the connection's place
    /// in the budget; it is released when this returns.
    pub async fn run(mut self, _permit: OwnedSemaphorePermit) {
        self.hub.metrics.connected(None);
        let end = self.serve().await;
        let role = self.identity.as_ref().map(|i| i.role);
        self.hub.metrics.disconnected(role);
        if let Flow::Close(code, reason) = end {
            log::debug!(
                "connection {} from {} closed: {reason}",
                self.sid,
                self.peer
            );
            // A polling session's end closes it when dropped (a `1` for
            // the waiting GET).
            if let Link::Ws(ws) = &mut self.link {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(close_reason(&reason)),
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
            }
        }
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Flow> {
        self.send_all(vec![text]).await
    }

    /// Writes the frames and flushes once. Nearly always the socket takes
    /// them at once: that is tried without arming a timer (a timer per
    /// write is a lock on the runtime's timer wheel, 500 times per event);
    /// only a write that has to wait gets the ping timeout as its limit.
    async fn send_all(&mut self, frames: Vec<Utf8Bytes>) -> Result<(), Flow> {
        if frames.is_empty() {
            return Ok(());
        }
        let ws = match &mut self.link {
            Link::Ws(ws) => ws,
            Link::Poll(end) => {
                return end.send(frames).map_err(|_| self.too_slow());
            }
        };
        let timeout = Duration::from_millis(self.hub.config.ping_timeout_ms);
        let result = {
            let mut sending = pin!(async move {
                for frame in frames {
                    ws.feed(Message::Text(frame)).await?;
                }
                ws.flush().await
            });
            match sending.as_mut().now_or_never() {
                Some(done) => Ok(done),
                // Boxed: a stalled write is rare, and its timer would
                // otherwise sit in every connection's task.
                None => Box::pin(tokio::time::timeout(timeout, sending)).await,
            }
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(close(CloseCode::Away, "write failed")),
            Err(_) => {
                self.hub.metrics.slow_client_drops.fetch_add(1, Relaxed);
                Err(close(CloseCode::Policy, "too slow: a write stalled"))
            }
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), Flow> {
        self.send(Utf8Bytes::from(text)).await
    }

    async fn serve(&mut self) -> Flow {
        let cfg = self.hub.config.clone();
        let open = engineio::encode_open(
            &self.sid,
            matches!(self.link, Link::Poll(_)),
            cfg.ping_interval_ms,
            cfg.ping_timeout_ms,
            cfg.max_payload_bytes,
        );
        if let Err(flow) = self.send_text(open).await {
            return flow;
        }
        let ping_every = Duration::from_millis(cfg.ping_interval_ms);
        let connect_by = Instant::now() + Duration::from_millis(cfg.connect_timeout_ms);
        let mut timers = Timers {
            ping_every,
            pong_within: Duration::from_millis(cfg.ping_timeout_ms),
            connect_by,
            next_ping: Instant::now() + ping_every,
        };
        // One timer for the next of the ping, pong, CONNECT and expiry
        // deadlines, living as long as the connection and re-armed in place
        // only when that deadline moves: a fresh `Sleep` per loop turn would
        // register and remove an entry in the runtime's timer wheel for every
        // frame sent, and four of them would make every connection bigger.
        let mut armed = timers.next(self);
        let deadline = sleep_until(armed);
        let mut shutdown = self.hub.shutdown.subscribe();
        let shutdown = shutdown.changed();
        tokio::pin!(deadline, shutdown);
        loop {
            let flow = tokio::select! {
                // Outbound first: a client that sends command after command
                // must still get the events those commands caused before its
                // next command is read, or its own events pile up.
                biased;
                batch = recv_ring(&mut self.ring) => self.outbound(batch).await,
                // Boxed: a command's way through auth, the writer and the
                // snapshot is a large future, and inline it would make every
                // connection's task that much bigger even while idle.
                inbound = self.link.next() => match inbound {
                    Incoming::Gone => return Flow::Continue,
                    incoming => Box::pin(self.inbound(incoming)).await,
                },
                _ = &mut deadline => {
                    // The timer fired: its deadline counts as reached even if
                    // the clock reads a hair earlier.
                    let now = Instant::now().max(armed);
                    match timers.due(self, now) {
                        Due::Nothing => Flow::Continue,
                        Due::Ping => match self.send(Utf8Bytes::from_static(engineio::PING)).await {
                            Ok(()) => Flow::Continue,
                            Err(flow) => flow,
                        },
                        Due::Close(flow) => flow,
                    }
                }
                _ = &mut shutdown => close(CloseCode::Restart, "the hub is restarting"),
            };
            if let Flow::Close(..) = flow {
                return flow;
            }
            let next = timers.next(self);
            if next != armed || deadline.is_elapsed() {
                armed = next;
                deadline.as_mut().reset(armed);
            }
        }
    }

    async fn outbound(
        &mut self,
        batch: Result<Arc<Broadcast>, broadcast::error::RecvError>,
    ) -> Flow {
        let mut batch = match batch {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(_)) => return self.too_slow(),
            Err(broadcast::error::RecvError::Closed) => {
                return close(CloseCode::Restart, "the hub is stopping")
            }
        };
        let Some(identity) = &self.identity else {
            return Flow::Continue;
        };
        let (viewer, role, staff_id) = (identity.viewer, identity.role, identity.actor.staff_id());
        // Everything already on the ring goes out in one write: a batch of
        // several events (or a client catching up) costs one system call,
        // not one per frame.
        let mut outgoing: Vec<Utf8Bytes> = Vec::new();
        for taken in 1.. {
            if batch.revoked.iter().any(|r| identity.revoked_by(r)) {
                return close(CloseCode::Policy, "credentials revoked");
            }
            for event in &batch.events {
                if event.seq <= self.seq {
                    continue; // already in the snapshot this client got
                }
                let before = outgoing.len();
                outgoing.extend(event.frames_for(viewer, role, staff_id).cloned());
                if outgoing.len() == before {
                    outgoing.push(event.marker.clone());
                }
                if self.offsets {
                    for frame in &mut outgoing[before..] {
                        *frame = Utf8Bytes::from(socketio::with_offset(frame, event.seq));
                    }
                }
                self.seq = event.seq;
            }
            let latency = batch.committed_at.elapsed().as_micros() as u64;
            self.hub.metrics.broadcast_latency.observe_us(latency);
            let Some(ring) = self.ring.as_mut() else {
                break;
            };
            // Asking the ring when nothing newer was published would take
            // its tail lock, shared by every connection, for nothing.
            if taken == MAX_BATCHES_PER_WRITE || self.hub.ring.published_after(&batch) == 0 {
                break;
            }
            batch = match ring.try_recv() {
                Ok(next) => next,
                Err(broadcast::error::TryRecvError::Lagged(_)) => return self.too_slow(),
                Err(_) => break,
            };
        }
        // Too far behind the ring: drop now rather than let it lag further.
        if self.hub.ring.published_after(&batch) > self.hub.config.client_queue as u64 {
            return self.too_slow();
        }
        match self.send_all(outgoing).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    fn too_slow(&self) -> Flow {
        self.hub.metrics.slow_client_drops.fetch_add(1, Relaxed);
        close(CloseCode::Policy, "too slow: outbox full")
    }

    async fn inbound(&mut self, incoming: Incoming) -> Flow {
        let text = match incoming {
            Incoming::Text(t) => t,
            Incoming::Binary => {
                return close(
                    CloseCode::Unsupported,
                    "binary attachments are not supported",
                );
            }
            Incoming::Closed => return close(CloseCode::Normal, "client closed"),
            Incoming::Broken(flow) => return flow,
            Incoming::Nothing | Incoming::Gone => return Flow::Continue,
            Incoming::Upgraded(ws) => return self.upgraded(ws).await,
        };
        let packet = match engineio::decode(text.as_str()) {
            Ok(p) => p,
            Err(e) => return close(CloseCode::Protocol, format!("bad Engine.IO packet: {e}")),
        };
        match packet {
            engineio::EioPacket::Pong(_) => {
                self.awaiting_pong = None;
                Flow::Continue
            }
            engineio::EioPacket::Ping(payload) => {
                let pong = engineio::encode_pong(payload);
                match self.send_text(pong).await {
                    Ok(()) => Flow::Continue,
                    Err(flow) => flow,
                }
            }
            engineio::EioPacket::Close => close(CloseCode::Normal, "client closed"),
            engineio::EioPacket::Noop => Flow::Continue,
            engineio::EioPacket::Open | engineio::EioPacket::Upgrade => close(
                CloseCode::Protocol,
                "unexpected Engine.IO packet from a client",
            ),
            engineio::EioPacket::Message(payload) => {
                let payload = payload.to_string();
                self.socketio(&payload).await
            }
        }
    }

    /// A polling session completed its upgrade: from now on it speaks over
    /// the WebSocket, first sending what the last `GET` did not take.
    async fn upgraded(&mut self, ws: Box<dyn std::any::Any + Send>) -> Flow {
        let Ok(ws) = ws.downcast::<WebSocketStream<S>>() else {
            return close(CloseCode::Error, "an upgrade of another kind of socket");
        };
        let Link::Poll(end) = std::mem::replace(&mut self.link, Link::Ws(*ws)) else {
            return close(CloseCode::Protocol, "an upgrade of a WebSocket");
        };
        let waiting = end.finish_upgrade();
        self.hub.metrics.upgrades.fetch_add(1, Relaxed);
        match self.send_all(waiting).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    async fn socketio(&mut self, payload: &str) -> Flow {
        let packet = match socketio::decode(payload) {
            Ok(p) => p,
            Err(SioError::BinaryNotSupported) => {
                return close(
                    CloseCode::Unsupported,
                    "binary attachments are not supported",
                );
            }
            Err(e) => return close(CloseCode::Protocol, format!("bad Socket.IO packet: {e}")),
        };
        match packet {
            SioPacket::Connect { namespace, auth } => self.connect(&namespace, auth).await,
            SioPacket::Disconnect { .. } => close(CloseCode::Normal, "client disconnected"),
            SioPacket::Ack { .. } => Flow::Continue, // the hub asks for no acks
            SioPacket::Event {
                namespace,
                ack_id,
                name,
                args,
            } => {
                if self.identity.is_none() || namespace != "/" {
                    return close(CloseCode::Policy, "event before CONNECT");
                }
                self.event(ack_id, &name, args).await
            }
        }
    }

    async fn connect(&mut self, namespace: &str, auth: Option<Value>) -> Flow {
        if namespace != "/" {
            let refusal = socketio::encode_connect_error_in_frame(namespace, "Invalid namespace");
            return match self.send_text(refusal).await {
                Ok(()) => Flow::Continue,
                Err(flow) => flow,
            };
        }
        if self.identity.is_some() {
            // Already connected: answer the same way again.
            let again = socketio::encode_connect_ok_frame(&self.sid);
            return match self.send_text(again).await {
                Ok(()) => Flow::Continue,
                Err(flow) => flow,
            };
        }
        let token = auth
            .as_ref()
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let identity = if token.is_empty() {
            None
        } else {
            self.hub.identify(&token).await
        };
        let Some(identity) = identity else {
            self.connect_attempts += 1;
            let refusal = socketio::encode_connect_error_frame("unauthorized");
            if let Err(flow) = self.send_text(refusal).await {
                return flow;
            }
            if self.connect_attempts >= MAX_CONNECT_ATTEMPTS {
                return close(CloseCode::Policy, "too many failed CONNECT attempts");
            }
            return Flow::Continue;
        };
        if self.plain && matches!(identity.role, Role::Admin | Role::Cashier | Role::Therapist) {
            let why = "this hub uses HTTPS for staff: connect to https:// on the same port";
            let refusal = socketio::encode_connect_error_frame(why);
            if let Err(flow) = self.send_text(refusal).await {
                return flow;
            }
            return close(CloseCode::Policy, why);
        }
        // Per credential and for the customers' share of the budget.
        let hash = match identity.actor {
            Actor::AdminToken => None,
            _ => Some(auth::hash_token(&token)),
        };
        let customer = identity.role == Role::Customer;
        match self.hub.gate.admit_credential(hash.as_deref(), customer) {
            Ok(ticket) => self.place = Some(Box::new(Place::Admitted(ticket))),
            Err(why) => {
                let refusal = socketio::encode_connect_error_frame(why);
                if let Err(flow) = self.send_text(refusal).await {
                    return flow;
                }
                return close(CloseCode::Again, why);
            }
        }
        self.hub.metrics.became(None, Some(identity.role));
        // Subscribe before the snapshot so no event can fall between them.
        self.ring = Some(self.hub.ring.subscribe());
        self.expires = identity.expires_at.map(|at| {
            let left = at.saturating_sub(self.hub.clock.now().ms).max(0);
            Instant::now() + Duration::from_millis(left as u64)
        });
        self.identity = Some(identity);
        self.offsets = recovery::wants_offsets(auth.as_ref());
        if !self.offsets {
            if let Err(flow) = self
                .send_text(socketio::encode_connect_ok_frame(&self.sid))
                .await
            {
                return flow;
            }
            return match self.send_snapshot().await {
                Ok(_) => Flow::Continue,
                Err(flow) => flow,
            };
        }
        // Connection state recovery: what it missed, or a snapshot and a
        // new pid (then `socket.recovered` is false).
        let replayed = match recovery::ask(auth.as_ref()) {
            Some(ask) => self.replay(ask.offset).await.map(|r| (ask.pid, r)),
            None => None,
        };
        match replayed {
            Some((pid, (seq, frames))) => {
                let ok = socketio::encode_connect_ok_with_pid_frame(&self.sid, &pid);
                if let Err(flow) = self.send_text(ok).await {
                    return flow;
                }
                self.seq = seq;
                match self.send_all(frames).await {
                    Ok(()) => Flow::Continue,
                    Err(flow) => flow,
                }
            }
            None => {
                let ok = socketio::encode_connect_ok_with_pid_frame(&self.sid, &new_sid());
                if let Err(flow) = self.send_text(ok).await {
                    return flow;
                }
                match self.send_snapshot().await {
                    Ok(_) => Flow::Continue,
                    Err(flow) => flow,
                }
            }
        }
    }

    /// The events after `offset` for this client, from the log (see
    /// `recovery`), or `None` for a snapshot. (Borrows nothing of the
    /// connection across the wait: its task must stay `Send`.)
    fn replay(
        &self,
        offset: u64,
    ) -> impl std::future::Future<Output = Option<(u64, Vec<Utf8Bytes>)>> {
        let hub = self.hub.clone();
        let who = self.identity.as_ref().map(|identity| recovery::For {
            viewer: identity.viewer,
            role: identity.role,
            staff_id: identity.actor.staff_id(),
        });
        async move {
            let who = who?;
            let log = hub.log.clone();
            let limit = hub.config.client_queue;
            hub.writer
                .read(move |state, now| recovery::replay(state, &log, offset, limit, now, who))
                .await
                .ok()
                .flatten()
        }
    }

    async fn send_snapshot(&mut self) -> Result<u64, Flow> {
        let Some(identity) = self.identity.clone() else {
            return Ok(self.seq);
        };
        let viewer = identity.viewer;
        let role = identity.role;
        let me = identity.actor.staff_id();
        let snapshot = self
            .hub
            .writer
            .read(move |state, now| {
                let seq = state.seq();
                let mut snap = views::snapshot(viewer, state, now);
                // Drawers: an admin sees every open one, a cashier their own.
                if let (Value::Object(map), true) =
                    (&mut snap, matches!(role, Role::Admin | Role::Cashier))
                {
                    let drawers: Vec<Value> = state
                        .drawers
                        .values()
                        .filter(|d| {
                            d.is_open() || now.ms - d.closed_at.unwrap_or(0) < 24 * 3_600_000
                        })
                        .filter(|d| role == Role::Admin || d.owner == me)
                        .map(views::drawer)
                        .collect();
                    map.insert("drawers".into(), Value::Array(drawers));
                }
                (seq, snap)
            })
            .await;
        let (seq, mut snap) = match snapshot {
            Ok(s) => s,
            Err(_) => return Err(close(CloseCode::Again, "the hub is stopping")),
        };
        if let Value::Object(map) = &mut snap {
            map.insert("me".into(), identity.me.clone());
            // Every amount is shown with the spa's currency (#17).
            let counter = &self.hub.config.counter;
            map.insert(
                "currency".into(),
                json!({
                    "code": counter.currency.code,
                    "minor_units": counter.currency.minor_units,
                    "prices_include_tax": counter.prices_include_tax,
                }),
            );
            // The office compares its own clock with the hub's (clock.set)
            // and makes links for phones and monitors.
            if matches!(role, Role::Admin | Role::Cashier) {
                map.insert("clock".into(), json!(self.hub.clock.status()));
                // Links and QR codes for phones and monitors start here.
                map.insert(
                    "public_base".into(),
                    json!(crate::edge::public_base(&self.hub.config)),
                );
            }
        }
        self.seq = seq;
        let mut frame = socketio::encode_event_frame("snapshot", &snap.to_string());
        if self.offsets {
            frame = socketio::with_offset(&frame, seq);
        }
        self.send_text(frame).await?;
        Ok(seq)
    }

    async fn event(&mut self, ack_id: Option<u64>, name: &str, args: Vec<Value>) -> Flow {
        let Some(identity) = self.identity.clone() else {
            return close(CloseCode::Policy, "event before CONNECT");
        };
        let arg = args.into_iter().next().unwrap_or(Value::Null);
        let result = self.dispatch(&identity, name, arg).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        self.hub.metrics.command(name, outcome);
        let Some(ack_id) = ack_id else {
            return Flow::Continue;
        };
        let ack = match result {
            Ok(data) => json!({"ok": true, "data": data}),
            Err(e) => domain_error_ack(&e),
        };
        match self
            .send_text(socketio::encode_ack_frame(ack_id, &ack.to_string()))
            .await
        {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    async fn dispatch(
        &mut self,
        identity: &Identity,
        name: &str,
        arg: Value,
    ) -> Result<Value, DomainError> {
        if !permissions::allowed(identity.role, name) {
            let known = permissions::TABLE.iter().any(|(n, _)| *n == name);
            return Err(if known {
                DomainError::new(
                    ErrorCode::Forbidden,
                    format!("a {} may not send {name}", identity.role.as_str()),
                )
            } else {
                let shown: String = name.chars().take(40).collect();
                DomainError::new(ErrorCode::Invalid, format!("unknown command `{shown}`"))
            });
        }
        if name == "report.day" {
            let date = arg.get("date").and_then(Value::as_str).map(str::to_string);
            if let Some(extra) = arg
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "date"))
            {
                return Err(DomainError::new(
                    ErrorCode::Invalid,
                    format!("report.day: unknown field `{extra}`, expected `date`"),
                ));
            }
            let report = self.hub.day_report(date.as_deref()).await?;
            return Ok(json!({ "report": report }));
        }
        if name == "sync" {
            return match self.send_snapshot().await {
                Ok(seq) => Ok(json!({ "seq": seq })),
                Err(_) => Err(DomainError::new(
                    ErrorCode::Unavailable,
                    "could not send the snapshot",
                )),
            };
        }
        let command = Command::decode(name, arg)?;
        self.hub.execute(identity.actor.clone(), command).await
    }
}

/// A close frame's reason may hold at most 123 bytes (RFC 6455: 125 for
/// the payload, 2 of them the code): cut at a character boundary.
fn close_reason(reason: &str) -> String {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason.to_string();
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

async fn recv_ring(
    ring: &mut Option<broadcast::Receiver<Arc<Broadcast>>>,
) -> Result<Arc<Broadcast>, broadcast::error::RecvError> {
    match ring {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Identity of a staff session, device or customer token (admin is checked
/// by the caller); `None` when the token is unknown, expired or revoked.
pub fn identify_in_state(
    state: &crate::domain::State,
    token_hash: &str,
    now_ms: i64,
    receipt_grace_ms: i64,
    day: u32,
) -> Option<Identity> {
    if let Some(s) = state.sessions.get(token_hash) {
        if s.expires_at <= now_ms {
            return None;
        }
        let staff = state.staff.get(&s.staff_id).filter(|m| m.active)?;
        let viewer = match staff.role {
            Role::Therapist => Viewer::Therapist(staff.id),
            _ => Viewer::Office,
        };
        return Some(Identity {
            actor: Actor::Staff {
                id: staff.id,
                role: staff.role,
            },
            role: staff.role,
            viewer,
            session: Some(token_hash.to_string()),
            expires_at: Some(s.expires_at),
            me: json!({"role": staff.role, "staff": views::staff(staff, day), "expires_at": s.expires_at}),
        });
    }
    if let Some(d) = state
        .devices
        .values()
        .find(|d| !d.revoked && auth::hashes_equal(&d.token_hash, token_hash))
    {
        return Some(Identity {
            actor: Actor::Device { id: d.id },
            role: Role::Monitor,
            viewer: Viewer::Monitor,
            session: None,
            expires_at: None,
            me: json!({"role": "monitor", "device": views::device(d)}),
        });
    }
    let Some(v) = state
        .visits
        .values()
        .find(|v| auth::hashes_equal(&v.customer_token_hash, token_hash))
    else {
        // A booking's link, before check-in (after it, the visit has the
        // same token and was found above). It lasts until a day after the
        // booking's time, or until a cancelled or missed one is a day old.
        let b = state
            .bookings
            .values()
            .find(|b| auth::hashes_equal(&b.customer_token_hash, token_hash))?;
        let until = b.start_ms.max(b.state_since) + BOOKING_LINK_GRACE_MS;
        if now_ms > until {
            return None;
        }
        return Some(Identity {
            actor: Actor::BookingCustomer { booking_id: b.id },
            role: Role::Customer,
            viewer: Viewer::BookingCustomer(b.id),
            session: None,
            expires_at: None,
            me: json!({"role": "customer", "booking_id": b.id, "number": b.number}),
        });
    };
    let expired = v.state.is_terminal()
        && v.ended_at
            .is_some_and(|end| now_ms - end > receipt_grace_ms);
    if expired {
        return None;
    }
    Some(Identity {
        actor: Actor::Customer { visit_id: v.id },
        role: Role::Customer,
        viewer: Viewer::Customer(v.id),
        session: None,
        expires_at: None,
        me: json!({"role": "customer", "visit_id": v.id, "number": v.number}),
    })
}

/// How long a booking's link keeps working after its time (or after it was
/// cancelled or missed).
const BOOKING_LINK_GRACE_MS: i64 = 24 * 3_600_000;

/// The identity for the admin token.
pub fn admin_identity() -> Identity {
    Identity {
        actor: Actor::AdminToken,
        role: Role::Admin,
        viewer: Viewer::Office,
        session: None,
        expires_at: None,
        me: json!({"role": "admin", "name": "admin"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::state::{State, Visit, VisitState};

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(&cut) && !cut.is_empty());
    }

    fn visit(state: VisitState, ended_at: Option<i64>) -> Visit {
        Visit {
            id: 7,
            number: "A-001".into(),
            day: 20261126,
            customer_name: "Ann".into(),
            phone: None,
            notes: None,
            service_ids: vec![],
            requested_therapist: None,
            state,
            therapist: None,
            room: None,
            created_at: 0,
            called_at: None,
            started_at: None,
            planned_end: None,
            finished_at: None,
            ended_at,
            extended_min: 0,
            turn_taken: crate::domain::rotation::Turns::ZERO,
            override_reason: None,
            reason: None,
            overtime: false,
            customer_token_hash: auth::hash_token("customer-token"),
            services_cents: 0,
            service_minutes: 0,
            cleanup_min: 0,
            checkout: None,
            refunds: Vec::new(),
        }
    }

    #[test]
    fn a_customer_token_works_until_the_receipt_grace_runs_out() {
        let hash = auth::hash_token("customer-token");
        let grace = 1000;
        let mut state = State::default();
        state.visits.insert(7, visit(VisitState::Waiting, None));
        let who = identify_in_state(&state, &hash, 5_000, grace, 20261126).expect("open visit");
        assert_eq!(who.viewer, Viewer::Customer(7));
        for end in [VisitState::Closed, VisitState::Left, VisitState::Voided] {
            state.visits.insert(7, visit(end, Some(5_000)));
            assert!(
                identify_in_state(&state, &hash, 5_500, grace, 20261126).is_some(),
                "{end:?} within the grace"
            );
            assert!(
                identify_in_state(&state, &hash, 6_001, grace, 20261126).is_none(),
                "{end:?} after the grace"
            );
        }
        assert!(identify_in_state(&state, &auth::hash_token("other"), 0, grace, 0).is_none());
    }
}
