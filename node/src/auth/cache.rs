//! Verified-token cache: a token that passed full verification is not
//! verified again until it expires. A shopper's token serves validate,
//! redeem and retries; a router's service token serves 20 s of forwarding.
//!
//! Keyed by SHA-256 of the whole token (header, claims and signature), so
//! a token that differs in any byte is a miss and gets verified. An entry
//! is used only while `now < exp` — never beyond the token's own expiry,
//! whatever the verifier's leeway. Failures are never stored. The number of
//! entries is bounded: expired entries go first, then arbitrary ones.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Default number of verified tokens kept per cache.
pub const DEFAULT_CAPACITY: usize = 100_000;

type TokenHash = [u8; 32];

pub struct TokenCache<T> {
    capacity: usize,
    entries: RwLock<HashMap<TokenHash, (u64, T)>>,
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
            capacity: capacity.max(1),
            entries: RwLock::default(),
        }
    }

    /// The verified value of `token`, if cached and `now` is before its `exp`.
    pub fn get(&self, token: &str, now: u64) -> Option<T> {
        let map = self.entries.read().expect("token cache lock");
        match map.get(&hash(token)) {
            Some((exp, v)) if now < *exp => Some(v.clone()),
            _ => None,
        }
    }

    /// Remembers a token that passed verification, until `exp`.
    pub fn put(&self, token: &str, exp: u64, value: T, now: u64) {
        if now >= exp {
            return;
        }
        let mut map = self.entries.write().expect("token cache lock");
        if map.len() >= self.capacity {
            map.retain(|_, (e, _)| now < *e);
        }
        while map.len() >= self.capacity {
            // Full of live tokens: drop an arbitrary one (they verify again).
            let Some(k) = map.keys().next().copied() else {
                break;
            };
            map.remove(&k);
        }
        map.insert(hash(token), (exp, value));
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("token cache lock").len()
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
    fn the_bound_holds_and_expired_entries_go_first() {
        let c = TokenCache::new(100);
        for i in 0..100 {
            c.put(&format!("old{i}"), 50, i, 10);
        }
        c.put("live", 1_000, 1_000, 60);
        assert_eq!(c.len(), 1, "the expired entries made room");
        for i in 0..1_000 {
            c.put(&format!("t{i}"), 10_000, i, 60);
            assert!(c.len() <= 100, "bound exceeded at {i}");
        }
        assert_eq!(c.get("t999", 61), Some(999), "the newest is kept");
    }
}
