//! Redis key names of a campaign. The `{campaign}` hash tag keeps every key
//! of one campaign in one Redis Cluster slot, so each Lua script is atomic.

use sha2::{Digest, Sha256};

/// The names are built once per campaign (the engine keeps them with the
/// campaigns it serves): a claim names six of them on every attempt.
pub struct Keys {
    base: String,
    ready: String,
    paused: String,
    free: String,
    next: String,
    users: String,
    claims: String,
}

impl Keys {
    pub fn new(campaign_id: &str) -> Keys {
        let base = format!("c:{{{campaign_id}}}");
        Keys {
            ready: format!("{base}:ready"),
            paused: format!("{base}:paused"),
            free: format!("{base}:free"),
            next: format!("{base}:next"),
            users: format!("{base}:users"),
            claims: format!("{base}:claims"),
            base,
        }
    }
    /// Present once the campaign's state was built from Postgres.
    pub fn ready(&self) -> &str {
        &self.ready
    }
    pub fn paused(&self) -> &str {
        &self.paused
    }
    /// Free seats below `next` (shared, capped: seats given back or
    /// released) or unused codes (pool, unique).
    pub fn free(&self) -> &str {
        &self.free
    }
    /// Shared, capped: the lowest seat never handed out by Redis; seats
    /// `next..=total_limit` are free without being listed.
    pub fn next(&self) -> &str {
        &self.next
    }
    /// user → active uses.
    pub fn users(&self) -> &str {
        &self.users
    }
    /// Claims not yet settled in Postgres, scored by claim time (ms).
    pub fn claims(&self) -> &str {
        &self.claims
    }
    pub fn seed_lock(&self) -> String {
        format!("{}:seedlock", self.base)
    }
    pub fn tmp(&self, what: &str) -> String {
        format!("{}:{what}:tmp", self.base)
    }
    /// In-flight / replay marker of one caller's idempotency key.
    pub fn inflight(&self, user: &str, key: &str) -> String {
        let d = Sha256::new()
            .chain_update(user)
            .chain_update([0])
            .chain_update(key)
            .finalize();
        let hex = coupon_core::hex::encode(&d[..12]);
        format!("{}:f:{hex}", self.base)
    }
}

/// Free seats the `next` counter stands for (shared, capped): every seat
/// from `next` to the cap. Zero for other campaigns.
pub fn unlisted(total_limit: Option<i32>, next: Option<i64>) -> i64 {
    match (total_limit, next) {
        (Some(total), Some(next)) => (i64::from(total) - next + 1).max(0),
        _ => 0,
    }
}

/// A claim's member in the claims set: `token \n key \n user` (keys are
/// visible ASCII, so the first two newlines split it unambiguously).
pub fn claim_member(token: &str, key: &str, user: &str) -> String {
    format!("{token}\n{key}\n{user}")
}

pub fn parse_member(m: &str) -> Option<(&str, &str, &str)> {
    let mut it = m.splitn(3, '\n');
    Some((it.next()?, it.next()?, it.next()?))
}
