//! A gift card's code as people read, type and say it: 16 characters of
//! Crockford's base32 (80 random bits, made by the shell) in groups of four,
//! `7KQ2-M9XD-4FHT-0RWE`. Typing is forgiving: case, spaces and dashes do
//! not matter, and O/I/L are read as 0/1/1. The hub stores only the hash
//! of the normalised code.

/// Crockford's alphabet: no I, L, O or U.
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

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
}
