//! The 32-symbol alphabet for generated codes and ids, and its check character.
//!
//! No look-alikes: 0/O and 1/I are left out, so a code read aloud or typed
//! from a printed card has one spelling. 32 symbols carry exactly 5 bits each.

/// Symbols in value order; index = value.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Value of one (upper-case) symbol, or `None` outside the alphabet.
pub fn value(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// Luhn mod N check character over `body` (symbols already validated).
///
/// Luhn mod 32 catches every single-symbol substitution and every transposition
/// of two adjacent symbols, the two mistakes people make when typing codes.
pub fn check_char(body: &[u8]) -> u8 {
    let n = ALPHABET.len() as u32;
    let mut factor = 2;
    let mut sum = 0u32;
    for &c in body.iter().rev() {
        let v = value(c).expect("body validated") as u32;
        let mut addend = factor * v;
        factor = if factor == 2 { 1 } else { 2 };
        addend = addend / n + addend % n;
        sum += addend;
    }
    let rem = sum % n;
    ALPHABET[((n - rem) % n) as usize]
}

/// Encode `value` in `len` symbols, most significant first.
pub fn encode(mut value: u64, len: usize) -> Vec<u8> {
    let mut out = vec![b'2'; len];
    for i in (0..len).rev() {
        out[i] = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out
}

/// Decode symbols to a number; `None` on a symbol outside the alphabet.
pub fn decode(symbols: &[u8]) -> Option<u64> {
    symbols
        .iter()
        .try_fold(0u64, |acc, &c| value(c).map(|v| (acc << 5) | v as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_char_catches_substitution_and_adjacent_transposition() {
        let body = b"AB7K9QRSTX";
        let c = check_char(body);
        for i in 0..body.len() {
            for &s in ALPHABET.iter() {
                if s == body[i] {
                    continue;
                }
                let mut m = *body;
                m[i] = s;
                assert_ne!(check_char(&m), c, "substitution at {i} to {}", s as char);
            }
            if i + 1 < body.len() && body[i] != body[i + 1] {
                let mut m = *body;
                m.swap(i, i + 1);
                assert_ne!(check_char(&m), c, "transposition at {i}");
            }
        }
    }

    #[test]
    fn encode_then_decode_is_identity() {
        for v in [0u64, 1, 31, 32, 1023, 123_456_789] {
            assert_eq!(decode(&encode(v, 8)), Some(v));
        }
    }
}
