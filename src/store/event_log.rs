//! The event log's keys in tree `floor`: every event is written as its own
//! key (`e` + seq big-endian → the encoded `EventRecord`), and the oldest
//! are later packed, `EVENTS_PER_PACK` consecutive events under one key
//! (`E` + the first seq → postcard `Vec<bytes>` of their encoded values,
//! unchanged, still sealed per customer).
//!
//! Why: sled keeps an entry for every page of the tree in memory for as
//! long as the database lives, and its leaves split at 16 keys, so a log of
//! single keys costs memory for every event ever written (about 30 MB per
//! million events, measured). Packed, a million events are about 16,000
//! keys. The newest `SINGLE_EVENTS_KEPT` stay single: the commit path, the
//! publisher and recovery read them as before.
//!
//! A pack replaces its single keys in one atomic sled batch, so a crash
//! leaves either. Readers iterate without a snapshot, so the reader here
//! checks that seqs follow each other and, when the next one is missing
//! from the single keys (packed meanwhile), reads it from its pack.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{decode_event, StoreError};
use crate::domain::EventRecord;
use crate::keyring::Keyring;

pub(super) const EVENT: u8 = b'e';
const PACK: u8 = b'E';
/// Events in one pack.
pub const EVENTS_PER_PACK: usize = 64;
/// The newest events always stay single keys.
pub const SINGLE_EVENTS_KEPT: u64 = 10_000;

pub(super) fn event_key(seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(EVENT);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn pack_key(first: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(PACK);
    k.extend_from_slice(&first.to_be_bytes());
    k
}

pub(super) fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = key
        .get(1..)
        .unwrap_or_default()
        .try_into()
        .map_err(|_| StoreError::Corrupt("event key is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(arr))
}

fn unpack(value: &[u8]) -> Result<Vec<&[u8]>, StoreError> {
    postcard::from_bytes(value).map_err(|e| StoreError::Corrupt(format!("event pack: {e}")))
}

/// A pack read back: its first seq and its events' encoded values.
type Pack = (u64, Vec<sled::IVec>);

/// The pack holding `seq`.
fn pack_with(floor: &sled::Tree, seq: u64) -> Result<Option<Pack>, StoreError> {
    let Some(item) = floor.range(pack_key(0)..=pack_key(seq)).next_back() else {
        return Ok(None);
    };
    let (key, value) = item?;
    let first = seq_of(&key)?;
    let events = unpack(&value)?;
    if seq >= first + events.len() as u64 {
        return Ok(None);
    }
    Ok(Some((
        first,
        events.into_iter().map(sled::IVec::from).collect(),
    )))
}

/// The newest seq in the log (0 when empty).
pub(super) fn last_seq(floor: &sled::Tree) -> Result<u64, StoreError> {
    if let Some(item) = floor.range(event_key(0)..[EVENT + 1].to_vec()).next_back() {
        return seq_of(&item?.0);
    }
    match floor.range(pack_key(0)..[PACK + 1].to_vec()).next_back() {
        None => Ok(0),
        Some(item) => {
            let (key, value) = item?;
            Ok(seq_of(&key)? + unpack(&value)?.len() as u64 - 1)
        }
    }
}

/// How many events the log holds.
pub(super) fn count(floor: &sled::Tree) -> Result<usize, StoreError> {
    let mut n = floor.scan_prefix([EVENT]).count();
    for item in floor.scan_prefix([PACK]) {
        n += unpack(&item?.1)?.len();
    }
    Ok(n)
}

/// Packs the oldest single events, at most `max_packs` packs of
/// `EVENTS_PER_PACK`, leaving the newest `SINGLE_EVENTS_KEPT` single.
/// Returns how many packs it made; not flushed (the next commit's flush
/// carries it; before that a crash leaves the single keys, whole).
pub(super) fn pack_oldest(floor: &sled::Tree, max_packs: usize) -> Result<usize, StoreError> {
    let limit = last_seq(floor)?.saturating_sub(SINGLE_EVENTS_KEPT);
    let mut batch = sled::Batch::default();
    let mut group: Vec<(u64, sled::IVec)> = Vec::with_capacity(EVENTS_PER_PACK);
    let mut packs = 0;
    for item in floor.range(event_key(0)..=event_key(limit)) {
        if packs >= max_packs {
            break;
        }
        let (key, value) = item?;
        let seq = seq_of(&key)?;
        if group.last().is_some_and(|(prev, _)| seq != prev + 1) {
            // Never across a gap (a healthy log has none).
            group.clear();
        }
        group.push((seq, value));
        if group.len() == EVENTS_PER_PACK {
            let frames: Vec<&[u8]> = group.iter().map(|(_, v)| v.as_ref()).collect();
            let bytes = postcard::to_stdvec(&frames)
                .map_err(|e| StoreError::Corrupt(format!("event pack: {e}")))?;
            batch.insert(pack_key(group[0].0), bytes);
            for (s, _) in &group {
                batch.remove(event_key(*s));
            }
            group.clear();
            packs += 1;
        }
    }
    if packs > 0 {
        floor.apply_batch(batch)?;
    }
    Ok(packs)
}

/// Events with `seq >= from`, in order, whether single or packed.
pub(super) fn events_in(
    floor: &sled::Tree,
    keys: Arc<Keyring>,
    from: u64,
) -> impl Iterator<Item = Result<EventRecord, StoreError>> + 'static {
    Events {
        floor: floor.clone(),
        keys,
        next: from.max(1),
        singles: None,
        packed: VecDeque::new(),
        done: false,
    }
}

struct Events {
    floor: sled::Tree,
    keys: Arc<Keyring>,
    /// The seq to yield next.
    next: u64,
    singles: Option<sled::Iter>,
    /// The rest of a pack being read, from `next` on.
    packed: VecDeque<sled::IVec>,
    done: bool,
}

impl Events {
    fn step(&mut self) -> Result<Option<sled::IVec>, StoreError> {
        if let Some(bytes) = self.packed.pop_front() {
            return Ok(Some(bytes));
        }
        let next = self.next;
        let singles = self
            .singles
            .get_or_insert_with(|| self.floor.range(event_key(next)..[EVENT + 1].to_vec()));
        let single = match singles.next() {
            Some(item) => {
                let (key, value) = item?;
                Some((seq_of(&key)?, value))
            }
            None => None,
        };
        match single {
            Some((seq, value)) if seq == next => return Ok(Some(value)),
            _ => {}
        }
        // `next` is not a single key: packed (maybe while reading), or a
        // gap, or past the end.
        self.singles = None;
        if let Some((first, events)) = pack_with(&self.floor, next)? {
            self.packed = events.into_iter().skip((next - first) as usize).collect();
            return Ok(self.packed.pop_front());
        }
        match single {
            // A gap in the log (none in a healthy one): go on after it,
            // as a plain range would.
            Some((seq, value)) => {
                self.next = seq;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }
}

impl Iterator for Events {
    type Item = Result<EventRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(bytes)) => {
                self.next += 1;
                Some(decode_event(&self.keys, &bytes))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
