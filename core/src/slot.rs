//! Slots: the unit of ownership. Every stateful key hashes (or decodes) to one.
//!
//! The hash is FNV-1a 64 over the normalized code's bytes, reduced mod
//! [`SLOT_COUNT`]. It is part of the wire contract: routers in every region must
//! agree forever, so the golden vectors below may never change.

use serde::{Deserialize, Serialize};

/// Fixed number of slots. 1024 = 2 symbols of the code alphabet, so a
/// generated code or id carries its slot in its first two symbols.
pub const SLOT_COUNT: u16 = 1024;

/// A slot number in `0..SLOT_COUNT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Slot(u16);

impl Slot {
    pub fn new(n: u16) -> Option<Slot> {
        (n < SLOT_COUNT).then_some(Slot(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// Slot of a vanity code (already normalized by [`crate::Code::parse`]).
    pub fn of_vanity(normalized: &str) -> Slot {
        Slot((fnv1a64(normalized.as_bytes()) % SLOT_COUNT as u64) as u16)
    }

    /// Every slot, in order.
    pub fn all() -> impl Iterator<Item = Slot> {
        (0..SLOT_COUNT).map(Slot)
    }
}

impl TryFrom<u16> for Slot {
    type Error = String;
    fn try_from(n: u16) -> Result<Self, Self::Error> {
        Slot::new(n).ok_or_else(|| format!("slot {n} out of range 0..{SLOT_COUNT}"))
    }
}

impl From<Slot> for u16 {
    fn from(s: Slot) -> u16 {
        s.0
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// FNV-1a, 64-bit: tiny, dependency-free and identical in any language.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors: these pin the wire contract. Never edit them.
    #[test]
    fn vanity_slot_golden_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Slot::of_vanity("SAVE20").get(), 762);
        assert_eq!(Slot::of_vanity("BLACKFRI100").get(), 586);
        assert_eq!(Slot::of_vanity("WELCOME").get(), 1011);
    }

    #[test]
    fn slot_out_of_range_is_refused() {
        assert!(Slot::new(SLOT_COUNT).is_none());
        assert!(Slot::new(SLOT_COUNT - 1).is_some());
    }
}
