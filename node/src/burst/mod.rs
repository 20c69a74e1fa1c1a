//! The burst path (docs/architecture.md §4 steps 5–7): a Lua claim in Redis answers the
//! losers (exhausted, already redeemed, paused) with no Postgres work; the
//! winners commit in Postgres, which still decides. Redis is only an
//! accelerator: when it is down or not loaded, requests take the
//! Postgres-only path, and nothing it says can exceed a limit.

mod engine;
mod engine_sync;
pub mod keys;
pub mod ratelimit;
pub mod reconcile;
pub mod scripts;
pub mod seed;

pub use engine::RedisClaim;

use std::time::Duration;

/// Longest wait for one Redis call before falling back to Postgres.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// An in-flight marker expires after this (a crashed node's key frees up).
pub const INFLIGHT_TTL_MS: u64 = 30_000;
/// How long a settled key answers "replay" from Redis (Postgres keeps the
/// row for ever; this only saves the lookup for fast retries).
pub const REPLAY_MARKER_TTL_MS: u64 = 24 * 3600 * 1000;
