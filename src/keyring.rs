//! The customers' keys (#16, forgetting): one random 256-bit key per
//! customer record, kept outside sled in `SPA_DATA_DIR/customer-keys` so
//! that a forget can really destroy one.
//!
//! sled never overwrites in place (old log segments keep old bytes until
//! they are reclaimed), so a customer's personal fields are written to
//! sled only sealed with their key (ChaCha20-Poly1305, `ring`); forgetting
//! overwrites the key's slot in this file with zeros in place and syncs
//! it, and every sealed copy in the log, the records, the archive and any
//! backup made afterwards is unreadable from then on.
//!
//! File: `SPAKEYS1`, then fixed 40-byte slots `[owner u64 BE][key 32]`; an
//! all-zero slot is a destroyed key. A new key is written and synced
//! before the batch that first uses it is committed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::domain::Id;

const MAGIC: &[u8; 8] = b"SPAKEYS1";
const SLOT: u64 = 40;
pub const FILE_NAME: &str = "customer-keys";

/// Where a sealed value's trailer starts: after the redacted postcard value.
pub const SEAL_MAGIC: &[u8; 4] = b"SEAL";

struct Inner {
    file: File,
    keys: HashMap<Id, (u64, [u8; 32])>,
    slots: u64,
}

pub struct Keyring {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Keyring {
    /// Opens (or creates) the key file in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Keyring> {
        let path = dir.join(FILE_NAME);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if bytes.is_empty() {
            file.write_all(MAGIC)?;
            file.sync_all()?;
            bytes.extend_from_slice(MAGIC);
        }
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(std::io::Error::other(format!(
                "{} is not a spa-hub key file",
                path.display()
            )));
        }
        let body = &bytes[MAGIC.len()..];
        let slots = (body.len() as u64) / SLOT;
        let mut keys = HashMap::new();
        for (i, slot) in body.chunks_exact(SLOT as usize).enumerate() {
            let mut owner = [0u8; 8];
            owner.copy_from_slice(&slot[..8]);
            let owner = u64::from_be_bytes(owner);
            if owner == 0 {
                continue;
            }
            let mut key = [0u8; 32];
            key.copy_from_slice(&slot[8..]);
            keys.insert(owner, (i as u64, key));
        }
        Ok(Keyring {
            path,
            inner: Mutex::new(Inner { file, keys, slots }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn has(&self, owner: Id) -> bool {
        lock(&self.inner).keys.contains_key(&owner)
    }

    /// Makes sure `owner` has a key, written and synced before it is used.
    pub fn ensure(&self, owner: Id) -> std::io::Result<()> {
        let mut inner = lock(&self.inner);
        if inner.keys.contains_key(&owner) {
            return Ok(());
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let slot = inner.slots;
        let mut bytes = [0u8; SLOT as usize];
        bytes[..8].copy_from_slice(&owner.to_be_bytes());
        bytes[8..].copy_from_slice(&key);
        inner
            .file
            .write_all_at(&bytes, MAGIC.len() as u64 + slot * SLOT)?;
        inner.file.sync_data()?;
        inner.slots += 1;
        inner.keys.insert(owner, (slot, key));
        Ok(())
    }

    /// Destroys these keys: their slots are overwritten with zeros in
    /// place, then the file is synced. Unknown owners are skipped.
    pub fn destroy(&self, owners: &[Id]) -> std::io::Result<usize> {
        let mut inner = lock(&self.inner);
        let mut n = 0;
        for owner in owners {
            if let Some((slot, _)) = inner.keys.get(owner).copied() {
                inner
                    .file
                    .write_all_at(&[0u8; SLOT as usize], MAGIC.len() as u64 + slot * SLOT)?;
                inner.keys.remove(owner);
                n += 1;
            }
        }
        if n > 0 {
            inner.file.sync_data()?;
        }
        Ok(n)
    }

    /// Every live key (for a backup).
    pub fn entries(&self) -> Vec<(Id, [u8; 32])> {
        let inner = lock(&self.inner);
        let mut out: Vec<(Id, [u8; 32])> = inner.keys.iter().map(|(o, (_, k))| (*o, *k)).collect();
        out.sort_by_key(|(o, _)| *o);
        out
    }

    /// Replaces every key with `entries` (a restore): the file is rewritten
    /// from the start, so destroyed slots do not come back.
    pub fn replace_all(&self, entries: &[(Id, [u8; 32])]) -> std::io::Result<()> {
        let mut inner = lock(&self.inner);
        inner.file.set_len(0)?;
        let mut bytes = MAGIC.to_vec();
        for (owner, key) in entries {
            bytes.extend_from_slice(&owner.to_be_bytes());
            bytes.extend_from_slice(key);
        }
        inner.file.write_all_at(&bytes, 0)?;
        inner.file.sync_all()?;
        inner.slots = entries.len() as u64;
        inner.keys = entries
            .iter()
            .enumerate()
            .map(|(i, (o, k))| (*o, (i as u64, *k)))
            .collect();
        Ok(())
    }

    fn aead(&self, owner: Id) -> Option<LessSafeKey> {
        let inner = lock(&self.inner);
        let (_, key) = inner.keys.get(&owner)?;
        UnboundKey::new(&CHACHA20_POLY1305, key)
            .ok()
            .map(LessSafeKey::new)
    }

    /// `SEAL` + owner + nonce + ciphertext and tag of `plain`, to append to
    /// a stored value. The key must exist (see `ensure`).
    pub fn seal(&self, owner: Id, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let key = self
            .aead(owner)
            .ok_or_else(|| std::io::Error::other(format!("no key for customer {owner}")))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(owner.to_be_bytes()),
            &mut buf,
        )
        .map_err(|_| std::io::Error::other("sealing failed"))?;
        let mut out = Vec::with_capacity(4 + 8 + NONCE_LEN + buf.len());
        out.extend_from_slice(SEAL_MAGIC);
        out.extend_from_slice(&owner.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a trailer made by `seal`; `None` when its key was destroyed
    /// (forgotten) or the trailer is damaged.
    pub fn open_sealed(&self, trailer: &[u8]) -> Option<Vec<u8>> {
        let rest = trailer.strip_prefix(SEAL_MAGIC)?;
        let owner = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let nonce: [u8; NONCE_LEN] = rest.get(8..8 + NONCE_LEN)?.try_into().ok()?;
        let mut buf = rest.get(8 + NONCE_LEN..)?.to_vec();
        let key = self.aead(owner)?;
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.to_be_bytes()),
                &mut buf,
            )
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destroyed_key_opens_nothing_and_its_slot_is_zeros() {
        let dir = tempfile::tempdir().expect("dir");
        let ring = Keyring::open(dir.path()).expect("open");
        ring.ensure(7).expect("key");
        ring.ensure(9).expect("key");
        let sealed = ring.seal(7, b"Maria 600111222").expect("seal");
        assert!(!sealed.windows(5).any(|w| w == b"Maria"));
        assert_eq!(
            ring.open_sealed(&sealed).as_deref(),
            Some(&b"Maria 600111222"[..])
        );
        let key7 = ring.entries()[0].1;
        ring.destroy(&[7]).expect("destroy");
        assert_eq!(ring.open_sealed(&sealed), None);
        let bytes = std::fs::read(dir.path().join(FILE_NAME)).expect("read");
        assert!(!bytes.windows(32).any(|w| w == key7));
        // Reopened: 9 is still there, 7 is not.
        drop(ring);
        let ring = Keyring::open(dir.path()).expect("reopen");
        assert!(ring.has(9) && !ring.has(7));
    }
}
