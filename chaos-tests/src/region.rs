//! Region-level faults and reads for the region-loss scenarios: kill every
//! process that runs in a region, read leases and takeovers from raft, and
//! point the checker at the databases that survived.

use crate::Harness;
use coupon_raft::map_view::MapView;
use coupon_testkit::procs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// SIGKILLs every process of `region`: router, node(s), Postgres primary,
/// Redis, its raft member and the standby it hosts for another region.
/// Returns how many processes it killed.
pub fn kill_region(h: &Harness, region: &str) -> usize {
    let regions: Vec<String> = h.cluster.regions.keys().cloned().collect();
    let mut n = 0;
    let mut kill_pid = |pid: Option<u32>| {
        if let Some(p) = pid {
            n += usize::from(procs::signal(p, libc::SIGKILL));
        }
    };
    for (i, m) in h.cluster.raft.iter().enumerate() {
        if coupon_testkit::cluster::raft::member_region(&regions, i as u64 + 1) == region {
            kill_pid(m.pid());
        }
    }
    let r = h.cluster.region(region);
    kill_pid(r.router.pid());
    for node in r.nodes() {
        kill_pid(node.pid());
    }
    kill_pid(r.pg.pid());
    kill_pid(r.redis.pid());
    for o in h.cluster.regions.values() {
        if let Some(sb) = o.standby.as_ref().filter(|sb| sb.host == region) {
            kill_pid(sb.node.pid());
            kill_pid(sb.pg.pid());
            kill_pid(sb.redis.pid());
        }
    }
    n
}

/// GET `path` from the first raft member that answers it with a success.
async fn from_raft<T: serde::de::DeserializeOwned>(h: &Harness, path: &str) -> Option<T> {
    for m in &h.cluster.raft {
        let res = h
            .http
            .get(format!("{}{path}", m.url()))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(r) = res.and_then(|r| r.error_for_status()) {
            if let Ok(v) = r.json::<T>().await {
                return Some(v);
            }
        }
    }
    None
}

/// The raft map, read from any member that answers.
pub async fn map(h: &Harness) -> Option<MapView> {
    from_raft(h, "/v1/cluster/map?stale=ok").await
}

/// The leader's judgement of every lease (`GET /v1/cluster/leases`).
pub async fn leases(h: &Harness) -> Option<Value> {
    from_raft(h, "/v1/cluster/leases").await
}

/// True once the map names `region`'s standby node as its node.
pub async fn taken_over(h: &Harness, region: &str) -> bool {
    let Some(sb) = h.cluster.region(region).standby.as_ref() else {
        return false;
    };
    map(h).await.is_some_and(|m| {
        m.regions
            .iter()
            .any(|r| r.id.as_str() == region && r.node == sb.map_url)
    })
}

/// Waits up to `limit` for the takeover of `region`; returns how long it took.
pub async fn wait_taken_over(h: &Harness, region: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    while !taken_over(h, region).await {
        assert!(
            started.elapsed() < limit,
            "region {region} not taken over within {limit:?} (seed {}, logs in {})",
            h.seed,
            h.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Every region's database as it stands after `lost` were taken over: the
/// promoted standby in place of each lost primary.
pub fn surviving_db_urls(h: &Harness, lost: &[&str]) -> BTreeMap<String, String> {
    h.cluster
        .regions
        .iter()
        .map(|(r, p)| {
            let url = match p.standby.as_ref().filter(|_| lost.contains(&r.as_str())) {
                Some(sb) => sb.pg.url("coupon"),
                None => p.db_url(),
            };
            (r.clone(), url)
        })
        .collect()
}

/// The takeover of `region` as the checker's history needs it: every slot
/// it covered changed epoch (same region, its standby now) between
/// `began_at` (the kill, the cut) and `completed_at` (the map showed it).
pub async fn takeover_moves(
    h: &Harness,
    region: &str,
    began_at: chrono::DateTime<chrono::Utc>,
    completed_at: chrono::DateTime<chrono::Utc>,
) -> Vec<crate::checker::Move> {
    let map = map(h).await.expect("raft map");
    let rec = map
        .failovers
        .iter()
        .find(|f| f.region.as_str() == region)
        .expect("a takeover record");
    rec.slots
        .iter()
        .map(|(slot, epoch)| crate::checker::Move {
            slot: *slot as u16,
            from: region.to_owned(),
            to: region.to_owned(),
            new_epoch: *epoch as i64,
            began_at,
            completed_at,
        })
        .collect()
}

/// One validate of `code` at `base` (a router or a node): status and when
/// it was answered.
pub async fn validate(
    h: &Harness,
    base: &str,
    user: &str,
    code: &str,
) -> (u16, chrono::DateTime<chrono::Utc>) {
    let token = h.issuer.user(user);
    let status = h
        .http
        .post(format!("{base}/v1/coupons/validate"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, chrono::Utc::now())
}

/// Waits up to `limit` until `code` is answered (anything but a 503 or a
/// dropped call) by a validate through each router of `via`. A takeover or
/// a move is complete in the map before the new node has followed it and
/// warmed the slot (a bounded 503 with `Retry-After` meanwhile); scenarios
/// that judge the state after it start from here, as a client honouring
/// `Retry-After` would.
pub async fn wait_served(h: &Harness, via: &[&str], code: &str, limit: Duration) {
    let started = Instant::now();
    for region in via {
        loop {
            let (status, _) = validate(h, &h.router(region), "served-probe", code).await;
            if status != 503 && status != 0 {
                break;
            }
            assert!(
                started.elapsed() < limit,
                "{code} still {status} through {region} {limit:?} after the change (seed {}, logs in {})",
                h.seed,
                h.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
