//! Credentials: token generation and hashing, the admin token, PIN hashing
//! (argon2id); the login lockout is in [`crate::lockout`].
//!
//! Tokens are 256 random bits, shown once, stored only as SHA-256 hashes
//! (hex). A presented token is hashed and looked up by hash; the admin token
//! is compared hash to hash in constant time.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

/// argon2id tuned to about 50 ms on a Raspberry Pi 4 (8 MiB, 2 passes);
/// a few ms on a PC.
fn argon2() -> Argon2<'static> {
    let params = Params::new(8 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
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
