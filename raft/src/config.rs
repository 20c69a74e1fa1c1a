//! Member configuration: CLI flags with `COUPON_RAFT_*` environment fallbacks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::types::NodeId;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() < 16 {
            return Err("secrets must be at least 16 characters".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// Everything a member needs to run. Every field has a flag and an env var.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// This member's raft id (stable; the data dir belongs to it).
    #[arg(long, env = "COUPON_RAFT_NODE_ID")]
    pub node_id: NodeId,
    /// Address to listen on.
    #[arg(long, env = "COUPON_RAFT_LISTEN", default_value = "127.0.0.1:7400")]
    pub listen: SocketAddr,
    /// Base URL other members use to reach this one (default `http://<listen>`).
    #[arg(long, env = "COUPON_RAFT_ADVERTISE")]
    pub advertise: Option<String>,
    /// Directory of the member's redb database.
    #[arg(long, env = "COUPON_RAFT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Shared cluster secret that signs member-to-member JWTs (HS256), ≥ 16 chars.
    #[arg(long, env = "COUPON_RAFT_SECRET", hide_env_values = true)]
    pub secret: Secret,
    /// Bearer token required on admin endpoints, ≥ 16 chars.
    #[arg(long, env = "COUPON_RAFT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Secret,
    /// Bearer token nodes renew region leases and complete takeovers with
    /// (narrower than the admin token), ≥ 16 chars. Without it only the
    /// admin token is accepted there.
    #[arg(long, env = "COUPON_RAFT_LEASE_TOKEN", hide_env_values = true)]
    pub lease_token: Option<Secret>,
    /// Region lease length L, ms: a node that had no renewal acknowledged
    /// for L − margin (from when it sent it) stops serving.
    #[arg(long, env = "COUPON_LEASE_MS", default_value_t = 4000)]
    pub lease_ms: u64,
    /// Safety margin for clock-rate drift and in-flight requests, ms: a
    /// takeover waits L + margin after the last renewal the leader saw.
    #[arg(long, env = "COUPON_LEASE_MARGIN_MS", default_value_t = 1000)]
    pub lease_margin_ms: u64,
    /// `auto`: the leader's failover controller takes over a region whose
    /// lease lapsed (only if it renewed as synchronous); `manual`: only
    /// `couponctl region failover` does.
    #[arg(long, env = "COUPON_FAILOVER", default_value = "auto")]
    pub failover: FailoverPolicy,
    /// Local IP outbound member connections bind to (multi-homed hosts, fault tests).
    #[arg(long, env = "COUPON_RAFT_SOURCE_IP")]
    pub source_ip: Option<IpAddr>,
    /// Leader heartbeat interval, ms (cross-region default).
    #[arg(long, env = "COUPON_RAFT_HEARTBEAT_MS", default_value_t = 500)]
    pub heartbeat_ms: u64,
    /// Minimum election timeout, ms.
    #[arg(long, env = "COUPON_RAFT_ELECTION_MIN_MS", default_value_t = 1500)]
    pub election_min_ms: u64,
    /// Maximum election timeout, ms.
    #[arg(long, env = "COUPON_RAFT_ELECTION_MAX_MS", default_value_t = 3000)]
    pub election_max_ms: u64,
    /// Take a snapshot after this many logs since the last one (LogsSinceLast).
    #[arg(long, env = "COUPON_RAFT_SNAPSHOT_LOGS", default_value_t = 1000)]
    pub snapshot_logs: u64,
    /// Logs kept after a snapshot before purging (lets slow followers catch up by log).
    #[arg(long, env = "COUPON_RAFT_KEEP_LOGS", default_value_t = 1000)]
    pub keep_logs: u64,
    /// Deadline for a linearizable read (ensure_linearizable retried until then), ms.
    #[arg(long, env = "COUPON_RAFT_READ_DEADLINE_MS", default_value_t = 3000)]
    pub read_deadline_ms: u64,
    /// How long a write may wait for commit before answering 503 (outcome unknown), ms.
    #[arg(long, env = "COUPON_RAFT_WRITE_TIMEOUT_MS", default_value_t = 5000)]
    pub write_timeout_ms: u64,
    /// Default and maximum long-poll wait of `GET /v1/cluster/map?since=`, ms.
    #[arg(long, env = "COUPON_RAFT_WATCH_TIMEOUT_MS", default_value_t = 25_000)]
    pub watch_timeout_ms: u64,
    /// Per-RPC timeout for member-to-member calls other than snapshots, ms.
    #[arg(long, env = "COUPON_RAFT_RPC_TIMEOUT_MS", default_value_t = 2000)]
    pub rpc_timeout_ms: u64,
}

/// Who may start a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailoverPolicy {
    Auto,
    Manual,
}

impl ServeConfig {
    /// How long after the last renewal it saw the leader may take a region over.
    pub fn takeover_after(&self) -> Duration {
        Duration::from_millis(self.lease_ms + self.lease_margin_ms)
    }

    /// The URL members and clients reach this member at.
    pub fn advertise_url(&self) -> String {
        match &self.advertise {
            Some(a) => a.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// openraft's config from ours.
    pub fn raft_config(&self) -> Result<openraft::Config, Box<openraft::ConfigError>> {
        openraft::Config {
            cluster_name: "coupon-map".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.keep_logs,
            install_snapshot_timeout: self.rpc_timeout_ms.max(1000),
            ..Default::default()
        }
        .validate()
        .map_err(Box::new)
    }

    pub fn read_deadline(&self) -> Duration {
        Duration::from_millis(self.read_deadline_ms)
    }
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    pub fn watch_timeout(&self) -> Duration {
        Duration::from_millis(self.watch_timeout_ms)
    }
}
