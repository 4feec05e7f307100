//! The login lockout: attempts are counted *before* the PIN is checked, by
//! (name, address), by address and by name, each with a back-off that
//! doubles.
//!
//! The policy (the README repeats it):
//!
//! - **(name, address)**: 5 failed logins for one name from one address
//!   lock that pair for 60 s; every further failure after a lock locks it
//!   again for twice as long (60 s, 120 s, 240 s … at most 1 h). A
//!   successful login from that address for that name clears the pair.
//! - **address**: 10 failed logins from one address, whatever the names,
//!   lock the address (every name) with the same doubling back-off.
//! - **name**: 20 failed logins for one name from all addresses together
//!   lock the name for every address that has not logged in successfully as
//!   that name in the last 30 days, with the same doubling back-off. The
//!   addresses the staff member really uses are not locked by a stranger;
//!   a guesser spread over many addresses still meets the name's limit.
//! - A key's count and back-off are forgotten after 24 h without a failure.
//! - An attempt counts from the moment it is let through: until the PIN
//!   check ends it holds a place (`in flight`) in the pair's, the address's
//!   and the name's counts, so a concurrent burst cannot run more checks
//!   than the limit allows. A success gives its place back; a failure (or a
//!   check that never finishes) keeps it.
//!
//! The table is bounded: past [`MAX_ENTRIES`] keys, entries that are neither
//! locked nor in flight are forgotten, oldest first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed per (name, address), per address, per name.
pub const PAIR_LIMIT: u32 = 5;
pub const ADDRESS_LIMIT: u32 = 10;
pub const NAME_LIMIT: u32 = 20;
/// The first lock's length; each further one doubles, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::from_secs(60);
pub const MAX_LOCK: Duration = Duration::from_secs(3600);
/// A key with no failure for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a successful login makes an address "known" for its name.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Keys kept before idle ones are forgotten.
pub const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Addr(IpAddr),
    Name(String),
    /// A successful login for the name from the address.
    Known(String, IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    in_flight: u32,
    /// Locks so far (the back-off's exponent).
    strikes: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            in_flight: 0,
            strikes: 0,
            locked_until: None,
            last: now,
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0 && self.locked_until.is_none_or(|u| u <= now)
    }
}

/// Why an attempt is not let through: seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after_s: u64,
}

pub struct Lockout {
    inner: Mutex<HashMap<Key, Entry>>,
    pair_limit: u32,
    address_limit: u32,
    name_limit: u32,
    first_lock: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new(PAIR_LIMIT, ADDRESS_LIMIT, NAME_LIMIT, FIRST_LOCK)
    }
}

/// One login attempt's place in the counts. Call [`Attempt::succeeded`] or
/// [`Attempt::failed`]; dropped without either, it counts as a failure.
pub struct Attempt {
    lockout: Arc<Lockout>,
    name: String,
    addr: IpAddr,
    keys: Vec<Key>,
    done: bool,
}

impl Attempt {
    pub fn succeeded(mut self) {
        self.done = true;
        self.lockout.finish(&self.keys, &self.name, self.addr, true);
    }

    pub fn failed(mut self) {
        self.done = true;
        self.lockout
            .finish(&self.keys, &self.name, self.addr, false);
    }

    /// Gives the place back without counting anything (the check never ran).
    pub fn cancel(mut self) {
        self.done = true;
        self.lockout.release(&self.keys);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.lockout
                .finish(&self.keys, &self.name, self.addr, false);
        }
    }
}

impl Lockout {
    pub fn new(pair_limit: u32, address_limit: u32, name_limit: u32, first_lock: Duration) -> Self {
        Lockout {
            inner: Mutex::new(HashMap::new()),
            pair_limit: pair_limit.max(1),
            address_limit: address_limit.max(1),
            name_limit: name_limit.max(1),
            first_lock,
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Pair(..) => self.pair_limit,
            Key::Addr(_) => self.address_limit,
            Key::Name(_) | Key::Known(..) => self.name_limit,
        }
    }

    fn lock_length(&self, strikes: u32) -> Duration {
        let factor = 1u32 << strikes.saturating_sub(1).min(12);
        self.first_lock.saturating_mul(factor).min(MAX_LOCK)
    }

    /// Reserves a place for one attempt, or says how long to wait. The
    /// place is taken before the PIN is checked.
    pub fn begin(self: &Arc<Self>, name: &str, addr: IpAddr) -> Result<Attempt, Locked> {
        let name = name.trim().to_lowercase();
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_ENTRIES {
            prune(&mut map, now);
        }
        let known = map
            .get(&Key::Known(name.clone(), addr))
            .is_some_and(|e| now.duration_since(e.last) < KNOWN_FOR);
        let mut keys = vec![Key::Pair(name.clone(), addr), Key::Addr(addr)];
        if !known {
            keys.push(Key::Name(name.clone()));
        }
        let mut wait: Option<Duration> = None;
        for key in &keys {
            let Some(e) = map.get_mut(key) else { continue };
            if now.duration_since(e.last) > FORGET_AFTER && e.in_flight == 0 {
                *e = Entry::new(now);
                continue;
            }
            if let Some(until) = e.locked_until.filter(|u| *u > now) {
                wait = wait.max(Some(until - now));
            } else if e.failures + e.in_flight >= self.limit(key) {
                // The attempts in flight would reach the limit: wait for them.
                wait = wait.max(Some(Duration::from_secs(1)));
            }
        }
        if let Some(w) = wait {
            let secs = w.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Locked {
                retry_after_s: secs,
            });
        }
        for key in &keys {
            let e = map.entry(key.clone()).or_insert_with(|| Entry::new(now));
            e.in_flight += 1;
        }
        drop(map);
        Ok(Attempt {
            lockout: self.clone(),
            name,
            addr,
            keys,
            done: false,
        })
    }

    fn release(&self, keys: &[Key]) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if let Some(e) = map.get_mut(key) {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
        }
    }

    fn finish(&self, keys: &[Key], name: &str, addr: IpAddr, ok: bool) {
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let limit = self.limit(key);
            let Some(e) = map.get_mut(key) else { continue };
            e.in_flight = e.in_flight.saturating_sub(1);
            if ok {
                if let Key::Pair(..) = key {
                    *e = Entry {
                        in_flight: e.in_flight,
                        ..Entry::new(now)
                    };
                }
                continue;
            }
            e.failures += 1;
            e.last = now;
            if e.failures >= limit {
                e.strikes += 1;
                e.locked_until = Some(now + self.lock_length(e.strikes));
                // After the lock, one more failure locks again (longer).
                e.failures = limit - 1;
            }
        }
        if ok {
            let known = map
                .entry(Key::Known(name.to_string(), addr))
                .or_insert_with(|| Entry::new(now));
            known.last = now;
        }
    }

    /// Seconds left if the pair, the address or (for an address unknown to
    /// the name) the name is locked; for tests and diagnostics.
    pub fn locked(&self, name: &str, addr: IpAddr) -> Option<u64> {
        let name = name.trim().to_lowercase();
        let now = Instant::now();
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let known = map
            .get(&Key::Known(name.clone(), addr))
            .is_some_and(|e| now.duration_since(e.last) < KNOWN_FOR);
        let mut keys = vec![Key::Pair(name.clone(), addr), Key::Addr(addr)];
        if !known {
            keys.push(Key::Name(name));
        }
        keys.iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    /// Keys held (for the memory bound's test).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets idle entries, those quiet longest first, down to 3/4 of the cap.
fn prune(map: &mut HashMap<Key, Entry>, now: Instant) {
    map.retain(|k, e| match k {
        Key::Known(..) => now.duration_since(e.last) < KNOWN_FOR,
        _ => !(e.idle(now) && now.duration_since(e.last) > FORGET_AFTER),
    });
    if map.len() <= MAX_ENTRIES * 3 / 4 {
        return;
    }
    let mut idle: Vec<(Instant, Key)> = map
        .iter()
        .filter(|(k, e)| e.idle(now) && !matches!(k, Key::Known(..)))
        .map(|(k, e)| (e.last, k.clone()))
        .collect();
    idle.sort_by_key(|(last, _)| *last);
    let excess = map.len().saturating_sub(MAX_ENTRIES * 3 / 4);
    for (_, key) in idle.into_iter().take(excess) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests;
