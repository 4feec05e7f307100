//! A gift card's code as people read, type and say it: 16 characters of
//! Crockford's base32 (80 bits) in groups of four, `7KQ2-M9XD-4FHT-0RWE`.
//! Typing is forgiving: case, spaces and dashes do not matter, and O/I/L
//! are read as 0/1/1. The hub stores only the hash of the normalised code.
//!
//! A card sold since the retry fix has a *derived* code: the first 80 bits
//! of HMAC-SHA256 under the box's gift card secret ([`CodeKey`], read by
//! the shell from `SPA_DATA_DIR/giftcard-secret`) of the card's id and sale
//! time. It is a pure function of things the card's record keeps, so the
//! ack of a retried checkout can show the same code again ([`shown`]),
//! while neither the code nor the key ever reaches sled or the event log.
//! Cards sold before it have random codes: their hash does not match a
//! derivation, so they are never re-shown (and redeem as before).

use ring::hmac;
use sha2::{Digest, Sha256};

use super::retail::GiftCard;
use crate::domain::Id;

/// Crockford's alphabet: no I, L, O or U.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What the MAC is over, before the card's id and sale time: a label, so
/// the box's secret never makes the same MAC for another purpose.
const LABEL: &[u8] = b"spa-hub gift card code v1\0";

/// The box's gift card secret, as the core uses it: an HMAC-SHA256 key.
/// Its `Debug` never shows the key.
#[derive(Clone)]
pub struct CodeKey(hmac::Key);

impl CodeKey {
    pub fn new(secret: &[u8; 32]) -> CodeKey {
        CodeKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

/// The code of card `id` sold at `issued_at_ms`. The sale time is in the
/// MAC so that a box restored from an older backup, which hands out ids
/// again, never makes a code it already made for a card lost with the
/// restore.
pub fn derive(key: &CodeKey, id: Id, issued_at_ms: i64) -> String {
    let mut message = [0u8; LABEL.len() + 16];
    message[..LABEL.len()].copy_from_slice(LABEL);
    message[LABEL.len()..LABEL.len() + 8].copy_from_slice(&id.to_be_bytes());
    message[LABEL.len() + 8..].copy_from_slice(&issued_at_ms.to_be_bytes());
    let tag = hmac::sign(&key.0, &message);
    let mut bytes = [0u8; 10];
    bytes.copy_from_slice(&tag.as_ref()[..10]);
    from_bytes(bytes)
}

/// What is stored of a code: the hex SHA-256 of its normalised form (the
/// shell hashes a typed code the same way to look the card up).
pub fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(normalise(code).as_bytes()))
}

/// The code of `card` to show its seller again, when the box's key made
/// it (a card from before derived codes, or from a box with another
/// secret, has none).
pub fn shown(key: Option<&CodeKey>, card: &GiftCard) -> Option<String> {
    let code = derive(key?, card.id, card.issued_at);
    (hash(&code) == card.code_hash).then_some(code)
}

/// 80 bits (10 bytes) as a grouped code.
pub fn from_bytes(bytes: [u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(b);
    }
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 5 * (15 - i);
        out.push(char::from(ALPHABET[((bits >> shift) & 31) as usize]));
    }
    out
}

/// The form whose hash is stored: capitals, no separators, O→0, I/L→1.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .take(64)
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// The last four characters, to tell cards apart on a receipt.
pub fn hint(code: &str) -> String {
    let n = normalise(code);
    n.chars()
        .skip(n.chars().count().saturating_sub(4))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_forgiving() {
        let code = from_bytes([0xff; 10]);
        assert_eq!(code, "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
        let code = from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(code, "0000-0000-0000-0001");
        assert_eq!(normalise(" 7kq2-m9xd 4fht-oRwe "), "7KQ2M9XD4FHT0RWE");
        assert_eq!(normalise("il"), "11");
        assert_eq!(hint("7KQ2-M9XD-4FHT-0RWE"), "0RWE");
    }

    fn card(key: &CodeKey, id: Id, at: i64) -> GiftCard {
        let code = derive(key, id, at);
        GiftCard {
            id,
            code_hash: hash(&code),
            hint: hint(&code),
            issued_cents: 5_000,
            balance_cents: 5_000,
            issued_at: at,
            expires: None,
            receipt_id: id - 1,
        }
    }

    #[test]
    fn a_derived_code_is_stable_keyed_and_apart_per_card() {
        let key = CodeKey::new(&[7; 32]);
        let code = derive(&key, 42, 1_795_680_000_000);
        assert_eq!(
            code,
            derive(&key, 42, 1_795_680_000_000),
            "the same card, the same code"
        );
        assert_eq!(code.len(), 19);
        assert!(
            code.bytes().enumerate().all(|(i, b)| if i % 5 == 4 {
                b == b'-'
            } else {
                ALPHABET.contains(&b)
            }),
            "{code}"
        );
        assert_ne!(code, derive(&key, 43, 1_795_680_000_000), "another card");
        assert_ne!(
            code,
            derive(&key, 42, 1_795_680_000_001),
            "the same id sold again after a restore"
        );
        assert_ne!(
            code,
            derive(&CodeKey::new(&[8; 32]), 42, 1_795_680_000_000),
            "another box"
        );
        // The typed form hashes the same, however it is typed.
        assert_eq!(hash(&code.to_lowercase().replace('-', " ")), hash(&code));
        assert_eq!(format!("{key:?}"), "CodeKey(…)");
    }

    #[test]
    fn only_a_card_this_key_made_is_shown_again() {
        let key = CodeKey::new(&[7; 32]);
        let c = card(&key, 42, 1_000);
        assert_eq!(shown(Some(&key), &c), Some(derive(&key, 42, 1_000)));
        assert_eq!(shown(None, &c), None, "no key, no code");
        assert_eq!(
            shown(Some(&CodeKey::new(&[9; 32])), &c),
            None,
            "another box's key"
        );
        // A card from before derived codes: a random code's hash.
        let old = GiftCard {
            code_hash: hash(&from_bytes([0x5a; 10])),
            ..c
        };
        assert_eq!(shown(Some(&key), &old), None);
    }
}
