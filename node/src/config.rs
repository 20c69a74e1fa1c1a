//! Node configuration: flags, each with an environment variable.

use clap::Parser;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default request body limit (docs/api.md): larger bodies get 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A value that must never reach a log line.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[derive(Debug, Clone, Parser)]
#[command(name = "coupon-node", about = "Regional coupon node")]
pub struct NodeConfig {
    /// Region this node serves (e.g. `us`).
    #[arg(long, env = "COUPON_REGION")]
    pub region: String,
    /// Address to listen on.
    #[arg(long, env = "COUPON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Postgres of this region.
    #[arg(long, env = "COUPON_DATABASE_URL")]
    pub database_url: Secret,
    /// Redis of this region.
    #[arg(long, env = "COUPON_REDIS_URL")]
    pub redis_url: Secret,
    /// PEM file (SPKI) with the token issuer's Ed25519 public key, e.g.
    /// the dev issuer's. Optional when `--jwks` names the issuer's keys.
    #[arg(long, env = "COUPON_ISSUER_PUBLIC_KEY")]
    pub issuer_public_key: Option<PathBuf>,
    /// Expected `iss` of user and admin tokens.
    #[arg(long, env = "COUPON_ISSUER", default_value = "coupon-dev-issuer")]
    pub issuer: String,
    /// Expected `aud` of user and admin tokens.
    #[arg(long, env = "COUPON_AUDIENCE", default_value = "coupon-api")]
    pub audience: String,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "COUPON_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// How long a redeem waits for its commit (which waits for the region's
    /// synchronous standby) before answering 503: the outcome is then
    /// unknown, never reported as a success (docs/failover.md §4).
    #[arg(long, env = "COUPON_COMMIT_WAIT_MS", default_value_t = 2500)]
    pub commit_wait_ms: u64,
    /// Postgres connection pool size. One connection is the ownership
    /// view's LISTEN, held for as long as the node runs. The node opens
    /// two more outside the pool: the region lease's, and the seat counts'.
    #[arg(long, env = "COUPON_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Slots this region owns when its Postgres has no ownership rows yet
    /// (`all`, or ranges like `0-511,600`). Standalone bootstrap only.
    #[arg(long, env = "COUPON_BOOTSTRAP_SLOTS", default_value = "all")]
    pub bootstrap_slots: String,
    /// How long a campaign stays in the in-process cache.
    #[arg(long, env = "COUPON_CAMPAIGN_CACHE_MS", default_value_t = 1000)]
    pub campaign_cache_ms: u64,
    /// Generated codes the in-process Bloom filter is sized for (0.1 % false
    /// positives at this many; ~1.9 bytes per code).
    #[arg(long, env = "COUPON_BLOOM_CAPACITY", default_value_t = 10_000_000)]
    pub bloom_capacity: u64,
    /// Identity provider keys (JWKS), accepted algorithms, token cache.
    #[command(flatten)]
    pub tokens: crate::auth::TokenConfig,
    #[command(flatten)]
    pub burst: BurstConfig,
    /// Ownership map and service keys (multi-region).
    #[command(flatten)]
    pub regions: crate::ownership::RegionsConfig,
}

/// The Redis burst path, the reconciler and rate limits (docs/architecture.md §4.2, §4.5).
#[derive(Debug, Clone, clap::Args)]
pub struct BurstConfig {
    /// `redis`: Lua claims in Redis in front of Postgres; `postgres`: Postgres only.
    #[arg(long, env = "COUPON_CLAIM_ENGINE", default_value = "redis")]
    pub claim_engine: ClaimEngineKind,
    /// A claim older than this without its Postgres row is a leak the
    /// reconciler gives back (a crash between claim and commit).
    #[arg(long, env = "COUPON_RECONCILE_GRACE_MS", default_value_t = 30_000)]
    pub reconcile_grace_ms: u64,
    /// How often the reconciler compares Postgres and Redis (0 = only on demand).
    #[arg(long, env = "COUPON_RECONCILE_INTERVAL_MS", default_value_t = 10_000)]
    pub reconcile_interval_ms: u64,
    /// Redeem and validate calls per second per user (0 = no limit).
    #[arg(long, env = "COUPON_USER_RATE", default_value_t = 10.0)]
    pub user_rate: f64,
    /// Calls a user may make at once before the rate applies.
    #[arg(long, env = "COUPON_USER_BURST", default_value_t = 20)]
    pub user_burst: u32,
    /// Calls per second per client IP (0 = no limit: server-side storefronts
    /// share few IPs; enable for client-side traffic).
    #[arg(long, env = "COUPON_IP_RATE", default_value_t = 0.0)]
    pub ip_rate: f64,
    /// Calls an IP may make at once before the rate applies.
    #[arg(long, env = "COUPON_IP_BURST", default_value_t = 100)]
    pub ip_burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClaimEngineKind {
    Redis,
    Postgres,
}

/// Parse `all` or `a-b,c` into slot numbers.
pub fn parse_slots(spec: &str) -> Result<Vec<u16>, String> {
    if spec.trim() == "all" {
        return Ok((0..coupon_core::SLOT_COUNT).collect());
    }
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u16 = a.trim().parse().map_err(|_| format!("bad slot `{part}`"))?;
        let b: u16 = b.trim().parse().map_err(|_| format!("bad slot `{part}`"))?;
        if a > b || b >= coupon_core::SLOT_COUNT {
            return Err(format!(
                "slot range `{part}` outside 0..{}",
                coupon_core::SLOT_COUNT
            ));
        }
        out.extend(a..=b);
    }
    Ok(out)
}
