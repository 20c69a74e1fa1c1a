//! Shared state of the router: the map cache (raft watch), owner hints from
//! 421 answers, the service-token signer, per-region in-flight caps, peer
//! credential status and metrics.

use crate::config::RouterConfig;
use coupon_core::metrics::Metrics;
use coupon_core::service_token::{ServiceTokenError, Signer};
use coupon_raft::client::{MapClient, MapClientOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// Pause between attempts to reach the raft group at start.
const CONNECT_RETRY: Duration = Duration::from_millis(500);

/// An owner learned from a node's 421, newer than the cached map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub region: String,
    pub epoch: u64,
}

/// Result of the last credential check against a region's node.
#[derive(Debug, Clone)]
pub enum PeerStatus {
    Ok,
    /// The node answered 401 to our service token.
    Rejected(String),
    Unreachable(String),
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub cfg: RouterConfig,
    pub maps: OnceCell<MapClient>,
    pub hints: Mutex<HashMap<u16, Hint>>,
    pub signer: Signer,
    pub http: reqwest::Client,
    /// Forwarding to nodes: pooled keep-alive HTTP/1.1 connections.
    pub fwd: crate::forward::Client,
    pub in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    pub peers: Mutex<BTreeMap<String, (Instant, PeerStatus)>>,
    pub metrics: Metrics,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state and starts the map watch and the peer checks.
    pub fn start(cfg: RouterConfig) -> Result<AppState, ServiceTokenError> {
        let signer = Signer::load(&cfg.service_key, &cfg.service_kid, &cfg.region, "router")?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .expect("reqwest client");
        let fwd = crate::forward::client(Duration::from_millis(cfg.connect_timeout_ms));
        let state = AppState(Arc::new(Inner {
            fwd,
            cfg,
            maps: OnceCell::new(),
            hints: Mutex::default(),
            signer,
            http,
            in_flight: Mutex::default(),
            peers: Mutex::default(),
            metrics: Metrics::default(),
        }));
        tokio::spawn(connect(state.clone()));
        Ok(state)
    }

    pub fn region(&self) -> &str {
        &self.cfg.region
    }

    pub fn maps(&self) -> Option<&MapClient> {
        self.maps.get()
    }

    /// The in-flight cap of `region`.
    pub fn cap(&self, region: &str) -> Arc<Semaphore> {
        let mut m = self.in_flight.lock().expect("in-flight lock");
        m.entry(region.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_in_flight_per_region)))
            .clone()
    }

    /// The URL of `region`'s node: the configured override, else the map's.
    pub fn node_url(&self, region: &str) -> Option<String> {
        if let Some(u) = self.cfg.node_override(region) {
            return Some(u);
        }
        let map = self.maps()?.current();
        let r = map.regions.iter().find(|r| r.id.as_str() == region)?;
        if let Some(u) = self.cfg.node_rewrite(&r.node) {
            return Some(u);
        }
        Some(r.node.trim_end_matches('/').to_owned())
    }

    /// Remembers a node's owner hint and refreshes the map in the background.
    pub fn learn(&self, slot: u16, hint: Hint) {
        self.hints.lock().expect("hints lock").insert(slot, hint);
        if let Some(maps) = self.maps().cloned() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), maps.refresh()).await;
            });
        }
    }
}

async fn connect(state: AppState) {
    let maps = loop {
        match MapClient::connect(state.cfg.raft_urls.clone(), MapClientOptions::default()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!(region = %state.region(), error = %e, "ownership map not reachable yet");
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        }
    };
    let _ = state.maps.set(maps);
    tracing::info!(region = %state.region(), "ownership map loaded");
    crate::health::run(state).await;
}
