//! The store's archive: history that left memory (see
//! `crate::domain::archive`), kept under prefix `a` of tree `floor` and
//! read back by the writer (a refund of an old visit or sale, a customer's
//! history, a past date's bookings) and by the receipt page.
//!
//! Keys: `a` + the record's `RecordKey` bytes, except a booking (`a`, 10,
//! date, id: a past date is one range). Receipts also have index entries
//! with empty values under prefix `x` — `x`, 1, visit id, receipt id (a
//! visit's receipts, its sale and its refunds) and `x`, 2, sale receipt
//! id, refund receipt id (a sale's refunds) — so that finding them is one
//! short range, not a scan of every receipt ever archived. Both are written
//! in the same atomic batch as the event that takes the records out of
//! memory; an archived record that comes back into memory keeps its archive
//! copy until it is archived again (and overwritten).

use std::sync::Arc;

use super::{decode_record, StoreError};
use crate::domain::book::Booking;
use crate::domain::money::receipt::Receipt;
use crate::domain::state::{Record, RecordKey, Visit};
use crate::domain::{DomainError, ErrorCode, Id};
use crate::keyring::Keyring;

pub(super) const ARCHIVE: u8 = b'a';
/// Index entries of archived receipts (empty values).
const INDEX: u8 = b'x';
const BY_VISIT: u8 = 1;
const BY_SALE: u8 = 2;
/// `RecordKey::Booking`'s kind byte: archived bookings are keyed by date.
const ARCHIVED_BOOKING: u8 = 10;

/// The keys `record` is archived under: where it lives, then its index
/// entries (whose values are empty).
pub(super) fn entries(record: &Record) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut k = vec![ARCHIVE];
    let mut index = Vec::new();
    match record {
        Record::Booking(b) => {
            k.push(ARCHIVED_BOOKING);
            k.extend_from_slice(&b.date.to_be_bytes());
            k.extend_from_slice(&b.id.to_be_bytes());
        }
        Record::Receipt(r) => {
            k.extend_from_slice(&record.key().to_bytes());
            if let Some(v) = r.visit_id {
                index.push(index_key(BY_VISIT, v, r.id));
            }
            if let Some(sale) = r.refund_of {
                index.push(index_key(BY_SALE, sale, r.id));
            }
        }
        other => k.extend_from_slice(&other.key().to_bytes()),
    }
    (k, index)
}

fn index_key(kind: u8, owner: Id, id: Id) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.push(INDEX);
    k.push(kind);
    k.extend_from_slice(&owner.to_be_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn id_at_end(key: &[u8]) -> Option<Id> {
    key.get(key.len().saturating_sub(8)..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// Reads the archive; any thread may hold one (sled trees are shared).
#[derive(Clone)]
pub struct ArchiveReader {
    pub(super) floor: sled::Tree,
    pub(super) keys: Arc<Keyring>,
}

impl ArchiveReader {
    fn record(&self, key: &RecordKey, what: &str) -> Result<Option<Record>, StoreError> {
        let mut k = vec![ARCHIVE];
        k.extend_from_slice(&key.to_bytes());
        match self.floor.get(k)? {
            None => Ok(None),
            Some(v) => decode_record(&self.keys, &v, what).map(Some),
        }
    }

    /// An archived visit, if the archive has it.
    pub fn visit(&self, id: Id) -> Result<Option<Visit>, StoreError> {
        match self.record(&RecordKey::Visit(id), "archived visit")? {
            None => Ok(None),
            Some(Record::Visit(v)) => Ok(Some(v)),
            Some(_) => Err(StoreError::Corrupt(format!("archived visit {id}"))),
        }
    }

    /// An archived receipt, if the archive has it.
    pub fn receipt(&self, id: Id) -> Result<Option<Receipt>, StoreError> {
        match self.record(&RecordKey::Receipt(id), "archived receipt")? {
            None => Ok(None),
            Some(Record::Receipt(r)) => Ok(Some(r)),
            Some(_) => Err(StoreError::Corrupt(format!("archived receipt {id}"))),
        }
    }

    fn receipts_indexed(&self, kind: u8, owner: Id) -> Result<Vec<Receipt>, StoreError> {
        let mut prefix = vec![INDEX, kind];
        prefix.extend_from_slice(&owner.to_be_bytes());
        let mut out = Vec::new();
        for item in self.floor.scan_prefix(prefix) {
            let (key, _) = item?;
            if let Some(r) = id_at_end(&key).map(|id| self.receipt(id)).transpose()? {
                out.extend(r);
            }
        }
        Ok(out)
    }

    /// A visit's archived receipts (its sale and its refunds), oldest first.
    pub fn receipts_of_visit(&self, visit_id: Id) -> Result<Vec<Receipt>, StoreError> {
        self.receipts_indexed(BY_VISIT, visit_id)
    }

    /// A sale receipt's archived refund receipts, oldest first.
    pub fn refunds_of(&self, sale_id: Id) -> Result<Vec<Receipt>, StoreError> {
        self.receipts_indexed(BY_SALE, sale_id)
    }

    /// The archived bookings of a local date (`yyyymmdd`), in key order.
    pub fn bookings_on(&self, date: u32) -> Result<Vec<Booking>, StoreError> {
        let mut prefix = vec![ARCHIVE, ARCHIVED_BOOKING];
        prefix.extend_from_slice(&date.to_be_bytes());
        let mut out = Vec::new();
        for item in self.floor.scan_prefix(prefix) {
            let (key, value) = item?;
            match decode_record(&self.keys, &value, "archived booking")? {
                Record::Booking(b) => out.push(b),
                _ => return Err(StoreError::Corrupt(format!("archived booking {key:?}"))),
            }
        }
        Ok(out)
    }

    /// Archived bookings with these ids (a customer's history): one scan
    /// of the archived bookings.
    pub fn bookings_with(&self, ids: &[Id]) -> Result<Vec<Booking>, StoreError> {
        let mut out = Vec::new();
        for item in self.floor.scan_prefix([ARCHIVE, ARCHIVED_BOOKING]) {
            let (key, value) = item?;
            if !id_at_end(&key).is_some_and(|id| ids.contains(&id)) {
                continue;
            }
            if let Record::Booking(b) = decode_record(&self.keys, &value, "archived booking")? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// How many records the archive holds.
    pub fn count(&self) -> usize {
        self.floor.scan_prefix([ARCHIVE]).count()
    }
}

/// The writer's view of the archive for `domain::archive::restore_for`: a
/// failed read refuses the command (`internal`) instead of deciding it as
/// if the history did not exist.
impl crate::domain::archive::Lookup for ArchiveReader {
    fn visit(&self, id: Id) -> Result<Option<Visit>, DomainError> {
        ArchiveReader::visit(self, id).map_err(unreadable)
    }
    fn receipt(&self, id: Id) -> Result<Option<Receipt>, DomainError> {
        ArchiveReader::receipt(self, id).map_err(unreadable)
    }
    fn receipts_of_visit(&self, visit_id: Id) -> Result<Vec<Receipt>, DomainError> {
        ArchiveReader::receipts_of_visit(self, visit_id).map_err(unreadable)
    }
    fn refunds_of(&self, sale_id: Id) -> Result<Vec<Receipt>, DomainError> {
        ArchiveReader::refunds_of(self, sale_id).map_err(unreadable)
    }
}

fn unreadable(e: StoreError) -> DomainError {
    DomainError::new(
        ErrorCode::Internal,
        format!("the archive could not be read ({e}); nothing was changed"),
    )
}
