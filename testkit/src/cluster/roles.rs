//! Rejoin and failback on the local cluster (docs/failover.md §5). After a
//! takeover (or a planned switchover) a region's primary role is on one of
//! its two database copies: the home one (beside the region's own node) or
//! the standby one (hosted in the next region). [`LocalCluster::rejoin`]
//! rebuilds the other copy as the primary's synchronous standby from a
//! fresh base backup (never replaying what the old primary held alone),
//! restarts the node beside it (it idles: its database is in recovery) and
//! names it in raft as the region's standby; [`LocalCluster::revive`]
//! restarts the processes of a lost region that hold no primary role
//! (router, Redis, raft member, the standby it hosts for another region).

use super::{links::Links, LocalCluster};
use crate::KitError;
use serde_json::{json, Value};
use std::time::Duration;

/// Which copy of a region's database holds its primary role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Home,
    Standby,
}

/// Running (a SIGKILLed child not yet reaped is a zombie: not alive).
fn alive(pid: Option<u32>) -> bool {
    pid.is_some_and(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    })
}

impl LocalCluster {
    /// The raft map as any member serves it.
    pub async fn raft_map(&self) -> Result<Value, KitError> {
        let http = reqwest::Client::new();
        let mut last = String::new();
        for m in &self.raft {
            let url = format!("{}/v1/cluster/map?stale=ok", m.url());
            match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) => match r.json::<Value>().await {
                    Ok(v) => return Ok(v),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(KitError::Failed(format!("no raft member answered: {last}")))
    }

    /// Which copy holds `region`'s primary role now (None while a takeover
    /// is under way, or when the map names neither node).
    pub fn primary_side(&self, map: &Value, region: &str) -> Option<Side> {
        let busy = map["failovers"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["region"] == region && f["state"] == "failing_over")
        });
        if busy {
            return None;
        }
        let r = self.regions.get(region)?;
        let node = map["regions"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == region)?["node"]
            .as_str()?
            .trim_end_matches('/')
            .to_owned();
        if node == r.node_url() {
            Some(Side::Home)
        } else if r.standby.as_ref().is_some_and(|s| s.map_url == node) {
            Some(Side::Standby)
        } else {
            None
        }
    }

    /// Restarts the processes of `region` that died and hold no primary
    /// role: its router, Redis, raft member, and the standby database,
    /// Redis and node it hosts for another region. Its own node and
    /// database are [`rejoin`](Self::rejoin)'s business. Returns how many
    /// processes it started.
    pub async fn revive(&mut self, region: &str) -> Result<usize, KitError> {
        let mut n = 0;
        let names: Vec<String> = self.regions.keys().cloned().collect();
        for (i, m) in self.raft.iter_mut().enumerate() {
            if super::raft::member_region(&names, i as u64 + 1) == region && !alive(m.pid()) {
                m.restart().map_err(crate::io("restarting a raft member"))?;
                n += 1;
            }
        }
        let r = self.regions.get_mut(region).expect("region");
        if !alive(r.redis.pid()) {
            r.redis.restart()?;
            n += 1;
        }
        if !alive(r.router.pid()) {
            r.router
                .restart()
                .map_err(crate::io("restarting a router"))?;
            n += 1;
        }
        for o in self.regions.values_mut() {
            if let Some(sb) = o.standby.as_mut().filter(|sb| sb.host == region) {
                if !alive(sb.pg.pid()) {
                    sb.pg.restart()?;
                    n += 1;
                }
                if !alive(sb.redis.pid()) {
                    sb.redis.restart()?;
                    n += 1;
                }
                if !alive(sb.node.pid()) {
                    sb.node
                        .restart()
                        .map_err(crate::io("restarting a standby node"))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Rebuilds the copy of `region`'s database that does not hold the
    /// primary role as the primary's synchronous standby, restarts the node
    /// beside it and names it in raft. Returns false when there was nothing
    /// to do (no takeover happened, one is under way, or the standby is
    /// already named and streaming).
    pub async fn rejoin(&mut self, region: &str) -> Result<bool, KitError> {
        let map = self.raft_map().await?;
        let Some(side) = self.primary_side(&map, region) else {
            return Ok(false);
        };
        let named = map["regions"]
            .as_array()
            .and_then(|rs| rs.iter().find(|x| x["id"] == region))
            .is_some_and(|x| !x["standby"].is_null());
        let app = super::standby_name(region);
        let links = Links {
            net: self.net.clone(),
            faults: self.faults,
            latency: self.latency,
        };
        let r = self.regions.get_mut(region).expect("region");
        let Some(sb) = r.standby.as_mut() else {
            return Ok(false);
        };
        let (primary, target) = match side {
            Side::Home => (&r.pg, &mut sb.pg),
            Side::Standby => (&sb.pg, &mut r.pg),
        };
        // A primary that does not answer (the region is being lost right
        // now) is no source for a base backup, and its standby is the one
        // copy that matters: never touch it then.
        let Ok(streaming) = primary.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{app}' AND state = 'streaming'"
            ),
        ) else {
            return Ok(false);
        };
        if named && streaming.parse::<i64>().unwrap_or(0) > 0 {
            return Ok(false);
        }
        // The stream crosses regions: through a (delayed, faultable) link.
        let (from, to) = match side {
            Side::Home => (sb.host.clone(), region.to_owned()),
            Side::Standby => (region.to_owned(), sb.host.clone()),
        };
        self.rejoins += 1;
        let addr = links
            .link(
                &format!("rj{}pg:{from}->pg:{to}", self.rejoins),
                &from,
                &to,
                primary.port,
            )
            .await;
        target.rebuild_as_standby(addr.port(), &app)?;
        primary.require_sync_standby(&app)?;
        // The node beside the rebuilt copy idles as the standby node.
        let (node_url, host) = match side {
            Side::Home => {
                if !alive(sb.redis.pid()) {
                    sb.redis.restart()?;
                }
                sb.node
                    .restart()
                    .map_err(crate::io("restarting the standby node"))?;
                (sb.map_url.clone(), sb.host.clone())
            }
            Side::Standby => {
                if !alive(r.redis.pid()) {
                    r.redis.restart()?;
                }
                let url = r.node_url();
                r.node.restart().map_err(crate::io("restarting the node"))?;
                for n in &mut r.more_nodes {
                    n.restart().map_err(crate::io("restarting a node"))?;
                }
                (url, region.to_owned())
            }
        };
        let body = json!({"request_id": format!("rejoin-{region}-{}-{}", std::process::id(), self.rejoins),
            "region": region, "standby": {"host": host, "node": node_url}});
        let http = reqwest::Client::new();
        let mut last = String::new();
        for m in &self.raft {
            let res = http
                .post(format!("{}/v1/cluster/standby", m.url()))
                .bearer_auth(&self.admin_token)
                .json(&body)
                .timeout(Duration::from_secs(6))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(true),
                Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(KitError::Failed(format!(
            "naming the standby in raft: {last}"
        )))
    }
}
