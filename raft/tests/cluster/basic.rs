//! Init, identical maps everywhere, restart of the whole group, auth of raft RPCs.

use coupon_raft::model::SlotState;

use crate::helpers::{Cluster, Opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_gives_every_slot_an_owner_at_epoch_one_and_the_same_map_on_every_member() {
    let c = Cluster::start(3, Opts::default()).await;
    c.init_map(2, 1024).await;
    let maps = c.converged(1).await;
    let regions = ["us", "eu", "ap"];
    for (i, s) in maps[0].slots.iter().enumerate() {
        assert_eq!(s.slot as usize, i);
        assert_eq!(s.region.as_str(), regions[i % 3]);
        assert_eq!((s.epoch, s.state), (1, SlotState::Active));
    }
    assert_eq!(maps[0].slots.len(), 1024);
    assert!(
        maps.iter().all(|m| m == &maps[0]),
        "members serve different maps"
    );
    for id in [1, 2, 3] {
        let m = c.map(id, "").await.expect("linearizable read");
        assert_eq!(m, maps[0], "linearizable read on member {id}");
    }
    let err = c
        .admin(1)
        .init("init-2", &[crate::helpers::region("xx")], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("already_initialized"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_all_members_keeps_the_map_and_version() {
    let mut c = Cluster::start(
        3,
        Opts {
            snapshot_logs: 10,
            keep_logs: 3,
        },
    )
    .await;
    c.init_map(1, 64).await;
    let v = c.bump(1, "pre", 8).await;
    let before = c.converged(v).await.remove(0);
    for id in [1, 2, 3] {
        c.kill(id);
    }
    for id in [1, 2, 3] {
        c.start_member(id).await;
    }
    c.leader().await;
    let after = c.converged(v).await;
    assert!(
        after.iter().all(|m| m == &before),
        "map changed across a full restart"
    );
    assert_eq!(c.map(3, "").await.expect("linearizable read"), before);
    let v2 = c.bump(2, "post", 1).await;
    assert_eq!(v2, v + 2, "writes continue after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_without_a_valid_member_token_are_refused_and_counted() {
    let c = Cluster::start(3, Opts::default()).await;
    let url = format!("{}/v1/raft/vote", c.member(1).url());
    let bad = c
        .http
        .post(&url)
        .bearer_auth("not-a-jwt")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = c.http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(none.status(), 401);
    let problem: serde_json::Value = none.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized");
    let metrics = c
        .http
        .get(format!("{}/metrics", c.member(1).url()))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("coupon_raft_auth_failures_total{kind=\"member\"} 2"),
        "{text}"
    );
    let admin = c
        .http
        .post(format!("{}/v1/cluster/init", c.member(1).url()))
        .body("{}");
    assert_eq!(admin.send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_on_the_next_version_or_after_its_timeout() {
    let c = Cluster::start(3, Opts::default()).await;
    c.init_map(1, 32).await;
    let leader = c.leader().await;
    let follower = [1, 2, 3].into_iter().find(|&i| i != leader).unwrap();

    let t = std::time::Instant::now();
    let m = c.map(follower, "since=1&timeout_ms=400").await.unwrap();
    assert_eq!(m.version, 1);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(400),
        "returned before its timeout"
    );

    let poll = {
        let url = format!(
            "{}/v1/cluster/map?since=1&timeout_ms=10000",
            c.member(follower).url()
        );
        let http = c.http.clone();
        tokio::spawn(async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "long-poll answered before any change");
    let t = std::time::Instant::now();
    c.admin(leader).begin_move("lp-1", 0, "eu").await.unwrap();
    let m = poll.await.unwrap().unwrap();
    assert_eq!(m["version"], 2);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "long-poll was not woken by apply"
    );
    let bad = c.map(follower, "stale=maybe").await.unwrap_err();
    assert_eq!(bad.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_secret_is_refused_counted_and_fails_readiness() {
    let mut c = Cluster::start(3, Opts::default()).await;
    let leader = c.leader().await;
    c.add_member_process(4, "a-wrong-cluster-secret-000000")
        .await;
    let addr = c.member(4).member_addr();
    let admin = c.admin(leader);
    // The learner never catches up: every RPC to it is refused. Do not wait for it.
    let add = tokio::spawn(async move { admin.add_learner(4, &addr).await });
    let url4 = format!("{}/metrics", c.member(4).url());
    let url_leader = c.member(leader).url();
    c.eventually(
        "member 4 refused and counted raft RPCs",
        std::time::Duration::from_secs(10),
        || async {
            let text = c.http.get(&url4).send().await.ok()?.text().await.ok()?;
            let line = text.lines().find(|l| l.contains("kind=\"member\""))?;
            (line.split(' ').nth(1)?.parse::<u64>().ok()? > 0).then_some(())
        },
    )
    .await;
    c.eventually(
        "the leader reports not ready",
        std::time::Duration::from_secs(10),
        || async {
            let r = c
                .http
                .get(format!("{url_leader}/readyz"))
                .send()
                .await
                .ok()?;
            let status = r.status();
            let body = r.text().await.ok()?;
            (status == 503 && body.contains("refused our member token")).then_some(())
        },
    )
    .await;
    add.abort();
}
