//! The region lease (docs/failover.md §2): this node serves a slot only while
//! a renewal it *sent* at time t was acknowledged by the raft group and
//! t + L − margin has not passed on its own monotonic clock. A node that is
//! cut off from raft, or paused longer than that, answers 503 `unavailable`
//! for every slot until a renewal succeeds again; the raft leader takes the
//! region over only after L + margin without a renewal on *its* clock, so
//! the old owner has stopped before the new one starts.
//!
//! A refusal that says the region was taken over (a takeover in progress,
//! or our database is on a replaced timeline) fences this node for good.

use super::replication;
use crate::error::ApiError;
use crate::metrics::Metrics;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lease and margin used until the group tells its own (first renewal).
const DEFAULT_LEASE_MS: u64 = 4000;
const DEFAULT_MARGIN_MS: u64 = 1000;
/// One member's answer to a renewal may take this long.
const RENEW_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct RegionLease {
    enabled: bool,
    base: Instant,
    /// Nanoseconds after `base` until which this node may serve (0: never).
    valid_until: AtomicU64,
    /// The group said this region was taken over: never serve again.
    fenced: AtomicBool,
}

impl RegionLease {
    fn new(enabled: bool) -> Arc<RegionLease> {
        Arc::new(RegionLease {
            enabled,
            base: Instant::now(),
            valid_until: AtomicU64::new(0),
            fenced: AtomicBool::new(false),
        })
    }

    /// A lease that is always held (standalone node, or leases not configured).
    pub fn disabled() -> Arc<RegionLease> {
        Self::new(false)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Ok while this node may serve.
    pub fn check(&self) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        if self.fenced.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable {
                what: "this region's old primary (taken over)",
            });
        }
        if self.now_ns() < self.valid_until.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(ApiError::Unavailable {
                what: "region lease",
            })
        }
    }

    /// Milliseconds of lease left (negative: lapsed), if leases are on.
    pub fn remaining_ms(&self) -> Option<i64> {
        if !self.enabled {
            return None;
        }
        let until = self.valid_until.load(Ordering::Acquire) as i64;
        Some((until - self.now_ns() as i64) / 1_000_000)
    }

    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    fn extend(&self, sent: Instant, lease_ms: u64, margin_ms: u64) {
        let until = sent.saturating_duration_since(self.base)
            + Duration::from_millis(lease_ms.saturating_sub(margin_ms));
        self.valid_until
            .fetch_max(until.as_nanos() as u64, Ordering::AcqRel);
    }
}

/// Where and how this node renews.
#[derive(Clone)]
pub struct Renewer {
    pub region: String,
    pub raft_urls: Vec<String>,
    pub token: String,
    pub db: PgPool,
    pub metrics: Arc<Metrics>,
}

/// Starts renewing; the returned lease is what `serve_slot` checks.
pub fn start(r: Renewer) -> Arc<RegionLease> {
    let lease = RegionLease::new(true);
    tokio::spawn(run(r, lease.clone()));
    lease
}

async fn run(r: Renewer, lease: Arc<RegionLease>) {
    let http = reqwest::Client::builder()
        .timeout(RENEW_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .expect("http client");
    let mut lease_ms = DEFAULT_LEASE_MS;
    let mut first = 0usize;
    let mut was_held = false;
    loop {
        let sent = Instant::now();
        match replication::status(&r.db).await {
            Ok(st) => {
                let read_status = sent.elapsed();
                replication::publish(&r.metrics, &st);
                let body = serde_json::json!({"region": r.region, "timeline": st.timeline,
                    "acked_lsn": st.acked_lsn(), "degraded": st.degraded});
                let n = r.raft_urls.len();
                for i in 0..n {
                    let url = &r.raft_urls[(first + i) % n];
                    match renew_once(&http, url, &r.token, &body).await {
                        Renewal::Ok { lease: l, margin } => {
                            // Judged before extending: a renewal acknowledged
                            // late heals the lapse it caused, and the check
                            // below the loop would never see it.
                            let took_ms = sent.elapsed().as_millis() as u64;
                            let status_ms = read_status.as_millis() as u64;
                            if was_held && lease.check().is_err() {
                                tracing::warn!(region = %r.region, took_ms, status_ms, member = %url,
                                    "region lease lapsed until this late renewal: answered 503 meanwhile");
                            } else if took_ms > l / 3 {
                                tracing::warn!(region = %r.region, took_ms, status_ms, member = %url,
                                    "slow region lease renewal");
                            }
                            lease.extend(sent, l, margin);
                            lease_ms = l;
                            first = (first + i) % n;
                            break;
                        }
                        Renewal::TakenOver(why) => {
                            if !lease.fenced.swap(true, Ordering::AcqRel) {
                                tracing::error!(region = %r.region, %why, "this region was taken over: this node stops serving for good");
                            }
                            break;
                        }
                        Renewal::Failed(why) => {
                            tracing::info!(region = %r.region, member = %url, %why,
                                took_ms = sent.elapsed().as_millis() as u64, "lease renewal failed at one member");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(region = %r.region, error = %e, "reading replication status for the lease")
            }
        }
        let held = lease.check().is_ok();
        if was_held && !held && !lease.fenced() {
            tracing::warn!(region = %r.region, "region lease lapsed: no renewal acknowledged in time; answering 503 until one is");
        }
        was_held = held;
        if let Some(ms) = lease.remaining_ms() {
            r.metrics
                .set_gauge("coupon_region_lease_remaining_ms", &[], ms as f64);
        }
        if lease.fenced() {
            return;
        }
        let period = Duration::from_millis(lease_ms / 3);
        tokio::time::sleep(period.saturating_sub(sent.elapsed())).await;
    }
}

enum Renewal {
    Ok { lease: u64, margin: u64 },
    TakenOver(String),
    Failed(String),
}

async fn renew_once(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &serde_json::Value,
) -> Renewal {
    let res = http
        .post(format!("{}/v1/lease/renew", base.trim_end_matches('/')))
        .bearer_auth(token)
        .json(body)
        .send()
        .await;
    let resp = match res {
        Ok(r) => r,
        Err(e) => return Renewal::Failed(e.to_string()),
    };
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if resp.status().is_success() {
        return Renewal::Ok {
            lease: header("coupon-lease-ms").unwrap_or(DEFAULT_LEASE_MS),
            margin: header("coupon-lease-margin-ms").unwrap_or(DEFAULT_MARGIN_MS),
        };
    }
    let status = resp.status();
    let problem: serde_json::Value = resp.json().await.unwrap_or_default();
    let code = problem["code"].as_str().unwrap_or_default();
    if matches!(code, "failover_in_progress" | "stale_timeline") {
        return Renewal::TakenOver(problem["detail"].as_str().unwrap_or(code).to_owned());
    }
    Renewal::Failed(format!("{status}: {problem}"))
}
