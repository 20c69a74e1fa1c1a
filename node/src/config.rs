//! Node configuration: flags, each with an environment variable.

use clap::Parser;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default request body limit (API.md): larger bodies get 413.
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
    /// PEM file with the token issuer's Ed25519 public key.
    #[arg(long, env = "COUPON_ISSUER_PUBLIC_KEY")]
    pub issuer_public_key: PathBuf,
    /// Expected `iss` of user and admin tokens.
    #[arg(long, env = "COUPON_ISSUER", default_value = "coupon-dev-issuer")]
    pub issuer: String,
    /// Expected `aud` of user and admin tokens.
    #[arg(long, env = "COUPON_AUDIENCE", default_value = "coupon-api")]
    pub audience: String,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "COUPON_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Postgres connection pool size.
    #[arg(long, env = "COUPON_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Slots this region owns when its Postgres has no ownership rows yet
    /// (`all`, or ranges like `0-511,600`). Standalone bootstrap only.
    #[arg(long, env = "COUPON_BOOTSTRAP_SLOTS", default_value = "all")]
    pub bootstrap_slots: String,
    /// How long a campaign stays in the in-process cache.
    #[arg(long, env = "COUPON_CAMPAIGN_CACHE_MS", default_value_t = 1000)]
    pub campaign_cache_ms: u64,
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
