//! sled + postcard: the schema version, ordered migrations, the append-only
//! event log (keyed by gap-free `seq`), the current-state records, and
//! backup/restore.
//!
//! Layout in `SPA_DATA_DIR`:
//! - `db/`: the sled database with tree `floor` holding the event log under
//!   prefix `e` (`e` + seq big-endian → postcard `EventRecord`) and the
//!   records under prefix `r` (`r` + `RecordKey` bytes → postcard `Record`),
//!   so that one `apply_batch` writes both atomically; archived history
//!   under prefix `a` and its receipts' index under `x` (see `archive`),
//!   written in the same batch as the event that takes it out of the
//!   records; report checkpoints
//!   under prefix `c` (a cache the reports keep, see `LogReader`); tree `meta`
//!   (`schema_version` → u32 big-endian); and tree `cursors` (the
//!   positions of those who follow the log, e.g. `nats_confirmed`);
//! - `lock`: held with an exclusive `flock` while a process uses the
//!   database, so a second process fails at once instead of waiting;
//! - `customer-keys` (`crate::keyring`) and `giftcard-secret`
//!   (`crate::giftsecret`), opened with the database.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fs2::FileExt;

use crate::domain::report::{Checkpoint, DayReport};
use crate::domain::state::{Record, RecordKey};
use crate::domain::{EventRecord, State};

mod archive;
mod event_log;
pub use archive::ArchiveReader;
use event_log::{event_key, events_in};
pub use event_log::{EVENTS_PER_PACK, SINGLE_EVENTS_KEPT};

/// The schema this binary writes. Bump it with a migration below.
pub const SCHEMA_VERSION: u32 = 6;

const SCHEMA_KEY: &[u8] = b"schema_version";
const BACKUP_MAGIC: &[u8] = b"SPAHUB-BACKUP-1\n";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {dir} is in use by another spa-hub process (lock held on {dir}/lock)")]
    Locked { dir: String },
    #[error("data directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the database in {dir} has schema version {found}, newer than this spa-hub ({supported}); install a newer spa-hub or restore a backup; the database was not changed")]
    TooNew {
        dir: String,
        found: u32,
        supported: u32,
    },
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("backup file: {0}")]
    Backup(String),
}

/// One migration: from version `n` (its index + 1... see `MIGRATIONS`) to n+1.
type Migration = fn(&sled::Db) -> Result<(), StoreError>;

/// Migrations in order: `MIGRATIONS[i]` takes a database from version `i` to
/// `i + 1`. Version 0 is a database from before the version key existed.
const MIGRATIONS: &[Migration] = &[
    migrate_0_to_1,
    migrate_1_to_2,
    migrate_2_to_3,
    migrate_3_to_4,
    migrate_4_to_5,
    migrate_5_to_6,
];

fn migrate_0_to_1(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 1 is the first layout; nothing to convert.
    Ok(())
}

fn migrate_1_to_2(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 2 adds the book: new event, record and actor variants, all
    // appended after version 1's (postcard numbers variants by position),
    // and new record key kinds (8 shift, 9 block, 10 booking). Every
    // version-1 record and event decodes unchanged, so nothing is
    // rewritten; the version goes up so that a version-1 binary refuses a
    // database that may hold bookings instead of misreading it.
    Ok(())
}

fn migrate_2_to_3(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 3 moves finished history out of memory and lets an admin set
    // the floor's clock: three appended events (`Archived`,
    // `VisitRestored`, `ClockSet`) and the archive prefix `a`. Nothing is
    // rewritten: the writer's first archive pass, right after start-up,
    // moves what is old into the archive through the normal commit.
    Ok(())
}

fn migrate_3_to_4(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 4 is the counter (#17): appended events (`ServiceTaxSet`,
    // `ProductCreated`, `ProductUpdated`, `ProductStockChanged`, `Sold`,
    // `Refunded`, `CorrectionApproved`), an appended payment method
    // (`giftcard`), appended records and record key kinds (20 product,
    // 21 gift card, 22 receipt, 23 service tax, 24 receipt counter). No
    // existing record changes shape: a service without a tax record is
    // taxed at 0 and a visit paid before has no receipt, so every past
    // figure reads as it did. Nothing is rewritten; the version goes up so
    // that an older binary refuses a database that may hold receipts.
    // Version 4 also adds returning customers (#16): appended event variants
    // (`CustomerCreated` … `VisitUpdated`), record variants and key kinds
    // (11 customer, 12 visit edits), and sealed values: a value may carry,
    // after its postcard bytes, a `SEAL` trailer with the personal fields
    // encrypted by the customer's key (see `crate::keyring`). Version-3
    // values have no trailer and decode unchanged; nothing is rewritten.
    Ok(())
}

fn migrate_4_to_5(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 5 archives receipts (#17) like visits: two appended events
    // (`ReceiptsArchived`, `ReceiptsRestored`) and the archive's receipt
    // index under prefix `x`. Nothing is rewritten: the writer's first
    // archive pass after start-up moves the old receipts out of memory
    // through the normal commit. The version goes up so that an older
    // binary refuses a log it could not read.
    Ok(())
}

fn migrate_5_to_6(_db: &sled::Db) -> Result<(), StoreError> {
    // Version 6 packs old events (`event_log`): `E` + first seq holds 64
    // consecutive events' values as they were. Nothing is rewritten here:
    // the writer packs the oldest events a little at a time after start-up.
    // The version goes up so that an older binary, which reads only single
    // keys, refuses a log with packs instead of seeing a gap.
    Ok(())
}

// ---- sealed values ----------------------------------------------------------
//
// A value is postcard bytes, optionally followed by a `SEAL` trailer
// (postcard ignores what follows a complete value). With a trailer, the
// postcard part is the redacted copy (personal fields in their forgotten
// form) and the trailer the personal fields sealed with their customer's
// key; a destroyed key leaves the redacted copy, which is what a forget
// means. The domain says what is personal and whose it is
// (`domain::customers`); this is the only place that encrypts.

use crate::domain::customers::{self, Personal, Seal};
use crate::domain::Event;
use crate::keyring::Keyring;

fn corrupt(what: &str) -> impl Fn(postcard::Error) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn seal_io(e: std::io::Error) -> StoreError {
    StoreError::Io {
        dir: "customer keys".into(),
        source: e,
    }
}

/// Encodes `value` with `personal` taken out of it per `seal`.
fn encode_with<T: serde::Serialize + Clone>(
    keys: &Keyring,
    value: &T,
    seal: Seal,
    take: impl Fn(&mut T) -> Option<Personal>,
) -> Result<Vec<u8>, StoreError> {
    if seal == Seal::Plain {
        return postcard::to_stdvec(value).map_err(corrupt("encoding"));
    }
    let mut redacted = value.clone();
    let personal = take(&mut redacted);
    let mut bytes = postcard::to_stdvec(&redacted).map_err(corrupt("encoding"))?;
    if let (Seal::Key(owner), Some(p)) = (seal, personal) {
        keys.ensure(owner).map_err(seal_io)?;
        let plain = postcard::to_stdvec(&p).map_err(corrupt("encoding"))?;
        bytes.extend(keys.seal(owner, &plain).map_err(seal_io)?);
    }
    Ok(bytes)
}

fn decode_with<T: serde::de::DeserializeOwned>(
    keys: &Keyring,
    bytes: &[u8],
    what: &str,
    put: impl Fn(&mut T, Personal),
) -> Result<T, StoreError> {
    let (mut value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(corrupt(what))?;
    if !rest.is_empty() {
        if let Some(plain) = keys.open_sealed(rest) {
            let p: Personal = postcard::from_bytes(&plain).map_err(corrupt(what))?;
            put(&mut value, p);
        }
    }
    Ok(value)
}

fn encode_event(keys: &Keyring, e: &EventRecord, seal: Seal) -> Result<Vec<u8>, StoreError> {
    encode_with(keys, e, seal, |r: &mut EventRecord| {
        customers::take_personal_event(&mut r.event)
    })
}

pub(crate) fn decode_event(keys: &Keyring, bytes: &[u8]) -> Result<EventRecord, StoreError> {
    decode_with(keys, bytes, "event", |r: &mut EventRecord, p| {
        customers::put_personal_event(&mut r.event, p)
    })
}

fn encode_record(keys: &Keyring, r: &Record, seal: Seal) -> Result<Vec<u8>, StoreError> {
    encode_with(keys, r, seal, customers::take_personal_record)
}

fn decode_record(keys: &Keyring, bytes: &[u8], what: &str) -> Result<Record, StoreError> {
    decode_with(keys, bytes, what, customers::put_personal_record)
}

/// A read-only view of the event log that any thread may use (sled trees
/// are shared and thread-safe): reports read the log without the writer.
#[derive(Clone)]
pub struct LogReader {
    /// Swapped by `Store::reopen`, so a reader never pins a dead database.
    floor: Arc<RwLock<sled::Tree>>,
    keys: Arc<Keyring>,
}

impl LogReader {
    /// The archive, as the database is now.
    pub fn archive(&self) -> ArchiveReader {
        let floor = match self.floor.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        ArchiveReader {
            floor,
            keys: self.keys.clone(),
        }
    }

    /// Events with `seq >= from`, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<EventRecord, StoreError>> + 'static {
        let tree = match self.floor.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        events_in(&tree, self.keys.clone(), from)
    }

    /// The day report for `day`, replayed from the nearest checkpoint (or
    /// seq 1), keeping new checkpoints on the way: at month starts and at
    /// the start of this day and the next. `tz` names the zone `day_of`
    /// uses (a checkpoint made in another zone is not used).
    pub fn day_report(
        &self,
        day: u32,
        tz: &str,
        day_of: impl Fn(i64) -> u32,
    ) -> Result<DayReport, StoreError> {
        let mut failed = None;
        let start = self.checkpoint_at_or_before(day, tz);
        let from = start.as_ref().map_or(1, |c| c.seq + 1);
        let have = start.as_ref().map_or(0, |c| c.day);
        let events = self.events_from(from).map_while(|e| match e {
            Ok(e) => Some(e),
            Err(err) => {
                failed = Some(err);
                None
            }
        });
        let report = crate::domain::report::day_report_from(
            start,
            events,
            day,
            day_of,
            crate::domain::report::checkpoint_wanted(have, day),
            |c| self.keep_checkpoint(tz, &c),
        );
        match failed {
            Some(err) => Err(err),
            None => Ok(report),
        }
    }

    fn tree(&self) -> sled::Tree {
        match self.floor.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The latest report checkpoint at or before `day` made in zone `tz`
    /// (checkpoints are a cache: an unreadable one is skipped).
    pub fn checkpoint_at_or_before(&self, day: u32, tz: &str) -> Option<Checkpoint> {
        CheckpointCache {
            tree: &self.tree(),
            prefix: &[CHECKPOINT],
        }
        .at_or_before(day, tz)
    }

    /// Keeps a report checkpoint (it reaches the disk with the writer's next
    /// flush), then prunes (see `CheckpointCache::keep`).
    pub fn keep_checkpoint(&self, tz: &str, checkpoint: &Checkpoint) {
        // Reports never read a name: the checkpoint is kept without any.
        CheckpointCache {
            tree: &self.tree(),
            prefix: &[CHECKPOINT],
        }
        .keep(tz, &checkpoint.without_personal());
    }
}

/// Report checkpoints kept in `tree` under `prefix`: `prefix` + day
/// big-endian → postcard (zone, checkpoint). The site keeps its own under
/// `c` in its floor tree; head office keeps each site's in a tree of their
/// own (no prefix). A cache: an unreadable entry is skipped, a failure only
/// costs a slower report later.
pub(crate) struct CheckpointCache<'a> {
    pub tree: &'a sled::Tree,
    pub prefix: &'a [u8],
}

impl CheckpointCache<'_> {
    fn key(&self, day: u32) -> Vec<u8> {
        let mut k = self.prefix.to_vec();
        k.extend_from_slice(&day.to_be_bytes());
        k
    }

    /// The latest checkpoint at or before `day` made in zone `tz`.
    pub fn at_or_before(&self, day: u32, tz: &str) -> Option<Checkpoint> {
        self.tree
            .range(self.prefix.to_vec()..=self.key(day))
            .rev()
            .filter_map(Result::ok)
            .filter_map(|(_, v)| postcard::from_bytes::<(String, Checkpoint)>(&v).ok())
            .find(|(zone, _)| zone == tz)
            .map(|(_, c)| c)
    }

    /// Keeps `checkpoint`, then prunes: month starts stay about 13 months,
    /// other days only the newest two (`report::stale_checkpoints`).
    pub fn keep(&self, tz: &str, checkpoint: &Checkpoint) {
        let Ok(bytes) = postcard::to_stdvec(&(tz, checkpoint)) else {
            return;
        };
        if let Err(e) = self.tree.insert(self.key(checkpoint.day), bytes) {
            log::warn!("keeping a report checkpoint: {e}");
            return;
        }
        let days: Vec<u32> = self
            .tree
            .scan_prefix(self.prefix)
            .keys()
            .filter_map(Result::ok)
            .filter_map(|k| <[u8; 4]>::try_from(k.get(self.prefix.len()..)?).ok())
            .map(u32::from_be_bytes)
            .collect();
        for d in crate::domain::report::stale_checkpoints(&days) {
            let _ = self.tree.remove(self.key(d));
        }
    }
}

/// Small counters kept beside the log by those who follow it off the
/// writer's path (the NATS publisher's last confirmed `seq`). Written
/// without a flush of their own: the writer's next flush carries them, and
/// a follower must cope with finding an older value after a crash.
#[derive(Clone)]
pub struct Cursors {
    tree: Arc<RwLock<sled::Tree>>,
}

impl Cursors {
    fn tree(&self) -> sled::Tree {
        match self.tree.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match self.tree().get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| StoreError::Corrupt(format!("cursor {name} is not 8 bytes"))),
        }
    }

    pub fn set(&self, name: &str, value: u64) -> Result<(), StoreError> {
        self.tree().insert(name.as_bytes(), &value.to_be_bytes())?;
        Ok(())
    }

    /// Makes the cursors durable now (a graceful stop).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree().flush()?;
        Ok(())
    }
}

/// Facts about a database for `spa-hub check`.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    pub schema_version: u32,
    pub event_count: usize,
    pub last_seq: u64,
    pub size_on_disk: u64,
}

pub struct Store {
    db: sled::Db,
    floor: sled::Tree,
    meta: sled::Tree,
    dir: PathBuf,
    _lock: File,
    /// sled's data file, synced after every flush (see `commit`).
    data_file: File,
    cache_bytes: u64,
    /// The log readers' handle on `floor` (replaced on reopen).
    shared_floor: Arc<RwLock<sled::Tree>>,
    /// The followers' cursors (tree `cursors`; replaced on reopen).
    shared_cursors: Arc<RwLock<sled::Tree>>,
    /// False while a reopen is under way: nothing may be written then.
    usable: bool,
    /// The customers' keys (outside sled: see `crate::keyring`).
    keys: Arc<Keyring>,
    /// The box's gift card secret (`crate::giftsecret`; not in a backup).
    giftcard_secret: [u8; crate::giftsecret::LEN],
    /// Test seam: while set, every commit fails as a disk error would.
    fail_commits: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

/// Opens sled in `dir/db`. We hold the directory lock, so a lock error from
/// sled itself can only be an instance of this same process still closing
/// its threads: give it a moment.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(dir.join("db"))
        .cache_capacity(cache_bytes)
        // The writer flushes after every batch; no background flusher needed.
        .flush_every_ms(None);
    let mut attempts = 0;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if attempts < 100 && e.to_string().contains("lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates (or truncates) `file` readable by its owner only, whatever the
/// umask and whatever mode an older file had: a backup holds customer data
/// and PIN hashes.
fn create_private(file: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let f = options.open(file)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    {
        options.open(file)
    }
}

/// Makes `dir` private whatever the umask: the directory and those under
/// it 0700, its files 0600 (they hold customer data and PIN hashes), and
/// this process's umask 077 so whatever sled creates later is private too.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(path: &Path, depth: u32) -> std::io::Result<()> {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.file_type().is_symlink() {
                return Ok(());
            }
            let mode = if meta.is_dir() { 0o700 } else { 0o600 };
            if meta.permissions().mode() & 0o777 != mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            }
            if meta.is_dir() && depth < 4 {
                for entry in std::fs::read_dir(path)? {
                    walk(&entry?.path(), depth + 1)?;
                }
            }
            Ok(())
        }
        walk(dir, 0)?;
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    private_dir(dir).map_err(io_err(dir))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(io_err(dir))?;
    file.try_lock_exclusive().map_err(|_| StoreError::Locked {
        dir: dir.display().to_string(),
    })?;
    Ok(file)
}

fn read_version(meta: &sled::Tree) -> Result<Option<u32>, StoreError> {
    match meta.get(SCHEMA_KEY)? {
        None => Ok(None),
        Some(bytes) => {
            let arr: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("schema version is not 4 bytes".into()))?;
            Ok(Some(u32::from_be_bytes(arr)))
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `dir` with a cache of `cache_bytes`,
    /// refusing a newer schema and running older ones' migrations in order.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let lock = lock_dir(dir)?;
        let db = open_sled(dir, cache_bytes)?;
        let floor = db.open_tree("floor")?;
        let meta = db.open_tree("meta")?;
        let shared_floor = Arc::new(RwLock::new(floor.clone()));
        let shared_cursors = Arc::new(RwLock::new(db.open_tree("cursors")?));
        let keys = Arc::new(Keyring::open(dir).map_err(io_err(dir))?);
        let giftcard_secret = crate::giftsecret::open(dir).map_err(io_err(dir))?;
        let store = Store {
            keys,
            giftcard_secret,
            db,
            floor,
            meta,
            dir: dir.to_path_buf(),
            _lock: lock,
            data_file: File::open(dir.join("db").join("db")).map_err(io_err(dir))?,
            cache_bytes,
            shared_floor,
            shared_cursors,
            usable: true,
            fail_commits: Default::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = match read_version(&self.meta)? {
            Some(v) => v,
            // A brand-new database starts at the current version.
            None if self.floor.is_empty() => {
                self.set_version(SCHEMA_VERSION)?;
                return Ok(());
            }
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                dir: self.dir.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for version in found..SCHEMA_VERSION {
            let step = MIGRATIONS.get(version as usize).ok_or_else(|| {
                StoreError::Corrupt(format!("no migration from version {version}"))
            })?;
            step(&self.db)?;
            self.set_version(version + 1)?;
            log::info!("storage migrated from schema {version} to {}", version + 1);
        }
        Ok(())
    }

    fn set_version(&self, version: u32) -> Result<(), StoreError> {
        self.meta.insert(SCHEMA_KEY, &version.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// The key the core derives gift card codes with (`Rules::giftcard_key`).
    pub fn giftcard_key(&self) -> crate::domain::money::giftcode::CodeKey {
        crate::domain::money::giftcode::CodeKey::new(&self.giftcard_secret)
    }

    /// Test hook: pretend a newer binary wrote this database.
    #[doc(hidden)]
    pub fn force_schema_version(&self, version: u32) -> Result<(), StoreError> {
        self.set_version(version)
    }

    /// Test seam: a switch that makes commits fail while it is on.
    #[doc(hidden)]
    pub fn failure_switch(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.fail_commits.clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rebuilds the in-memory state from the records (not from the log).
    pub fn load_state(&self) -> Result<State, StoreError> {
        let mut state = State::default();
        for item in self.floor.scan_prefix([RECORD]) {
            let (key, value) = item?;
            let record = decode_record(&self.keys, &value, &format!("record {key:?}"))?;
            let key = record_key(&record);
            state.put_record(&key, Some(record));
        }
        // A forget whose keys were not destroyed yet (a crash right after
        // its commit): destroy them now, before anything reads the log.
        let forgotten: Vec<crate::domain::Id> = state
            .customers
            .values()
            .filter(|c| c.forgotten)
            .flat_map(|c| c.key_ids())
            .filter(|id| self.keys.has(*id))
            .collect();
        if !forgotten.is_empty() {
            self.keys.destroy(&forgotten).map_err(io_err(&self.dir))?;
        }
        let last = self.last_seq()?;
        if last != state.counters.seq {
            return Err(StoreError::Corrupt(format!(
                "event log ends at seq {last} but the records are at seq {}",
                state.counters.seq
            )));
        }
        Ok(state)
    }

    /// Writes a batch's events and the records it changed in one atomic batch,
    /// then flushes to disk. Nothing is written if anything fails.
    pub fn commit(
        &self,
        events: &[EventRecord],
        records: &[(RecordKey, Option<Record>)],
    ) -> Result<(), StoreError> {
        self.commit_with_archive(events, records, &[])
    }

    /// `commit`, also putting `archived` records into the archive (in the
    /// same atomic batch as the event that took them out of the records).
    pub fn commit_with_archive(
        &self,
        events: &[EventRecord],
        records: &[(RecordKey, Option<Record>)],
        archived: &[Record],
    ) -> Result<(), StoreError> {
        self.commit_sealed(events, records, archived, None)
    }

    /// `commit_with_archive`, with every customer's personal fields sealed
    /// with their key (or dropped, once forgotten) as `state` (the state
    /// after the batch) says. New keys are written and synced first.
    pub fn commit_sealed(
        &self,
        events: &[EventRecord],
        records: &[(RecordKey, Option<Record>)],
        archived: &[Record],
        state: Option<&State>,
    ) -> Result<(), StoreError> {
        let event_seal = |e: &Event| state.map_or(Seal::Plain, |s| customers::seal_of_event(s, e));
        let record_seal =
            |r: &Record| state.map_or(Seal::Plain, |s| customers::seal_of_record(s, r));
        if !self.usable || self.fail_commits.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Io {
                dir: self.dir.display().to_string(),
                source: std::io::Error::other("injected failure (test)"),
            });
        }
        let mut batch = sled::Batch::default();
        for e in events {
            let bytes = encode_event(&self.keys, e, event_seal(&e.event))?;
            batch.insert(event_key(e.seq).as_slice(), bytes);
        }
        for (key, record) in records {
            let mut k = Vec::with_capacity(16);
            k.push(RECORD);
            k.extend_from_slice(&key.to_bytes());
            match record {
                Some(r) => {
                    let v = encode_record(&self.keys, r, record_seal(r))?;
                    batch.insert(k, v);
                }
                None => batch.remove(k),
            }
        }
        for record in archived {
            let v = encode_record(&self.keys, record, record_seal(record))?;
            let (key, index) = archive::entries(record);
            batch.insert(key, v);
            for k in index {
                batch.insert(k, &[][..]);
            }
        }
        // One tree, one atomic batch: events and records land together or not at all.
        self.floor.apply_batch(batch)?;
        self.db.flush()?;
        // sled's flush uses sync_file_range on Linux, which leaves the file's
        // size and the drive's cache unsynced: after a power cut the acked
        // batch could be gone. fdatasync makes it durable before any ack.
        self.data_file.sync_data().map_err(io_err(&self.dir))?;
        Ok(())
    }

    /// The archive (history out of memory).
    pub fn archive(&self) -> ArchiveReader {
        ArchiveReader {
            floor: self.floor.clone(),
            keys: self.keys.clone(),
        }
    }

    /// The customers' keys.
    pub fn keys(&self) -> &Arc<Keyring> {
        &self.keys
    }

    pub fn last_seq(&self) -> Result<u64, StoreError> {
        event_log::last_seq(&self.floor)
    }

    /// Packs the oldest single events (see `event_log`), at most `max_packs`
    /// packs; returns whether more are due. Nothing while storage failed.
    pub fn pack_events(&self, max_packs: usize) -> Result<bool, StoreError> {
        if !self.usable || self.fail_commits.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        Ok(event_log::pack_oldest(&self.floor, max_packs)? >= max_packs)
    }

    /// Events with `seq >= from`, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<EventRecord, StoreError>> + 'static {
        events_in(&self.floor, self.keys.clone(), from)
    }

    /// A handle on the log for readers on other threads (reports).
    pub fn log_reader(&self) -> LogReader {
        LogReader {
            keys: self.keys.clone(),
            floor: self.shared_floor.clone(),
        }
    }

    /// A handle on the followers' cursors for other threads.
    pub fn cursors(&self) -> Cursors {
        Cursors {
            tree: self.shared_cursors.clone(),
        }
    }

    /// Closes and reopens the database. After an I/O error sled refuses
    /// every later operation until it is reopened; the writer calls this
    /// while storage is failing so the hub recovers when the disk does.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.usable = false;
        // sled allows one open instance per directory: park every handle on
        // a throw-away in-memory database so the old one is really closed.
        let parked = sled::Config::new().temporary(true).open()?;
        let parked_floor = parked.open_tree("floor")?;
        let parked_meta = parked.open_tree("meta")?;
        if let Ok(mut shared) = self.shared_floor.write() {
            *shared = parked_floor.clone();
        }
        if let Ok(mut shared) = self.shared_cursors.write() {
            *shared = parked.open_tree("cursors")?;
        }
        self.floor = parked_floor;
        self.meta = parked_meta;
        self.db = parked;
        let db = open_sled(&self.dir, self.cache_bytes)?;
        self.floor = db.open_tree("floor")?;
        self.meta = db.open_tree("meta")?;
        self.db = db;
        self.data_file = File::open(self.dir.join("db").join("db")).map_err(io_err(&self.dir))?;
        if let Ok(mut shared) = self.shared_floor.write() {
            *shared = self.floor.clone();
        }
        if let Ok(mut shared) = self.shared_cursors.write() {
            *shared = self.db.open_tree("cursors")?;
        }
        self.usable = true;
        Ok(())
    }

    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        Ok(StoreInfo {
            schema_version: read_version(&self.meta)?.unwrap_or(0),
            event_count: event_log::count(&self.floor)?,
            last_seq: self.last_seq()?,
            size_on_disk: self.db.size_on_disk()?,
        })
    }

    /// Writes every tree to `file` (the daemon must be stopped: this process
    /// holds the lock). Format: magic, then `[tree u8][len u32][key][len u32][value]`
    /// entries, then tree 0xFF and the SHA-256 of all that came before.
    pub fn backup(&self, file: &Path) -> Result<u64, StoreError> {
        use sha2::{Digest, Sha256};
        let out = create_private(file)
            .map_err(|e| StoreError::Backup(format!("{}: {e}", file.display())))?;
        let mut out = BufWriter::new(out);
        let mut hash = Sha256::new();
        let mut put = |bytes: &[u8], out: &mut BufWriter<File>| -> Result<(), StoreError> {
            hash.update(bytes);
            out.write_all(bytes)
                .map_err(|e| StoreError::Backup(e.to_string()))
        };
        put(BACKUP_MAGIC, &mut out)?;
        let mut count = 0u64;
        for (tag, tree) in [(1u8, &self.meta), (2, &self.floor)] {
            for item in tree.iter() {
                let (k, v) = item?;
                put(&[tag], &mut out)?;
                put(&(k.len() as u32).to_be_bytes(), &mut out)?;
                put(&k, &mut out)?;
                put(&(v.len() as u32).to_be_bytes(), &mut out)?;
                put(&v, &mut out)?;
                count += 1;
            }
        }
        // The customers' keys (destroyed ones are gone from the file).
        for (owner, key) in self.keys.entries() {
            put(&[3], &mut out)?;
            put(&8u32.to_be_bytes(), &mut out)?;
            put(&owner.to_be_bytes(), &mut out)?;
            put(&32u32.to_be_bytes(), &mut out)?;
            put(&key, &mut out)?;
            count += 1;
        }
        put(&[0xFF], &mut out)?;
        let digest = hash.finalize();
        out.write_all(&digest)
            .map_err(|e| StoreError::Backup(e.to_string()))?;
        out.flush().map_err(|e| StoreError::Backup(e.to_string()))?;
        out.get_ref()
            .sync_all()
            .map_err(|e| StoreError::Backup(e.to_string()))?;
        Ok(count)
    }

    /// Replaces this (empty or old) database's contents with a backup's,
    /// after checking the whole file. Returns the number of entries.
    pub fn restore(&self, file: &Path) -> Result<u64, StoreError> {
        let entries = read_backup(file)?;
        let schema = entries
            .iter()
            .find(|(tag, k, _)| *tag == 1 && k.as_slice() == SCHEMA_KEY)
            .and_then(|(_, _, v)| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| StoreError::Backup("no schema version in the backup".into()))?;
        if schema > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                dir: file.display().to_string(),
                found: schema,
                supported: SCHEMA_VERSION,
            });
        }
        for tree in [&self.meta, &self.floor] {
            tree.clear()?;
        }
        let mut keys = Vec::new();
        for (tag, k, v) in &entries {
            if *tag == 3 {
                let owner = <[u8; 8]>::try_from(k.as_slice())
                    .map_err(|_| StoreError::Backup("a key entry's owner is not 8 bytes".into()))?;
                let key = <[u8; 32]>::try_from(v.as_slice())
                    .map_err(|_| StoreError::Backup("a key entry is not 32 bytes".into()))?;
                keys.push((u64::from_be_bytes(owner), key));
                continue;
            }
            let tree = if *tag == 1 { &self.meta } else { &self.floor };
            tree.insert(k.as_slice(), v.as_slice())?;
        }
        self.keys.replace_all(&keys).map_err(io_err(&self.dir))?;
        self.db.flush()?;
        self.migrate()?;
        // Refuse to leave a database whose records and log disagree.
        self.load_state()?;
        Ok(entries.len() as u64)
    }
}

/// One backup entry: section tag, key, value.
type BackupEntry = (u8, Vec<u8>, Vec<u8>);

fn read_backup(file: &Path) -> Result<Vec<BackupEntry>, StoreError> {
    use sha2::{Digest, Sha256};
    let bad = |what: &str| StoreError::Backup(format!("{}: {what}", file.display()));
    let f = File::open(file).map_err(|e| StoreError::Backup(format!("{}: {e}", file.display())))?;
    let mut input = BufReader::new(f);
    let mut hash = Sha256::new();
    let read =
        |n: usize, input: &mut BufReader<File>, hash: &mut Sha256| -> Result<Vec<u8>, StoreError> {
            let mut buf = vec![0u8; n];
            input.read_exact(&mut buf).map_err(|_| bad("truncated"))?;
            hash.update(&buf);
            Ok(buf)
        };
    if read(BACKUP_MAGIC.len(), &mut input, &mut hash)? != BACKUP_MAGIC {
        return Err(bad("not a spa-hub backup"));
    }
    let mut entries = Vec::new();
    loop {
        let tag = read(1, &mut input, &mut hash)?[0];
        if tag == 0xFF {
            break;
        }
        if !(1..=3).contains(&tag) {
            return Err(bad("unknown section"));
        }
        let len = |input: &mut BufReader<File>, hash: &mut Sha256| -> Result<usize, StoreError> {
            let b = read(4, input, hash)?;
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if n > 64 * 1024 * 1024 {
                return Err(bad("entry too large"));
            }
            Ok(n)
        };
        let klen = len(&mut input, &mut hash)?;
        let k = read(klen, &mut input, &mut hash)?;
        let vlen = len(&mut input, &mut hash)?;
        let v = read(vlen, &mut input, &mut hash)?;
        entries.push((tag, k, v));
    }
    let expected = hash.finalize();
    let mut digest = [0u8; 32];
    input
        .read_exact(&mut digest)
        .map_err(|_| bad("truncated checksum"))?;
    if digest[..] != expected[..] {
        return Err(bad("checksum mismatch (damaged file)"));
    }
    Ok(entries)
}

const RECORD: u8 = b'r';
/// Report checkpoints: `c` + day → postcard (zone name, `Checkpoint`).
const CHECKPOINT: u8 = b'c';

fn record_key(record: &Record) -> RecordKey {
    record.key()
}
