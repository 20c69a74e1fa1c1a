//! Process-wide counters exported on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds a peer's rejection of our credentials keeps `/readyz` failing.
pub const PEER_REJECT_NOT_READY_SECS: u64 = 15;

#[derive(Debug, Default)]
pub struct Counters {
    /// Inbound raft RPCs refused for a missing/bad member token.
    pub member_auth_failures: AtomicU64,
    /// Admin requests refused for a missing/bad admin token.
    pub admin_auth_failures: AtomicU64,
    /// Outbound raft RPCs a peer refused with 401 (our secret is wrong, or theirs).
    pub peer_auth_rejections: AtomicU64,
    /// Unix time of the last peer rejection.
    pub last_peer_rejection: AtomicU64,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Counters {
    pub fn peer_rejected(&self) {
        self.peer_auth_rejections.fetch_add(1, Ordering::Relaxed);
        self.last_peer_rejection
            .store(unix_now(), Ordering::Relaxed);
    }

    /// True while a peer refused our credentials recently.
    pub fn peer_credentials_failing(&self) -> bool {
        let last = self.last_peer_rejection.load(Ordering::Relaxed);
        last != 0 && unix_now().saturating_sub(last) < PEER_REJECT_NOT_READY_SECS
    }
}
