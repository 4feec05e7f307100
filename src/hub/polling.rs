//! Engine.IO v4 long-polling sessions and their upgrade to WebSocket.
//!
//! A polling session is the same [`Connection`](super::connection::Connection)
//! task as a WebSocket — handshake, auth, heartbeat, commands, the
//! role-filtered ring — with a different end: what it sends waits in the
//! session's outbox until a `GET` takes it, and what a `POST` carries is
//! handed to it packet by packet. The HTTP handlers (`src/http/polling.rs`)
//! and the connection task share one [`Session`]; the registry
//! ([`Sessions`]) finds it by `sid`.
//!
//! The rules (Engine.IO v4):
//! - one `GET` at a time: a second one while the first waits is answered
//!   `400`, the first gets a `1` (close) and the session ends; likewise a
//!   second concurrent `POST`;
//! - a `POST` over `maxPayload` is `413`, a malformed or binary packet
//!   `400`, and both end the session;
//! - the upgrade: a WebSocket with the session's `sid` sends `2probe`, gets
//!   `3probe`, the pending `GET` is released with a `6` (noop), the client
//!   sends `5`, and from then on the session's task speaks over the
//!   WebSocket (after sending it whatever was still in the outbox); `GET`
//!   and `POST` with that `sid` are then `400`;
//! - a session not polled for the ping timeout (and not upgrading) is
//!   dropped by its task (see `Timers` in the connection).
//!
//! Memory between requests is bounded: the outbox holds at most
//! `SPA_CLIENT_QUEUE` packets (then the client is too slow and is dropped,
//! as on a WebSocket); broadcast frames in it are shared with every other
//! connection, only acks and snapshots are the session's own.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::engineio;

/// Packets a `POST` may hand to the session's task before it waits for the
/// task to take them.
const INBOX: usize = 8;

/// How long a session closed by its client stays findable, so that a `GET`
/// sent together with the close still gets its noop.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Every live polling session, by `sid`.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session with this `sid`, and the task's end of it.
    pub fn open(self: &Arc<Self>, sid: &str, outbox_limit: usize) -> PollEnd {
        let (inbox, receiver) = mpsc::channel(INBOX);
        let session = Arc::new(Session {
            sid: sid.to_string(),
            shared: Mutex::new(Shared {
                out: VecDeque::new(),
                stage: Stage::Open,
                getting: false,
                posting: false,
                probing: false,
                idle_since: Some(Instant::now()),
            }),
            ready: Notify::new(),
            inbox,
        });
        self.lock().insert(sid.to_string(), session.clone());
        PollEnd {
            session,
            inbox: receiver,
            sessions: self.clone(),
            outbox_limit,
        }
    }

    pub fn get(&self, sid: &str) -> Option<Arc<Session>> {
        self.lock().get(sid).cloned()
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    /// Live polling sessions (including those upgrading).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    /// `2probe` answered, the pending `GET` released with a noop.
    Upgrading,
    /// `5` received: HTTP is refused, the task takes the outbox over to
    /// the WebSocket.
    Upgraded,
    Closed,
}

struct Shared {
    out: VecDeque<Utf8Bytes>,
    stage: Stage,
    getting: bool,
    posting: bool,
    /// A WebSocket is trying to upgrade the session (one at a time).
    probing: bool,
    /// Since when no `GET` has been waiting (`None` while one waits).
    idle_since: Option<Instant>,
}

/// What the HTTP side hands to the session's task.
pub enum PollIn {
    /// One Engine.IO packet from a `POST` (already checked to decode).
    Packet(String),
    /// The session was ended by a protocol error (said why).
    Fail(&'static str),
    /// The upgraded WebSocket (a `WebSocketStream<S>` of the task's `S`;
    /// boxed as `Any` so the registry need not be generic).
    Upgraded(Box<dyn Any + Send>),
}

/// One polling session, shared by its task and the HTTP handlers.
pub struct Session {
    sid: String,
    shared: Mutex<Shared>,
    /// Wakes the waiting `GET`.
    ready: Notify,
    inbox: mpsc::Sender<PollIn>,
}

/// Why a `GET` or `POST` is refused; the session may have ended with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such session (ended, upgraded or never opened): `400`.
    UnknownSid,
    /// A second `GET` or `POST` while one is in progress: `400`, session ended.
    Overlap,
    /// A malformed packet: `400`, session ended.
    BadPacket,
    /// A binary packet: `400`, session ended.
    Binary,
    /// A body over `maxPayload`: `413`, session ended.
    TooLarge,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownSid => "Session ID unknown",
            Refusal::Overlap => "a second request of the same kind while one was in progress",
            Refusal::BadPacket => "a malformed Engine.IO packet; the session is closed",
            Refusal::Binary => "binary packets are not supported; the session is closed",
            Refusal::TooLarge => "a payload larger than maxPayload; the session is closed",
        }
    }

    /// The Engine.IO error code of the JSON error body (`1` unknown sid,
    /// `3` bad request).
    pub fn code(self) -> u8 {
        match self {
            Refusal::UnknownSid => 1,
            _ => 3,
        }
    }
}

impl Session {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Ends the session from the HTTP side, the task is told why. For an
    /// error (`last` is `Some`) a waiting `GET` gets `last`, a later one a
    /// `400`. For the client's own close (`None`) the waiting `GET` — or one
    /// arriving within [`CLOSE_LINGER`], as a client may send both at once —
    /// gets a noop.
    fn fail(&self, last: Option<&'static str>, why: &'static str) {
        {
            let mut shared = self.lock();
            if shared.stage == Stage::Closed {
                return;
            }
            shared.stage = Stage::Closed;
            shared.out.clear();
            match last {
                Some(packet) if shared.getting => {
                    shared.out.push_back(Utf8Bytes::from_static(packet))
                }
                Some(_) => {}
                None => shared.out.push_back(Utf8Bytes::from_static(engineio::NOOP)),
            }
        }
        self.ready.notify_one();
        // Full only while the task is busy reading the inbox: it then sees
        // the closed stage on its next read.
        let _ = self.inbox.try_send(PollIn::Fail(why));
    }

    /// Ends the session for a bad request (a waiting `GET` gets a `1`).
    pub fn end(&self, why: &'static str) {
        self.fail(Some(engineio::CLOSE), why);
    }

    /// Claims the session for one WebSocket's upgrade attempt: false when
    /// it cannot upgrade or another WebSocket is already trying, so a
    /// client cannot hold any number of sockets waiting for their probe.
    pub fn claim_upgrade(&self) -> bool {
        let mut shared = self.lock();
        if shared.stage != Stage::Open || shared.probing {
            return false;
        }
        shared.probing = true;
        true
    }

    /// A `GET`: waits for packets and returns the payload to send.
    pub async fn poll(&self) -> Result<String, Refusal> {
        {
            let mut shared = self.lock();
            match shared.stage {
                // The noop after the client's own close, once.
                Stage::Closed if !shared.getting && !shared.out.is_empty() => {
                    return Ok(join(&mut shared.out));
                }
                Stage::Closed | Stage::Upgraded => return Err(Refusal::UnknownSid),
                // The client is pausing polling for the upgrade.
                Stage::Upgrading => return Ok(engineio::NOOP.to_string()),
                Stage::Open => {}
            }
            if shared.getting {
                drop(shared);
                self.fail(Some(engineio::CLOSE), "a second GET while one was pending");
                return Err(Refusal::Overlap);
            }
            shared.getting = true;
            shared.idle_since = None;
        }
        // Clears `getting` however the request ends (the client may go away).
        let _getting = GetGuard(self);
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut shared = self.lock();
                if !shared.out.is_empty() {
                    return Ok(join(&mut shared.out));
                }
                if shared.stage != Stage::Open {
                    return Ok(engineio::NOOP.to_string());
                }
            }
            notified.await;
        }
    }

    /// A `POST` body (already within `maxPayload`): hands each packet to the
    /// task in order. A malformed or binary packet ends the session.
    pub async fn post(&self, body: &[u8]) -> Result<(), Refusal> {
        {
            let mut shared = self.lock();
            if matches!(shared.stage, Stage::Closed | Stage::Upgraded) {
                return Err(Refusal::UnknownSid);
            }
            if shared.posting {
                drop(shared);
                self.fail(
                    Some(engineio::CLOSE),
                    "a second POST while one was in progress",
                );
                return Err(Refusal::Overlap);
            }
            shared.posting = true;
        }
        let _posting = PostGuard(self);
        // Checked whole before any packet is acted on.
        let packets = match payload(body) {
            Ok(packets) => packets,
            Err(why) => {
                self.fail(Some(engineio::CLOSE), why.message());
                return Err(why);
            }
        };
        for packet in packets {
            if packet == engineio::CLOSE {
                // The client closes: a waiting GET ends with a noop.
                self.fail(None, "client closed");
                return Ok(());
            }
            if self
                .inbox
                .send(PollIn::Packet(packet.to_string()))
                .await
                .is_err()
            {
                return Err(Refusal::UnknownSid);
            }
        }
        Ok(())
    }

    /// `2probe` was answered on a WebSocket with this `sid`: release the
    /// waiting `GET` with a noop. False when the session cannot upgrade.
    fn begin_upgrade(&self) -> bool {
        {
            let mut shared = self.lock();
            if shared.stage != Stage::Open {
                return false;
            }
            shared.stage = Stage::Upgrading;
            shared.out.push_back(Utf8Bytes::from_static(engineio::NOOP));
        }
        self.ready.notify_one();
        true
    }

    /// The upgrade attempt failed: back to polling, open to another one.
    pub fn abort_upgrade(&self) {
        let mut shared = self.lock();
        shared.probing = false;
        if shared.stage == Stage::Upgrading {
            shared.stage = Stage::Open;
            if !shared.getting {
                shared.idle_since = Some(Instant::now());
            }
        }
    }

    /// `5` received: HTTP with this `sid` is refused from now on.
    fn seal(&self) -> bool {
        let mut shared = self.lock();
        if shared.stage != Stage::Upgrading {
            return false;
        }
        shared.stage = Stage::Upgraded;
        true
    }
}

/// The packets of a `POST` body, each a valid Engine.IO text packet; a
/// body that is not UTF-8, holds a binary (`b…`) or malformed packet, or an
/// empty piece between separators is refused as a whole.
pub fn payload(body: &[u8]) -> Result<Vec<&str>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| Refusal::BadPacket)?;
    let mut packets = Vec::new();
    for packet in engineio::split_payload(text) {
        if engineio::is_binary(packet) {
            return Err(Refusal::Binary);
        }
        engineio::decode(packet).map_err(|_| Refusal::BadPacket)?;
        packets.push(packet);
    }
    Ok(packets)
}

/// A long-polling payload: the packets joined by `\x1e`.
fn join(out: &mut VecDeque<Utf8Bytes>) -> String {
    let len = out.iter().map(|p| p.len() + 1).sum();
    let mut body = String::with_capacity(len);
    for (i, packet) in out.drain(..).enumerate() {
        if i > 0 {
            body.push(engineio::SEPARATOR);
        }
        body.push_str(packet.as_str());
    }
    body
}

struct GetGuard<'a>(&'a Session);

impl Drop for GetGuard<'_> {
    fn drop(&mut self) {
        let mut shared = self.0.lock();
        shared.getting = false;
        shared.idle_since = Some(Instant::now());
    }
}

struct PostGuard<'a>(&'a Session);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().posting = false;
    }
}

/// The outbox is full: the client does not poll fast enough.
#[derive(Debug)]
pub struct Full;

/// The session as its connection task holds it.
pub struct PollEnd {
    session: Arc<Session>,
    inbox: mpsc::Receiver<PollIn>,
    sessions: Arc<Sessions>,
    outbox_limit: usize,
}

impl PollEnd {
    /// Queues packets for the next `GET` (dropped once the session ended).
    pub fn send(&self, packets: Vec<Utf8Bytes>) -> Result<(), Full> {
        if packets.is_empty() {
            return Ok(());
        }
        {
            let mut shared = self.session.lock();
            if shared.stage == Stage::Closed {
                return Ok(());
            }
            if shared.out.len() + packets.len() > self.outbox_limit {
                return Err(Full);
            }
            shared.out.extend(packets);
        }
        self.session.ready.notify_one();
        Ok(())
    }

    /// The next thing from the HTTP side; `Fail` once the session ended.
    pub async fn next(&mut self) -> PollIn {
        match self.inbox.recv().await {
            Some(incoming) => incoming,
            None => PollIn::Fail("the session ended"),
        }
    }

    /// When the session has gone unpolled for `within`, if it is not
    /// being polled or upgraded now.
    pub fn unpolled_by(&self, within: Duration) -> Option<Instant> {
        let shared = self.session.lock();
        match shared.stage {
            Stage::Open => shared.idle_since.map(|since| since + within),
            _ => None,
        }
    }

    /// The upgrade completed: the packets still waiting for a `GET`, to be
    /// sent over the WebSocket; the session leaves the registry.
    pub fn finish_upgrade(self) -> Vec<Utf8Bytes> {
        let packets = {
            let mut shared = self.session.lock();
            shared.stage = Stage::Closed;
            // The noop was for the last GET only.
            shared
                .out
                .drain(..)
                .filter(|p| p.as_str() != engineio::NOOP)
                .collect()
        };
        self.session.ready.notify_one();
        packets
    }
}

impl Drop for PollEnd {
    /// However the task ends, the session ends with it: a waiting `GET` gets
    /// a `1` (close), later requests a `400`.
    fn drop(&mut self) {
        let linger = {
            let mut shared = self.session.lock();
            if shared.stage != Stage::Closed {
                shared.stage = Stage::Closed;
                shared.out.clear();
                if shared.getting {
                    shared
                        .out
                        .push_back(Utf8Bytes::from_static(engineio::CLOSE));
                }
            }
            !shared.getting && !shared.out.is_empty()
        };
        self.session.ready.notify_one();
        // The noop of a client's close waits a moment for its GET.
        if let (true, Ok(runtime)) = (linger, tokio::runtime::Handle::try_current()) {
            let (sessions, sid) = (self.sessions.clone(), self.session.sid.clone());
            runtime.spawn(async move {
                tokio::time::sleep(CLOSE_LINGER).await;
                sessions.remove(&sid);
            });
        } else {
            self.sessions.remove(&self.session.sid);
        }
    }
}

/// The WebSocket side of an upgrade (after [`Session::claim_upgrade`]):
/// waits for `2probe`, answers `3probe`,
/// releases the pending `GET`, waits for `5`, then hands the WebSocket to
/// the session's task. Anything else (or nothing within `wait`) closes the
/// WebSocket and leaves the session polling.
pub async fn upgrade<S>(session: Arc<Session>, mut ws: WebSocketStream<S>, wait: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let text = |m: Option<Result<Message, _>>| match m {
        Some(Ok(Message::Text(t))) => Some(t),
        _ => None,
    };
    let probe = tokio::time::timeout(wait, ws.next())
        .await
        .ok()
        .and_then(text);
    if probe.as_deref() != Some("2probe") {
        session.abort_upgrade();
        let _ = ws.close(None).await;
        return;
    }
    if ws.send(Message::text("3probe")).await.is_err() || !session.begin_upgrade() {
        session.abort_upgrade();
        let _ = ws.close(None).await;
        return;
    }
    let done = tokio::time::timeout(wait, ws.next())
        .await
        .ok()
        .and_then(text);
    if done.as_deref() != Some("5") || !session.seal() {
        session.abort_upgrade();
        let _ = ws.close(None).await;
        return;
    }
    if session
        .inbox
        .send(PollIn::Upgraded(Box::new(ws)))
        .await
        .is_err()
    {
        session.abort_upgrade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(limit: usize) -> (Arc<Sessions>, PollEnd) {
        let sessions = Arc::new(Sessions::default());
        let end = sessions.open("sid1", limit);
        (sessions, end)
    }

    fn packets(list: &[&'static str]) -> Vec<Utf8Bytes> {
        list.iter().map(|p| Utf8Bytes::from_static(p)).collect()
    }

    #[tokio::test]
    async fn a_get_takes_everything_joined() {
        let (sessions, end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        end.send(packets(&["0{}", "2"])).expect("room");
        assert_eq!(session.poll().await, Ok("0{}\u{1e}2".to_string()));
        end.send(packets(&["42[\"x\"]"])).expect("room");
        assert_eq!(session.poll().await, Ok("42[\"x\"]".to_string()));
    }

    #[tokio::test]
    async fn the_outbox_is_bounded() {
        let (_sessions, end) = end(2);
        end.send(packets(&["2", "2"])).expect("room");
        assert!(end.send(packets(&["2"])).is_err());
    }

    #[tokio::test]
    async fn a_second_get_ends_the_session() {
        let (sessions, end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        let first = tokio::spawn({
            let s = session.clone();
            async move { s.poll().await }
        });
        tokio::task::yield_now().await;
        while !session.lock().getting {
            tokio::task::yield_now().await;
        }
        assert_eq!(session.poll().await, Err(Refusal::Overlap));
        assert_eq!(first.await.ok(), Some(Ok("1".to_string())));
        assert_eq!(session.poll().await, Err(Refusal::UnknownSid));
        drop(end);
        assert!(sessions.get("sid1").is_none());
    }

    #[tokio::test]
    async fn bad_posts_end_the_session() {
        for (body, why) in [
            (&b"abc"[..], Refusal::BadPacket),
            (b"4a\x1e\x1e4b", Refusal::BadPacket),
            (b"", Refusal::BadPacket),
            (b"\xff\xfe", Refusal::BadPacket),
            (b"4a\x1ebAQID", Refusal::Binary),
        ] {
            let (sessions, mut end) = end(8);
            let session = sessions.get("sid1").expect("registered");
            assert_eq!(session.post(body).await, Err(why), "{body:?}");
            assert!(matches!(end.next().await, PollIn::Fail(_)));
            assert_eq!(session.poll().await, Err(Refusal::UnknownSid));
        }
    }

    #[tokio::test]
    async fn packets_reach_the_task_in_order_and_close_releases_the_get() {
        let (sessions, mut end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        assert_eq!(session.post(b"3\x1e40{}").await, Ok(()));
        assert!(matches!(end.next().await, PollIn::Packet(p) if p == "3"));
        assert!(matches!(end.next().await, PollIn::Packet(p) if p == "40{}"));
        let waiting = tokio::spawn({
            let s = session.clone();
            async move { s.poll().await }
        });
        while !session.lock().getting {
            tokio::task::yield_now().await;
        }
        assert_eq!(session.post(b"1").await, Ok(()));
        assert_eq!(waiting.await.ok(), Some(Ok("6".to_string())));
    }

    #[tokio::test]
    async fn a_get_just_after_the_clients_close_gets_its_noop_once() {
        let (sessions, end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        assert_eq!(session.post(b"1").await, Ok(()));
        drop(end);
        assert!(sessions.get("sid1").is_some(), "lingers for the GET");
        assert_eq!(session.poll().await, Ok("6".to_string()));
        assert_eq!(session.poll().await, Err(Refusal::UnknownSid));
    }

    #[tokio::test]
    async fn one_upgrade_attempt_at_a_time() {
        let (sessions, end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        assert!(session.claim_upgrade());
        assert!(
            !session.claim_upgrade(),
            "a second WebSocket waits for nothing"
        );
        assert!(session.begin_upgrade());
        assert_eq!(session.poll().await, Ok("6".to_string()));
        session.abort_upgrade();
        assert!(session.claim_upgrade() && session.begin_upgrade() && session.seal());
        assert_eq!(session.poll().await, Err(Refusal::UnknownSid));
        end.send(packets(&["42[\"x\"]"]))
            .expect("kept for the WebSocket");
        assert_eq!(end.finish_upgrade().len(), 1, "the event, not the noop");
        assert!(sessions.is_empty());
    }

    /// The design figure of the README: what a session holds between
    /// requests, besides its outbox.
    #[test]
    fn a_session_is_small() {
        let (session, end, packet, incoming) = (
            std::mem::size_of::<Session>(),
            std::mem::size_of::<PollEnd>(),
            std::mem::size_of::<Utf8Bytes>(),
            std::mem::size_of::<PollIn>(),
        );
        eprintln!(
            "Session {session} B, PollEnd {end} B, a queued packet {packet} B, PollIn {incoming} B"
        );
        assert!(session <= 256 && end <= 64 && packet <= 32 && incoming <= 32);
    }

    #[tokio::test]
    async fn the_task_ending_closes_the_session() {
        let (sessions, end) = end(8);
        let session = sessions.get("sid1").expect("registered");
        assert!(end.unpolled_by(Duration::from_secs(1)).is_some());
        drop(end);
        assert_eq!(session.poll().await, Err(Refusal::UnknownSid));
        assert!(sessions.is_empty());
    }
}
