//! Guards a move through the crash of anything but the mover
//! (docs/architecture.md §7), under paced load through three routers:
//! - the raft leader SIGKILLed after the target activated, before
//!   `CompleteMove`: the re-run completes through the other members (the
//!   admin client knows every member; the write is deduplicated);
//! - the old owner's node (`eu`) SIGKILLed after the freeze: the move (which
//!   talks to the stores, not the nodes) completes; the restarted node
//!   answers 421 for the slot it lost;
//! - the new owner's node (`ap`) SIGKILLed after activation: the move
//!   completes; the restarted node warms the slot up and serves it.
//!
//! After each, one store holds the slot active at the map's epoch; at the
//! end the checker judges every record against the three moves.

use super::helpers::{attempts, check, eventually, get_json, tally, US_CODE, US_SLOT};
use coupon_chaos_tests::checker::Move;
use coupon_chaos_tests::moves::{active_owners, admin, stores};
use coupon_chaos_tests::workload::{paced, redeem, retry_ambiguous, shared_campaign};
use coupon_chaos_tests::Harness;
use coupon_node::ownership::mover::{self, MoveError, Options, Outcome, Step};
use std::time::Duration;

/// Drives a move to `step` and leaves it there (as a mover crash would).
async fn stopped_at(h: &Harness, to: &str, step: Step) {
    let stores = stores(h).await;
    let opts = Options {
        stop_after: Some(step),
    };
    match mover::move_slot(&admin(h), &stores, US_SLOT, to, &opts).await {
        Err(MoveError::Stopped(s)) => assert_eq!(s, step),
        other => panic!("the mover should stop after {step:?}: {other:?}"),
    }
}

/// Finishes the slot's unfinished move; returns its report.
async fn finish(h: &Harness) -> mover::MoveReport {
    let stores = stores(h).await;
    let r = mover::resume(&admin(h), &stores, US_SLOT, false, &Options::default())
        .await
        .expect("the re-run finishes the move")
        .expect("an unfinished move");
    assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
    r
}

async fn node_ready(h: &Harness, region: &str) {
    let (http, node) = (h.http.clone(), h.node(region));
    eventually(Duration::from_secs(30), "node ready again", || {
        let (http, node) = (http.clone(), node.clone());
        async move { get_json(&http, &format!("{node}/readyz")).await.0 == 200 }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_survives_the_raft_leader_and_either_node_being_killed() {
    let mut h = Harness::start("move-kills").await;
    shared_campaign(&h, "us", US_CODE, 2_000).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], US_CODE, "mk", 150);
    let load = paced(&h, plan.clone(), 8, Duration::from_millis(50));
    let faults = async {
        let mut moves = Vec::new();
        // 1. Raft leader killed between activation and complete.
        h.when_in_flight(1).await;
        let began_at = chrono::Utc::now();
        let w = h.timeline.begin("raft leader killed before complete_move");
        stopped_at(&h, "eu", Step::Activated).await;
        let raft0 = h.cluster.raft[0].url();
        let (_, m) = get_json(&h.http, &format!("{raft0}/v1/cluster/members")).await;
        let leader = m["leader"].as_u64().expect("a leader") as usize;
        let pid = h.cluster.raft[leader - 1].pid().expect("leader pid");
        assert!(coupon_testkit::procs::signal(pid, libc::SIGKILL));
        let r = finish(&h).await;
        h.timeline.end(w);
        assert_eq!((r.to.as_str(), r.new_epoch), ("eu", 2));
        assert_eq!(active_owners(&h, US_SLOT).await, vec![("eu".to_owned(), 2)]);
        moves.push(Move {
            slot: US_SLOT,
            from: "us".into(),
            to: "eu".into(),
            new_epoch: 2,
            began_at,
            completed_at: chrono::Utc::now(),
        });
        // 2. The old owner's node (eu) killed after the freeze.
        h.when_in_flight(1).await;
        let began_at = chrono::Utc::now();
        let w = h.timeline.begin("old owner's node killed after the freeze");
        stopped_at(&h, "us", Step::Frozen).await;
        let eu = h.cluster.region("eu").node.pid().expect("eu node pid");
        assert!(coupon_testkit::procs::signal(eu, libc::SIGKILL));
        let r = finish(&h).await;
        h.timeline.end(w);
        assert_eq!((r.to.as_str(), r.new_epoch), ("us", 3));
        moves.push(Move {
            slot: US_SLOT,
            from: "eu".into(),
            to: "us".into(),
            new_epoch: 3,
            began_at,
            completed_at: chrono::Utc::now(),
        });
        // 3. The new owner's node (ap) killed after activation.
        h.when_in_flight(1).await;
        let began_at = chrono::Utc::now();
        let w = h.timeline.begin("new owner's node killed after activation");
        stopped_at(&h, "ap", Step::Activated).await;
        let ap = h.cluster.region("ap").node.pid().expect("ap node pid");
        assert!(coupon_testkit::procs::signal(ap, libc::SIGKILL));
        let r = finish(&h).await;
        h.timeline.end(w);
        assert_eq!((r.to.as_str(), r.new_epoch), ("ap", 4));
        moves.push(Move {
            slot: US_SLOT,
            from: "us".into(),
            to: "ap".into(),
            new_epoch: 4,
            began_at,
            completed_at: chrono::Utc::now(),
        });
        moves
    };
    let (first, moves) = tokio::join!(load, faults);
    for m in h.cluster.raft.iter_mut() {
        m.restart().expect("restart raft members (one was killed)");
    }
    for r in ["eu", "ap"] {
        h.cluster
            .region_mut(r)
            .node
            .restart()
            .expect("restart a killed node");
        node_ready(&h, r).await;
    }
    assert_eq!(active_owners(&h, US_SLOT).await, vec![("ap".to_owned(), 4)]);
    // The restarted new owner serves the slot (warmed up at its start); the
    // restarted old owner refuses it.
    let admin_token = h.issuer.admin();
    let (s, _) = {
        let r = h
            .http
            .post(format!("{}/v1/coupons/validate", h.node("eu")))
            .bearer_auth(h.issuer.user("probe"))
            .json(&serde_json::json!({"code": US_CODE}))
            .send()
            .await
            .expect("validate at eu");
        (r.status().as_u16(), admin_token)
    };
    assert_eq!(
        s, 421,
        "the restarted old owner answers nothing for the slot"
    );
    let token = h.issuer.user("after-kills");
    let mut r = redeem(
        &h.http,
        &h.router("ap"),
        "ap",
        &token,
        "after-kills",
        US_CODE,
    )
    .await;
    for _ in 0..40 {
        if r.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        r = redeem(
            &h.http,
            &h.router("ap"),
            "ap",
            &token,
            "after-kills",
            US_CODE,
        )
        .await;
    }
    assert_eq!((r.status, r.region.as_deref()), (201, Some("ap")), "{r:?}");
    for rec in &first {
        let ok = rec.status == 201
            || rec.status == 0
            || (rec.status == 503 && rec.retry_after.is_some());
        assert!(ok, "seed {}: {rec:?}\n{:?}", h.seed, tally(&first));
    }
    let retried = retry_ambiguous(&h, &first, 8, 10).await;
    let all: Vec<_> = first
        .iter()
        .cloned()
        .chain(retried.iter().cloned())
        .chain([r])
        .collect();
    eprintln!(
        "move kills: first {:?}, retried {:?}",
        tally(&first),
        tally(&retried)
    );
    let summary = check(&h, &all, &moves).await;
    assert_eq!(summary.active.values().sum::<i64>(), plan.len() as i64 + 1);
}
