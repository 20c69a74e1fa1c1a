//! Coupon codes: normalization, the generated-code layout and the shape check.
//!
//! A generated code is 13 alphabet symbols: 2 for the home slot, 10 random
//! (50 bits), 1 Luhn-mod-32 check symbol. A vanity code is anything else of
//! 1–64 ASCII letters and digits, except that 13 alphabet symbols are reserved
//! for generated codes so a mistyped generated code is refused without I/O.

use crate::alphabet::{self, ALPHABET};
use crate::slot::Slot;
use rand::Rng;

/// Longest code accepted, after normalization.
pub const MAX_CODE_LEN: usize = 64;
/// Length of a generated code.
pub const GENERATED_LEN: usize = 13;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("code is empty")]
    Empty,
    #[error("code is longer than {MAX_CODE_LEN} characters")]
    TooLong,
    #[error("code may contain only letters and digits (spaces and dashes are ignored)")]
    BadCharacter,
    #[error("code has the shape of a generated code but its check character is wrong")]
    BadCheck,
    #[error("13 symbols of the generated-code alphabet are reserved for generated codes")]
    ReservedShape,
}

/// A normalized code: upper case, spaces and dashes removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    Generated(GeneratedCode),
    Vanity(String),
}

/// A generated code whose check symbol verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeneratedCode(String);

impl Code {
    /// Parse a code typed by a user. Matching is case-insensitive and ignores
    /// spaces and dashes (docs/api.md).
    pub fn parse(raw: &str) -> Result<Code, CodeError> {
        if raw.len() > MAX_CODE_LEN * 4 {
            return Err(CodeError::TooLong);
        }
        let norm: String = raw
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if norm.is_empty() {
            return Err(CodeError::Empty);
        }
        if norm.len() > MAX_CODE_LEN {
            return Err(CodeError::TooLong);
        }
        if !norm.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CodeError::BadCharacter);
        }
        if is_generated_shape(&norm) {
            let b = norm.as_bytes();
            if alphabet::check_char(&b[..GENERATED_LEN - 1]) != b[GENERATED_LEN - 1] {
                return Err(CodeError::BadCheck);
            }
            return Ok(Code::Generated(GeneratedCode(norm)));
        }
        Ok(Code::Vanity(norm))
    }

    /// Parse a vanity code chosen by marketing: generated shapes are refused.
    pub fn parse_vanity(raw: &str) -> Result<Code, CodeError> {
        match Code::parse(raw) {
            Ok(Code::Vanity(v)) => Ok(Code::Vanity(v)),
            Ok(Code::Generated(_)) | Err(CodeError::BadCheck) => Err(CodeError::ReservedShape),
            Err(e) => Err(e),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Code::Generated(g) => &g.0,
            Code::Vanity(v) => v,
        }
    }

    /// The home slot, computed from the string alone.
    pub fn slot(&self) -> Slot {
        match self {
            Code::Generated(g) => g.slot(),
            Code::Vanity(v) => Slot::of_vanity(v),
        }
    }
}

impl GeneratedCode {
    /// A fresh random code homed in `slot`.
    pub fn random(slot: Slot, rng: &mut impl Rng) -> GeneratedCode {
        let mut body = alphabet::encode(slot.get() as u64, 2);
        body.extend((0..10).map(|_| ALPHABET[rng.gen_range(0..32)]));
        let check = alphabet::check_char(&body);
        body.push(check);
        GeneratedCode(String::from_utf8(body).expect("alphabet is ASCII"))
    }

    pub fn slot(&self) -> Slot {
        let v = alphabet::decode(&self.0.as_bytes()[..2]).expect("validated");
        Slot::new(v as u16).expect("two symbols are below 1024")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_generated_shape(norm: &str) -> bool {
    norm.len() == GENERATED_LEN && norm.bytes().all(|b| alphabet::value(b).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_case_insensitively_ignoring_spaces_and_dashes() {
        assert_eq!(
            Code::parse("save-20").unwrap(),
            Code::parse(" SAVE 20 ").unwrap()
        );
    }

    #[test]
    fn generated_code_round_trips_and_carries_its_slot() {
        let mut rng = rand::thread_rng();
        for n in [0u16, 1, 586, 1023] {
            let slot = Slot::new(n).unwrap();
            let g = GeneratedCode::random(slot, &mut rng);
            let lower = g.as_str().to_ascii_lowercase();
            let dashed = format!("{}-{}-{}", &lower[..4], &lower[4..8], &lower[8..]);
            let parsed = Code::parse(&dashed).unwrap();
            assert_eq!(parsed, Code::Generated(g.clone()));
            assert_eq!(parsed.slot(), slot);
        }
    }

    /// Golden vector: pins the layout (slot symbols, then body, then check).
    #[test]
    fn generated_code_golden_vector() {
        // Slot 586 = 18*32 + 10 → symbols "L" (18) and "C" (10).
        let code = Code::parse("LC23456789ABN").unwrap();
        assert!(matches!(code, Code::Generated(_)));
        assert_eq!(code.slot().get(), 586);
    }

    #[test]
    fn a_mistyped_generated_code_is_refused_by_shape() {
        let g = GeneratedCode::random(Slot::new(7).unwrap(), &mut rand::thread_rng());
        let mut s = g.as_str().as_bytes().to_vec();
        s[5] = if s[5] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(s).unwrap();
        assert_eq!(Code::parse(&typo), Err(CodeError::BadCheck));
    }

    #[test]
    fn vanity_codes_may_not_take_the_generated_shape() {
        let g = GeneratedCode::random(Slot::new(7).unwrap(), &mut rand::thread_rng());
        assert_eq!(
            Code::parse_vanity(g.as_str()),
            Err(CodeError::ReservedShape)
        );
        assert!(Code::parse_vanity("BLACKFRI100").is_ok());
        assert_eq!(Code::parse("SAVE!"), Err(CodeError::BadCharacter));
        assert_eq!(Code::parse(&"A".repeat(65)), Err(CodeError::TooLong));
        assert_eq!(Code::parse(" - "), Err(CodeError::Empty));
    }
}
