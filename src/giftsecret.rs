//! The box's gift card secret: 32 random bytes in
//! `SPA_DATA_DIR/giftcard-secret` (mode 0600), made and synced at the first
//! start, from which the core derives every sold gift card's code
//! (`domain::money::giftcode`: an HMAC of the card's id and sale time).
//! Because the code is derived, the ack of a retried checkout shows the
//! same code again, while only the code's hash is ever stored.
//!
//! The file is not in a backup (`spa-hub backup`): a backup with it would
//! let whoever holds the file derive every card's code and spend its
//! balance. A restore leaves the file where it is, so on the same box
//! nothing changes; on a new box the restored cards still pay with their
//! codes (only hashes are needed), and only a retry of a checkout made
//! before the restore cannot show its codes again (see the README).
//!
//! A file that is there but unreadable or not 32 bytes stops the start
//! (like the customers' key file): making a new secret silently would lose
//! nothing stored, but it would hide a damaged data directory.

use std::io::Write;
use std::path::Path;

use rand::RngCore;

pub const FILE_NAME: &str = "giftcard-secret";
pub const LEN: usize = 32;

/// Reads the secret in `dir`, or makes it when there is none.
pub fn open(dir: &Path) -> std::io::Result<[u8; LEN]> {
    let path = dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => <[u8; LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            std::io::Error::other(format!(
                "{} is {} bytes, not a {LEN}-byte gift card secret: put the right file back \
                 (or move it away: a new secret is made, and the codes of cards sold before \
                 cannot be shown again on a retried checkout; they still pay)",
                path.display(),
                bytes.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot read the gift card secret {}: {e}", path.display()),
        )),
    }
}

/// Writes a new secret through a temporary file, synced, then renamed into
/// place and the directory synced: a power cut leaves either no secret or
/// the whole one.
fn create(dir: &Path, path: &Path) -> std::io::Result<[u8; LEN]> {
    let mut secret = [0u8; LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(&secret)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    log::info!("gift card secret made in {}", path.display());
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let first = open(dir.path()).expect("made");
        assert_ne!(first, [0u8; LEN]);
        assert_eq!(open(dir.path()).expect("read"), first, "the same secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join(format!("{FILE_NAME}.tmp")).exists());
    }

    #[test]
    fn a_short_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(FILE_NAME), b"short").expect("write");
        let err = open(dir.path()).expect_err("refused");
        assert!(
            err.to_string().contains("giftcard-secret is 5 bytes"),
            "{err}"
        );
        // Not replaced: the damaged file is still there for someone to look at.
        assert_eq!(
            std::fs::read(dir.path().join(FILE_NAME)).expect("read"),
            b"short"
        );
        // A directory where the file should be: unreadable.
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join(FILE_NAME)).expect("mkdir");
        let err = open(dir.path()).expect_err("refused");
        assert!(
            err.to_string().contains("cannot read the gift card secret"),
            "{err}"
        );
    }
}
