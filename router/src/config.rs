//! Router configuration: flags, each with an environment variable.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default request body limit (docs/api.md): larger bodies get 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "coupon-router",
    about = "Routes coupon requests to the owning region"
)]
pub struct RouterConfig {
    /// Region this router runs in (answers for requests it cannot route
    /// name it; campaigns without `home_region` go to its node).
    #[arg(long, env = "COUPON_REGION")]
    pub region: String,
    /// Address to listen on.
    #[arg(long, env = "COUPON_ROUTER_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Raft members serving the ownership map, comma separated.
    #[arg(
        long = "raft-urls",
        env = "COUPON_RAFT_URLS",
        value_delimiter = ',',
        required = true
    )]
    pub raft_urls: Vec<String>,
    /// PEM (PKCS#8) of this region's Ed25519 service key.
    #[arg(long, env = "COUPON_SERVICE_KEY")]
    pub service_key: PathBuf,
    /// Key id of the service key (`<region>-<n>`; nodes look the public key up by it).
    #[arg(long, env = "COUPON_SERVICE_KID")]
    pub service_kid: String,
    /// Node URL overrides, comma separated or repeated: `eu=http://…` pins
    /// a region's node (it does not follow a takeover);
    /// `http://map-url=http://…` rewrites one address the map names (a local
    /// proxy, a private endpoint) and keeps following the map.
    #[arg(long = "node-url", env = "COUPON_NODE_URLS", value_delimiter = ',')]
    pub node_urls: Vec<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "COUPON_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Whole-request timeout of a forward, ms (per region: `--region-timeout-ms`).
    #[arg(long, env = "COUPON_FORWARD_TIMEOUT_MS", default_value_t = 3000)]
    pub forward_timeout_ms: u64,
    /// Per-region forward timeouts, `eu=5000` (comma separated or repeated).
    #[arg(
        long = "region-timeout-ms",
        env = "COUPON_REGION_TIMEOUTS_MS",
        value_delimiter = ','
    )]
    pub region_timeouts_ms: Vec<String>,
    /// TCP connect timeout to a node, ms.
    #[arg(long, env = "COUPON_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub connect_timeout_ms: u64,
    /// Requests in flight to one region before new ones wait.
    #[arg(long, env = "COUPON_MAX_IN_FLIGHT_PER_REGION", default_value_t = 512)]
    pub max_in_flight_per_region: usize,
    /// How long a request waits for a free in-flight place before 503, ms.
    #[arg(long, env = "COUPON_QUEUE_WAIT_MS", default_value_t = 250)]
    pub queue_wait_ms: u64,
    /// Interval of the credential check against every region's node, ms.
    #[arg(long, env = "COUPON_PEER_CHECK_MS", default_value_t = 2000)]
    pub peer_check_ms: u64,
}

impl RouterConfig {
    /// `region=value` pairs of a list flag.
    fn pairs(list: &[String]) -> impl Iterator<Item = (&str, &str)> {
        list.iter().filter_map(|p| p.split_once('='))
    }

    pub fn node_override(&self, region: &str) -> Option<String> {
        Self::pairs(&self.node_urls)
            .find(|(r, _)| *r == region)
            .map(|(_, u)| u.trim_end_matches('/').to_owned())
    }

    /// The rewrite of a node address the map names, if one is configured.
    pub fn node_rewrite(&self, map_url: &str) -> Option<String> {
        let map_url = map_url.trim_end_matches('/');
        Self::pairs(&self.node_urls)
            .find(|(k, _)| k.contains("://") && k.trim_end_matches('/') == map_url)
            .map(|(_, u)| u.trim_end_matches('/').to_owned())
    }

    pub fn timeout_for(&self, region: &str) -> Duration {
        let ms = Self::pairs(&self.region_timeouts_ms)
            .find(|(r, _)| *r == region)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(self.forward_timeout_ms);
        Duration::from_millis(ms)
    }
}
