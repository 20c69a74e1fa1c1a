//! Reading the group's state from the test: leaders, membership, maps, convergence.

use std::time::Duration;

use coupon_raft::map_view::MapView;
use serde_json::Value;

use crate::helpers::Cluster;

impl Cluster {
    pub async fn members_view(&self, id: u64) -> Option<Value> {
        let url = format!("{}/v1/cluster/members", self.member(id).url());
        self.http
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Waits until every running member names the same running leader; returns its id.
    pub async fn leader(&self) -> u64 {
        self.leader_among(&self.running_ids()).await
    }

    /// Waits until members `ids` all name the same leader, itself one of `ids`.
    pub async fn leader_among(&self, ids: &[u64]) -> u64 {
        self.eventually(
            "members agree on a leader",
            Duration::from_secs(15),
            || async {
                let mut leader = None;
                for &id in ids {
                    let l = self.members_view(id).await?["leader"].as_u64()?;
                    if !ids.contains(&l) || leader.is_some_and(|x| x != l) {
                        return None;
                    }
                    leader = Some(l);
                }
                leader
            },
        )
        .await
    }

    /// GET the map from member `id`; `query` like `stale=ok`. Err holds (status, body).
    pub async fn map(&self, id: u64, query: &str) -> Result<MapView, (u16, String)> {
        let url = format!("{}/v1/cluster/map?{query}", self.member(id).url());
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 200 {
            resp.json().await.map_err(|e| (0, e.to_string()))
        } else {
            Err((status, resp.text().await.unwrap_or_default()))
        }
    }

    /// Waits until every running member's local map has `version`; returns the maps.
    pub async fn converged(&self, version: u64) -> Vec<MapView> {
        let ids = self.running_ids();
        self.eventually(
            &format!("all members applied version {version}"),
            Duration::from_secs(15),
            || async {
                let mut maps = vec![];
                for &id in &ids {
                    let m = self.map(id, "stale=ok").await.ok()?;
                    if m.version != version {
                        return None;
                    }
                    maps.push(m);
                }
                Some(maps)
            },
        )
        .await
    }
}
