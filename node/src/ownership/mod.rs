//! This region's view of the ownership map (docs/architecture.md §2, §3.4): a watched
//! copy of the raft map, the sync that keeps `slot_ownership` in step with
//! it, the owner hint on 421 answers, and the slot mover of §7.

pub mod guard;
pub mod lease;
pub mod mover;
pub mod pg;
pub mod replication;
pub mod standby;
pub mod sync;
pub mod takeover;
pub mod view;
pub mod warm;

use coupon_core::service_token::KeyRing;
use coupon_raft::client::{MapClient, MapClientOptions};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Pause between attempts to reach the raft group at start.
const CONNECT_RETRY: Duration = Duration::from_millis(500);

/// Multi-region settings of a node. Without raft URLs the node is a
/// standalone region that owns its bootstrap slots.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegionsConfig {
    /// Raft members serving the ownership map, comma separated. When set,
    /// `slot_ownership` follows the map and no slots are bootstrapped.
    #[arg(long = "raft-urls", env = "COUPON_RAFT_URLS", value_delimiter = ',')]
    pub raft_urls: Vec<String>,
    /// Directory of `<kid>.pub.pem` files: the public keys regions sign
    /// service tokens with. Without it, any request carrying a service
    /// token is refused (401).
    #[arg(long, env = "COUPON_SERVICE_KEYS_DIR")]
    pub service_keys_dir: Option<PathBuf>,
    /// Token this node renews its region's lease (and completes a takeover)
    /// with in the raft group. Without it the node holds no lease: it is
    /// never taken over automatically, and never stops on its own.
    #[arg(long, env = "COUPON_RAFT_LEASE_TOKEN", hide_env_values = true)]
    pub lease_token: Option<crate::config::Secret>,
    /// The URL the ownership map names this node by (a standby node checks
    /// a takeover names it before acting).
    #[arg(long, env = "COUPON_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegionalError {
    #[error("loading service keys: {0}")]
    Keys(#[from] coupon_core::service_token::ServiceTokenError),
}

/// Map cache, key ring and sync progress of this node's region.
pub struct Regional {
    region: String,
    configured: bool,
    maps: tokio::sync::OnceCell<MapClient>,
    keyring: Option<KeyRing>,
    synced_version: AtomicU64,
    /// The node's in-memory copy of the table, and the reload of it that
    /// must have happened before the node is ready: one started after the
    /// sync's last commit (until then the copy may not show what the map
    /// gave this region, and readiness would see no slot warming).
    view: Arc<view::OwnedSlots>,
    view_needed: AtomicU64,
}

impl Regional {
    /// Loads the key ring and, with raft URLs, starts connecting to the map
    /// and syncing `slot_ownership` in the background.
    pub fn start(
        cfg: &RegionsConfig,
        region: &str,
        db: PgPool,
        view: Arc<view::OwnedSlots>,
    ) -> Result<Arc<Regional>, RegionalError> {
        let keyring = match &cfg.service_keys_dir {
            Some(dir) => Some(KeyRing::load_dir(dir, region)?),
            None => None,
        };
        let r = Arc::new(Regional {
            region: region.to_owned(),
            configured: !cfg.raft_urls.is_empty(),
            maps: tokio::sync::OnceCell::new(),
            keyring,
            synced_version: AtomicU64::new(0),
            view,
            view_needed: AtomicU64::new(0),
        });
        if r.configured {
            tokio::spawn(connect_and_sync(r.clone(), cfg.raft_urls.clone(), db));
        }
        Ok(r)
    }

    /// True when ownership follows a raft map (no standalone bootstrap).
    pub fn configured(&self) -> bool {
        self.configured
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The watched map, once connected.
    pub fn maps(&self) -> Option<&MapClient> {
        self.maps.get()
    }

    pub fn keyring(&self) -> Option<&KeyRing> {
        self.keyring.as_ref()
    }

    /// Map version last applied to `slot_ownership` (0 = never).
    pub fn synced_version(&self) -> u64 {
        self.synced_version.load(Ordering::Relaxed)
    }

    /// What keeps this node from being ready, by name.
    pub fn not_ready(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.configured {
            if self.maps().is_none() {
                out.push("ownership map (raft)");
            } else if self.synced_version() == 0
                || !self
                    .view
                    .loaded_since(self.view_needed.load(Ordering::Acquire))
            {
                out.push("slot ownership sync");
            }
        }
        out
    }
}

async fn connect_and_sync(r: Arc<Regional>, urls: Vec<String>, db: PgPool) {
    let opts = MapClientOptions::default();
    let maps = loop {
        match MapClient::connect(urls.clone(), opts.clone()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!(region = %r.region, error = %e, "ownership map not reachable yet");
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        }
    };
    let _ = r.maps.set(maps.clone());
    sync::run(&r, &maps, &db).await;
}
