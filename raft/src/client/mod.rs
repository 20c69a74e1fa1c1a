//! Client library for routers and nodes: a cached ownership map kept fresh by a long-poll
//! watch loop that fails over between raft members, plus an admin client.

mod admin;
mod error;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{AdminClient, WriteOutcome};
pub use error::ClientError;

use crate::map_view::{MapView, SlotView};
use crate::model::{RegionId, SlotState};

/// Tuning of a [`MapClient`].
#[derive(Debug, Clone)]
pub struct MapClientOptions {
    /// Long-poll wait per request (the server caps it at its own watch timeout).
    pub poll_timeout: Duration,
    /// Pause before trying the next member after a failure.
    pub retry_backoff: Duration,
    /// Extra time allowed per request beyond `poll_timeout` (leadership check, forwarding).
    pub request_margin: Duration,
    /// Read with `stale=ok` (no leadership check; faster, may lag).
    pub stale: bool,
}

impl Default for MapClientOptions {
    fn default() -> Self {
        Self {
            poll_timeout: Duration::from_secs(25),
            retry_backoff: Duration::from_millis(200),
            request_margin: Duration::from_secs(5),
            stale: false,
        }
    }
}

/// Owner of one slot as the cached map says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotOwner {
    pub region: RegionId,
    pub epoch: u64,
    pub state: SlotState,
}

struct Shared {
    urls: Vec<String>,
    http: reqwest::Client,
    opts: MapClientOptions,
    next: AtomicUsize,
    tx: watch::Sender<Arc<MapView>>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A cached, watched copy of the ownership map. Clones share the cache and the watch loop,
/// which stops when the last clone is dropped.
#[derive(Clone)]
pub struct MapClient {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

impl Shared {
    async fn fetch(&self, idx: usize, since: Option<u64>) -> Result<MapView, ClientError> {
        let base = &self.urls[idx % self.urls.len()];
        let mut url = format!("{base}/v1/cluster/map?");
        let mut timeout = self.opts.request_margin;
        if let Some(v) = since {
            let ms = self.opts.poll_timeout.as_millis();
            url.push_str(&format!("since={v}&timeout_ms={ms}&"));
            timeout += self.opts.poll_timeout;
        }
        if self.opts.stale {
            url.push_str("stale=ok");
        }
        let resp = self.http.get(url).timeout(timeout).send().await?;
        admin::decode(resp).await
    }

    /// Tries every member once, starting with the last one that answered.
    async fn fetch_any(&self) -> Result<MapView, ClientError> {
        let start = self.next.load(Ordering::Relaxed);
        let mut last = ClientError::NoMembers;
        for i in 0..self.urls.len() {
            match self.fetch(start + i, None).await {
                Ok(v) => {
                    self.next
                        .store((start + i) % self.urls.len(), Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Publishes `view` if it is newer than the cached map (the cache never goes back).
    fn offer(&self, view: MapView) -> Arc<MapView> {
        self.tx.send_if_modified(|cur| {
            if view.version > cur.version {
                *cur = Arc::new(view);
                true
            } else {
                false
            }
        });
        self.tx.borrow().clone()
    }

    async fn watch_loop(self: Arc<Self>) {
        loop {
            let idx = self.next.load(Ordering::Relaxed);
            let since = self.tx.borrow().version;
            match self.fetch(idx, Some(since)).await {
                Ok(view) => {
                    self.offer(view);
                }
                Err(e) => {
                    tracing::debug!(error = %e, member = %self.urls[idx % self.urls.len()], "map watch failed; trying the next member");
                    self.next
                        .store((idx + 1) % self.urls.len(), Ordering::Relaxed);
                    tokio::time::sleep(self.opts.retry_backoff).await;
                }
            }
        }
    }
}

impl MapClient {
    /// Fetches the map from any of `urls` (member base URLs) and starts watching it.
    pub async fn connect(urls: Vec<String>, opts: MapClientOptions) -> Result<Self, ClientError> {
        if urls.is_empty() {
            return Err(ClientError::NoMembers);
        }
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
        let (tx, _) = watch::channel(Arc::new(MapView {
            version: 0,
            regions: vec![],
            slots: vec![],
            moves: vec![],
            failovers: vec![],
        }));
        let shared = Arc::new(Shared {
            urls,
            http,
            opts,
            next: AtomicUsize::new(0),
            tx,
        });
        let first = shared.fetch_any().await?;
        shared.offer(first);
        let task = tokio::spawn(shared.clone().watch_loop());
        Ok(Self {
            shared,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// The cached map.
    pub fn current(&self) -> Arc<MapView> {
        self.shared.tx.borrow().clone()
    }

    /// Owner, epoch and state of `slot` in the cached map.
    pub fn owner_of(&self, slot: u32) -> Option<SlotOwner> {
        let map = self.current();
        map.slot(slot).map(|s: &SlotView| SlotOwner {
            region: s.region.clone(),
            epoch: s.epoch,
            state: s.state,
        })
    }

    /// A receiver notified on every newer map version.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MapView>> {
        self.shared.tx.subscribe()
    }

    /// Fetches the map now (e.g. after a 421 hint) and returns the newest known map.
    pub async fn refresh(&self) -> Result<Arc<MapView>, ClientError> {
        let view = self.shared.fetch_any().await?;
        Ok(self.shared.offer(view))
    }
}
