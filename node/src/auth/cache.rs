//! Verified-token cache: a token that passed full verification is not
//! verified again until it expires. A shopper's token serves validate,
//! redeem and retries; a router's service token serves 20 s of forwarding.
//!
//! Keyed by SHA-256 of the whole token (header, claims and signature), so
//! a token that differs in any byte is a miss and gets verified. An entry
//! is used only while `now < exp` — never beyond the token's own expiry,
//! whatever the verifier's leeway. Failures are never stored.
//!
//! The number of entries is bounded without ever scanning the map: entries
//! go into a young generation of at most half the capacity; when it is
//! full it becomes the old generation and the previous old one is dropped
//! whole (its live tokens simply verify again). An earlier version scanned
//! the whole map for expired entries on every insert once it was full:
//! with 100,000 live shoppers that was a quarter of the node's CPU.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Default number of verified tokens kept per cache.
pub const DEFAULT_CAPACITY: usize = 100_000;

type TokenHash = [u8; 32];

pub struct TokenCache<T> {
    /// Entries per generation (half the capacity).
    generation: usize,
    entries: RwLock<Generations<T>>,
}

struct Generations<T> {
    young: HashMap<TokenHash, (u64, T)>,
    old: HashMap<TokenHash, (u64, T)>,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

impl<T: Clone> TokenCache<T> {
    pub fn new(capacity: usize) -> TokenCache<T> {
        TokenCache {
            generation: (capacity / 2).max(1),
            entries: RwLock::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
        }
    }

    /// The verified value of `token`, if cached and `now` is before its `exp`.
    pub fn get(&self, token: &str, now: u64) -> Option<T> {
        let key = hash(token);
        let g = self.entries.read().expect("token cache lock");
        match g.young.get(&key).or_else(|| g.old.get(&key)) {
            Some((exp, v)) if now < *exp => Some(v.clone()),
            _ => None,
        }
    }

    /// Remembers a token that passed verification, until `exp`.
    pub fn put(&self, token: &str, exp: u64, value: T, now: u64) {
        if now >= exp {
            return;
        }
        let mut g = self.entries.write().expect("token cache lock");
        if g.young.len() >= self.generation {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(hash(token), (exp, value));
    }

    pub fn len(&self) -> usize {
        let g = self.entries.read().expect("token cache lock");
        g.young.len() + g.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_until_exp_and_never_after() {
        let c = TokenCache::new(10);
        c.put("tok", 1_000, "alice", 900);
        assert_eq!(c.get("tok", 999), Some("alice"));
        assert_eq!(c.get("tok", 1_000), None, "at exp the token is expired");
        assert_eq!(c.get("tok", 5_000), None);
        assert_eq!(c.get("tok-other", 999), None, "another token is a miss");
    }

    #[test]
    fn an_already_expired_token_is_not_stored() {
        let c = TokenCache::new(10);
        c.put("tok", 1_000, "alice", 1_000);
        assert!(c.is_empty());
    }

    #[test]
    fn the_bound_holds_and_the_newest_half_is_kept() {
        let c = TokenCache::new(100);
        for i in 0..1_000 {
            c.put(&format!("t{i}"), 10_000, i, 60);
            assert!(c.len() <= 100, "bound exceeded at {i}");
        }
        for i in 950..1_000 {
            assert_eq!(c.get(&format!("t{i}"), 61), Some(i), "t{i} was dropped");
        }
        assert_eq!(c.get("t0", 61), None);
    }

    #[test]
    fn an_expired_entry_in_either_generation_is_never_served() {
        let c = TokenCache::new(4);
        c.put("a", 100, 1, 10);
        c.put("b", 100, 2, 10);
        c.put("c", 1_000, 3, 10);
        assert_eq!(c.get("a", 99), Some(1), "a is in the old generation");
        assert_eq!(c.get("a", 100), None);
        assert_eq!(c.get("c", 100), Some(3));
    }
}
