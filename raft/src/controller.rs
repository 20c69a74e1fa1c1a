//! The failover controller (docs/failover.md): runs on every member, acts
//! only while this member is the leader. A region whose lease the leader has
//! not seen renewed for L + margin — counted from the later of the last
//! renewal it applied and the moment it became leader, both on its own
//! monotonic clock — is taken over by its standby: the controller commits
//! `BeginFailover` naming the lease sequence it judged, so a renewal that
//! lands meanwhile makes the command fail instead of racing it.

use std::collections::HashMap;
use std::time::Duration;

use openraft::ServerState;
use tokio::time::Instant;

use crate::config::FailoverPolicy;
use crate::http::AppState;
use crate::model::{ClusterMap, FailoverState, RegionId};
use crate::state_machine::{Command, Request};

const TICK: Duration = Duration::from_millis(250);

/// One region's lease as the leader judges it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseJudgement {
    pub region: RegionId,
    pub seq: u64,
    pub timeline: u64,
    pub acked_lsn: u64,
    pub degraded: bool,
    /// Since the last renewal this member applied (or since it became
    /// leader, if later), ms.
    pub silent_ms: u64,
    /// True once a takeover may start.
    pub lapsed: bool,
}

/// Judges every region's lease from this member's clock.
pub fn judge(s: &AppState, leader_since: Option<Instant>) -> Vec<LeaseJudgement> {
    let map = s.sm.current_map();
    let seen = s.sm.lease_seen();
    let now = std::time::Instant::now();
    let since_lead = leader_since.map(|t| t.into_std());
    map.leases
        .iter()
        .map(|(r, l)| {
            let mut from = match seen.get(r) {
                Some((seq, at)) if *seq == l.seq => Some(*at),
                _ => None,
            };
            if let Some(t) = since_lead {
                from = Some(from.map_or(t, |f| f.max(t)));
            }
            // Never seen and not leader: count from now (not lapsed).
            let silent = from.map_or(Duration::ZERO, |f| now.saturating_duration_since(f));
            LeaseJudgement {
                region: r.clone(),
                seq: l.seq,
                timeline: l.timeline,
                acked_lsn: l.acked_lsn,
                degraded: l.degraded,
                silent_ms: silent.as_millis() as u64,
                lapsed: since_lead.is_some() && silent > s.cfg.takeover_after(),
            }
        })
        .collect()
}

/// Regions a takeover may start for now, with the lease sequence judged.
fn due(map: &ClusterMap, judged: &[LeaseJudgement]) -> Vec<(RegionId, u64)> {
    judged
        .iter()
        .filter(|j| j.lapsed && !j.degraded)
        .filter(|j| {
            map.region(&j.region).is_some_and(|r| r.standby.is_some())
                && !map
                    .failovers
                    .get(&j.region)
                    .is_some_and(|f| f.state == FailoverState::FailingOver)
        })
        .map(|j| (j.region.clone(), j.seq))
        .collect()
}

/// When this member became leader, as the controller tracks it.
pub type LeaderSince = std::sync::Arc<std::sync::Mutex<Option<Instant>>>;

pub async fn run(s: AppState, leader_since: LeaderSince) {
    let mut tried: HashMap<(RegionId, u64), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let leading = s.raft.metrics().borrow().state == ServerState::Leader;
        let since = {
            let mut g = leader_since.lock().unwrap_or_else(|p| p.into_inner());
            match (leading, *g) {
                (true, None) => *g = Some(Instant::now()),
                (false, Some(_)) => *g = None,
                _ => {}
            }
            *g
        };
        if !leading || s.cfg.failover == FailoverPolicy::Manual {
            continue;
        }
        let map = s.sm.current_map();
        for (region, seq) in due(&map, &judge(&s, since)) {
            // One attempt per judged lease every few seconds is plenty.
            if tried
                .get(&(region.clone(), seq))
                .is_some_and(|t| t.elapsed() < Duration::from_secs(3))
            {
                continue;
            }
            tried.insert((region.clone(), seq), Instant::now());
            tracing::warn!(%region, seq, "region lease lapsed: starting a takeover by its standby");
            let req = Request {
                request_id: format!("failover-{region}-{seq}"),
                command: Command::BeginFailover {
                    region: region.clone(),
                    lease_seq: Some(seq),
                    planned: false,
                },
            };
            match s.raft.client_write(req).await {
                Ok(r) => match r.data.result {
                    Some(Ok(_)) => tracing::warn!(%region, "takeover begun"),
                    Some(Err(e)) => tracing::info!(%region, error = %e, "takeover not begun"),
                    None => {}
                },
                Err(e) => tracing::warn!(%region, error = %e, "proposing the takeover failed"),
            }
        }
    }
}
