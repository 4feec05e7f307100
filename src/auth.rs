//! Credentials: token generation and hashing, the admin token, PIN hashing
//! (argon2id); the login lockout is in [`crate::lockout`].
//!
//! Tokens are 256 random bits, shown once, stored only as SHA-256 hashes
//! (hex). A presented token is hashed and looked up by hash; the admin token
//! is compared hash to hash in constant time.

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A fresh random token (256 bits, URL-safe hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two token hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// argon2id's memory for a PIN, in 1 KiB blocks: 8 MiB.
pub const PIN_MEMORY_BLOCKS: u32 = 8 * 1024;

fn pin_params() -> Params {
    Params::new(PIN_MEMORY_BLOCKS, 2, 1, None).unwrap_or_default()
}

/// argon2id tuned to about 50 ms on a Raspberry Pi 4 (8 MiB, 2 passes);
/// a few ms on a PC.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, pin_params())
}

/// Checks a PIN's shape: 4 to 12 digits.
pub fn check_pin(pin: &str) -> Result<(), String> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("`pin` must be 4 to 12 digits".into())
    }
}

/// Hashes a PIN (slow on purpose: call it off the async runtime).
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies a PIN against a stored hash (slow on purpose).
pub fn verify_pin(pin: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2().verify_password(pin.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The working memory of one PIN check (8 MiB), allocated once and reused:
/// argon2 would otherwise allocate it anew on whichever blocking thread runs
/// the check, and the C allocator keeps such blocks per thread arena (so
/// memory grew with every new thread and never came back).
pub type PinMemory = Vec<Block>;

pub fn new_pin_memory() -> PinMemory {
    vec![Block::default(); PIN_MEMORY_BLOCKS as usize]
}

/// [`hash_pin`] in the given working memory.
pub fn hash_pin_with(pin: &str, memory: &mut [Block]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = pin_params();
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| e.to_string())?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        hasher
            .hash_password_into_with_memory(pin.as_bytes(), salt_bytes, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// [`verify_pin`] in the given working memory. A hash that would need more
/// memory than given (none this hub makes) is refused, never allocated for.
pub fn verify_pin_with(pin: &str, hash: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    if params.block_count() > memory.len() {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(pin.as_bytes(), salt_bytes, &mut out, &mut *memory)
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// The places for PIN checks: at most `n` at once, each with its own
/// working memory, allocated on first use and kept, so PIN checks take at
/// most `n` × 8 MiB, whatever the load.
pub struct PinChecks {
    permits: Arc<Semaphore>,
    memory: Mutex<Vec<PinMemory>>,
}

/// One place: its permit and its working memory (returned on drop).
pub struct PinPlace {
    _permit: OwnedSemaphorePermit,
    checks: Arc<PinChecks>,
    memory: PinMemory,
}

impl PinChecks {
    pub fn new(places: usize) -> Arc<PinChecks> {
        Arc::new(PinChecks {
            permits: Arc::new(Semaphore::new(places.max(1))),
            memory: Mutex::new(Vec::new()),
        })
    }

    fn place(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> PinPlace {
        let memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(new_pin_memory);
        PinPlace {
            _permit: permit,
            checks: self.clone(),
            memory,
        }
    }

    /// A place now, or `None` when all are taken.
    pub fn try_place(self: &Arc<Self>) -> Option<PinPlace> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        Some(self.place(permit))
    }

    /// Waits for a place (`None` only if the semaphore was closed).
    pub async fn place_when_free(self: &Arc<Self>) -> Option<PinPlace> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        Some(self.place(permit))
    }
}

impl PinPlace {
    pub fn verify(&mut self, pin: &str, hash: &str) -> bool {
        verify_pin_with(pin, hash, &mut self.memory)
    }

    pub fn hash(&mut self, pin: &str) -> Result<String, String> {
        hash_pin_with(pin, &mut self.memory)
    }
}

impl Drop for PinPlace {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        if memory.len() == PIN_MEMORY_BLOCKS as usize {
            self.checks
                .memory
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(memory);
        }
    }
}

/// The admin token: from the env file, or generated once into
/// `data_dir/admin-token` (mode 0600). Returns the token and, when it was
/// generated just now, the path it was written to.
pub fn admin_token(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(t) = configured {
        return Ok((t.to_string(), None));
    }
    let path = data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if t.len() >= 16 {
            return Ok((t.to_string(), None));
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let token = new_token();
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok((token, Some(path)))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

pub use crate::lockout::{Attempt, Locked, Lockout};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_hash_and_verify() {
        let h = hash_pin("1234").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_pin("1234", &h));
        assert!(!verify_pin("1235", &h));
        assert!(!verify_pin("1234", "not a hash"));
    }

    #[test]
    fn pins_hash_and_verify_in_reused_memory() {
        let mut memory = new_pin_memory();
        let h = hash_pin_with("2468", &mut memory).expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{h}");
        assert!(verify_pin("2468", &h), "the standard verifier agrees");
        assert!(verify_pin_with("2468", &h, &mut memory));
        assert!(!verify_pin_with("2469", &h, &mut memory));
        let standard = hash_pin("1357").expect("hash");
        assert!(verify_pin_with("1357", &standard, &mut memory));
        assert!(!verify_pin_with("1357", "not a hash", &mut memory));
        // A hash wanting more memory than a place has is refused, not
        // allocated for.
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(PIN_MEMORY_BLOCKS * 2, 1, 1, None).expect("params"),
        )
        .hash_password(b"1357", &SaltString::encode_b64(&[7u8; 16]).expect("salt"))
        .expect("hash")
        .to_string();
        assert!(verify_pin("1357", &big));
        assert!(!verify_pin_with("1357", &big, &mut memory));
    }

    #[test]
    fn pin_check_places_reuse_their_memory() {
        let checks = PinChecks::new(2);
        let mut a = checks.try_place().expect("first");
        let b = checks.try_place().expect("second");
        assert!(checks.try_place().is_none(), "only two at once");
        let h = a.hash("2468").expect("hash");
        assert!(a.verify("2468", &h));
        drop(a);
        drop(b);
        assert_eq!(checks.memory.lock().expect("lock").len(), 2);
        for _ in 0..5 {
            let mut p = checks.try_place().expect("place");
            assert!(p.verify("2468", &h));
        }
        assert_eq!(
            checks.memory.lock().expect("lock").len(),
            2,
            "no new memory for later checks"
        );
    }

    #[test]
    fn pin_shape() {
        assert!(check_pin("1234").is_ok());
        assert!(check_pin("123").is_err());
        assert!(check_pin("12a4").is_err());
        assert!(check_pin("1234567890123").is_err());
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(hashes_equal(&hash_token(&a), &hash_token(&a)));
        assert!(!hashes_equal(&hash_token(&a), &hash_token(&b)));
    }

    #[test]
    fn admin_token_generated_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let (t1, path) = admin_token(None, dir.path()).expect("gen");
        assert!(path.is_some());
        let (t2, path2) = admin_token(None, dir.path()).expect("read");
        assert_eq!(t1, t2);
        assert!(path2.is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin-token"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
