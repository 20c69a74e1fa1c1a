//! Snapshots and compaction; a learner that catches up from a snapshot, promotion, removal.

use std::time::Duration;

use crate::helpers::{Cluster, Opts};

/// Reads one gauge from a member's /metrics.
async fn gauge(c: &Cluster, id: u64, name: &str) -> Option<i64> {
    let url = format!("{}/metrics", c.member(id).url());
    let text = c.http.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l[name.len() + 1..].trim().parse().ok())
}

fn ids(v: &serde_json::Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_from_a_snapshot_is_promoted_and_a_member_is_removed() {
    let mut c = Cluster::start(
        3,
        Opts {
            snapshot_logs: 10,
            keep_logs: 2,
        },
    )
    .await;
    c.init_map(1, 256).await;
    let v = c.bump(1, "fill", 15).await;
    let leader = c.leader().await;
    let purged = c
        .eventually(
            "the leader snapshotted and purged its log",
            Duration::from_secs(10),
            || async {
                let snap = gauge(&c, leader, "coupon_raft_snapshot_index").await?;
                let purged = gauge(&c, leader, "coupon_raft_purged_index").await?;
                (snap >= 20 && purged > 0).then_some(purged)
            },
        )
        .await;

    c.add_member_process(4, crate::helpers::SECRET).await;
    let addr = c.member(4).member_addr();
    c.admin(2).add_learner(4, &addr).await.expect("add learner");
    let maps = c.converged(v).await;
    assert!(maps.iter().all(|m| m == &maps[0]));
    let snap4 = gauge(&c, 4, "coupon_raft_snapshot_index").await.unwrap();
    assert!(
        snap4 >= purged,
        "learner did not install a snapshot (snapshot index {snap4})"
    );

    let view = c.admin(3).promote(&[4]).await.expect("promote");
    assert_eq!(ids(&view, "voters"), vec![1, 2, 3, 4]);

    let gone = [1, 2, 3].into_iter().find(|&i| i != leader).unwrap();
    let view = c.admin(leader).remove(gone).await.expect("remove");
    assert_eq!(ids(&view, "voters").len(), 3);
    assert!(!ids(&view, "voters").contains(&gone));
    c.kill(gone);

    let v2 = c.bump(4, "after", 2).await;
    let maps = c.converged(v2).await;
    assert_eq!(maps.len(), 3);
    assert!(maps.iter().all(|m| m == &maps[0]));
}
