//! Who may hold a socket: the limits that keep idle or greedy clients from
//! taking the places real clients need.
//!
//! - **HTTP connections not yet upgraded** have their own pool
//!   (`SPA_MAX_HTTP_CONNECTIONS`), apart from the WebSocket budget, and at
//!   most `SPA_MAX_PENDING_PER_ADDRESS` of them per address. When a pool is
//!   full, a new connection takes the place of the one that has been quiet
//!   longest (nothing read for at least [`EVICT_IDLE_MS`]): idle sockets can
//!   never lock a new client out, from another address or the same one. Only
//!   when every connection in the pool is active is the new one closed.
//! - **WebSockets before their CONNECT**: at most
//!   `SPA_MAX_PENDING_PER_ADDRESS` per address (then 503); they close after
//!   `SPA_CONNECT_TIMEOUT_MS`.
//! - **Per credential**: at most `SPA_MAX_CONNECTIONS_PER_TOKEN` live
//!   connections per customer link, device token or staff session (the
//!   admin token is the owner's and is not capped).
//! - **The staff and monitor share**: customers together may hold at most
//!   `SPA_MAX_CONNECTIONS` minus `SPA_STAFF_RESERVE_PERCENT` of it, so the
//!   rest stays free for staff and monitors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::config::Config;

/// The address a client is counted by: IPv4 as is (an IPv4-mapped IPv6
/// address as IPv4), IPv6 by its /64 network, since one device may hold a
/// whole /64 and pick a new address for each connection.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// An HTTP connection quiet for at least this long may be evicted for a
/// new one when its pool is full.
pub const EVICT_IDLE_MS: u64 = 500;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_http: usize,
    pub per_address: usize,
    pub per_token: usize,
    /// Customer connections at most (the budget minus the staff share).
    pub customers: usize,
}

impl Limits {
    pub fn from_config(c: &Config) -> Limits {
        let reserve = (c.max_connections * c.staff_reserve_percent as usize).div_ceil(100);
        Limits {
            max_http: c.max_http_connections,
            per_address: c.max_pending_per_address,
            per_token: c.max_connections_per_token,
            customers: c.max_connections.saturating_sub(reserve).max(1),
        }
    }
}

struct HttpEntry {
    addr: IpAddr,
    activity: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    http: HashMap<u64, HttpEntry>,
    http_by_addr: HashMap<IpAddr, usize>,
    ws_by_addr: HashMap<IpAddr, usize>,
    tokens: HashMap<String, usize>,
    customers: usize,
}

fn dec<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

pub struct Gate {
    inner: Mutex<Inner>,
    limits: Limits,
    epoch: Instant,
    /// Connections closed to make room for a new one, and refused.
    pub evicted: AtomicU64,
    pub refused: AtomicU64,
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            inner: Mutex::new(Inner::default()),
            limits,
            epoch: Instant::now(),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new HTTP connection from `addr`, making room by
    /// evicting the quietest idle one if a pool is full; `None` when every
    /// connection in the way is active.
    pub fn admit_http(self: &Arc<Self>, addr: IpAddr) -> Option<HttpTicket> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let addr_full =
            inner.http_by_addr.get(&addr).copied().unwrap_or(0) >= self.limits.per_address;
        let all_full = inner.http.len() >= self.limits.max_http;
        for (full, same_addr) in [(addr_full, true), (all_full, false)] {
            if !full {
                continue;
            }
            let victim = inner
                .http
                .iter()
                .filter(|(_, e)| !same_addr || e.addr == addr)
                .map(|(id, e)| (e.activity.load(Relaxed), *id))
                .filter(|(last, _)| now.saturating_sub(*last) >= EVICT_IDLE_MS)
                .min();
            let Some((_, id)) = victim else {
                self.refused.fetch_add(1, Relaxed);
                return None;
            };
            if let Some(e) = inner.http.remove(&id) {
                dec(&mut inner.http_by_addr, &e.addr);
                e.evict.notify_one();
                self.evicted.fetch_add(1, Relaxed);
            }
            if !same_addr || inner.http.len() < self.limits.max_http {
                break;
            }
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let activity = Arc::new(AtomicU64::new(now));
        let evict = Arc::new(Notify::new());
        inner.http.insert(
            id,
            HttpEntry {
                addr,
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        *inner.http_by_addr.entry(addr).or_insert(0) += 1;
        Some(HttpTicket {
            gate: self.clone(),
            id,
            activity,
            evict,
        })
    }

    /// A place for a WebSocket from `addr` until its CONNECT.
    pub fn admit_ws_pending(self: &Arc<Self>, addr: IpAddr) -> Option<WsPendingTicket> {
        let mut inner = self.lock();
        let n = inner.ws_by_addr.entry(addr).or_insert(0);
        if *n >= self.limits.per_address {
            self.refused.fetch_add(1, Relaxed);
            return None;
        }
        *n += 1;
        Some(WsPendingTicket {
            gate: self.clone(),
            addr,
        })
    }

    /// A place for a connection with a credential (its token's hash; `None`
    /// for the admin token), or why not.
    pub fn admit_credential(
        self: &Arc<Self>,
        token_hash: Option<&str>,
        customer: bool,
    ) -> Result<CredentialTicket, &'static str> {
        let mut inner = self.lock();
        if customer && inner.customers >= self.limits.customers {
            self.refused.fetch_add(1, Relaxed);
            return Err("the hub is full for customers; the rest is kept for staff and monitors");
        }
        if let Some(hash) = token_hash {
            let n = inner.tokens.get(hash).copied().unwrap_or(0);
            if n >= self.limits.per_token {
                self.refused.fetch_add(1, Relaxed);
                return Err("too many connections with this credential");
            }
            inner.tokens.insert(hash.to_string(), n + 1);
        }
        if customer {
            inner.customers += 1;
        }
        Ok(CredentialTicket {
            gate: self.clone(),
            token_hash: token_hash.map(str::to_string),
            customer,
        })
    }

    /// (HTTP connections, WebSockets before CONNECT, credentials held,
    /// customers) for `/metrics`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let inner = self.lock();
        (
            inner.http.len(),
            inner.ws_by_addr.values().sum(),
            inner.tokens.len(),
            inner.customers,
        )
    }
}

/// An HTTP connection's place; wraps its socket to note when it last read.
pub struct HttpTicket {
    gate: Arc<Gate>,
    id: u64,
    activity: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

impl HttpTicket {
    /// Resolves when the connection is evicted to make room for another.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }

    /// A handle for the requests on this connection to mark it busy.
    pub fn busy_marker(&self) -> BusyMarker {
        BusyMarker {
            activity: self.activity.clone(),
            epoch: self.gate.epoch,
        }
    }

    /// The socket, noting each read as activity.
    pub fn watch<S>(&self, io: S) -> Watched<S> {
        Watched {
            io,
            activity: self.activity.clone(),
            epoch: self.gate.epoch,
        }
    }
}

impl Drop for HttpTicket {
    fn drop(&mut self) {
        let mut inner = self.gate.lock();
        if let Some(e) = inner.http.remove(&self.id) {
            dec(&mut inner.http_by_addr, &e.addr);
        }
    }
}

pub struct WsPendingTicket {
    gate: Arc<Gate>,
    addr: IpAddr,
}

impl Drop for WsPendingTicket {
    fn drop(&mut self) {
        let mut inner = self.gate.lock();
        dec(&mut inner.ws_by_addr, &self.addr);
    }
}

pub struct CredentialTicket {
    gate: Arc<Gate>,
    token_hash: Option<String>,
    customer: bool,
}

impl Drop for CredentialTicket {
    fn drop(&mut self) {
        let mut inner = self.gate.lock();
        if let Some(h) = &self.token_hash {
            dec(&mut inner.tokens, h);
        }
        if self.customer {
            inner.customers = inner.customers.saturating_sub(1);
        }
    }
}

/// Marks an HTTP connection busy while a long-polling `GET` waits on it:
/// nothing is read then, but it is no idle socket to evict for a new one.
#[derive(Clone)]
pub struct BusyMarker {
    activity: Arc<AtomicU64>,
    epoch: Instant,
}

impl BusyMarker {
    /// Busy until the guard drops (then active as of that moment).
    pub fn hold(&self) -> BusyGuard<'_> {
        self.activity.store(u64::MAX, Relaxed);
        BusyGuard(self)
    }
}

pub struct BusyGuard<'a>(&'a BusyMarker);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        self.0.activity.store(now, Relaxed);
    }
}

/// A socket that records the time of its last read.
pub struct Watched<S> {
    io: S,
    activity: Arc<AtomicU64>,
    epoch: Instant,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.activity.store(now, Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
