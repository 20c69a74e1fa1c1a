//! Guards DESIGN.md §2 "survives the loss of a minority": during a burst
//! through all three routers the raft leader is SIGKILLed, then another
//! member is paused (SIGSTOP) for longer than an election timeout. Routers
//! and nodes work from their cached map: every redemption is answered 201
//! or 410 (no 503), and the checker finds no invariant broken.

use super::helpers::{attempts, check, get_json, tally, EU_CODE, US_CODE};
use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_raft_leader_and_pausing_a_member_leaves_redemptions_unaffected() {
    let mut h = Harness::start("raft-leader").await;
    shared_campaign(&h, "us", US_CODE, 60).await;
    shared_campaign(&h, "eu", EU_CODE, 60).await;
    let mut plan = attempts(&mut h, &["us", "eu", "ap"], US_CODE, "r", 25);
    plan.extend(attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "r", 25));
    let load = {
        let plan = plan.clone();
        let h = &h;
        async move {
            let mut out = Vec::new();
            for chunk in plan.chunks(30) {
                out.extend(burst(h, chunk.to_vec(), 6).await);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            out
        }
    };
    let faults = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, m) = get_json(
            &h.http,
            &format!("{}/v1/cluster/members", h.cluster.raft[0].url()),
        )
        .await;
        let leader = m["leader"].as_u64().expect("a leader") as usize;
        let other = if leader == 1 { 2 } else { 1 };
        (leader, other)
    };
    let (records, (leader, other)) = tokio::join!(load, async {
        let (leader, other) = faults.await;
        // Cannot mutate through `h` while the load borrows it: signal by pid.
        let lpid = h.cluster.raft[leader - 1].pid().expect("leader pid");
        coupon_testkit::procs::signal(lpid, libc::SIGKILL);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let opid = h.cluster.raft[other - 1].pid().expect("member pid");
        coupon_testkit::procs::signal(opid, libc::SIGSTOP);
        tokio::time::sleep(Duration::from_secs(3)).await;
        coupon_testkit::procs::signal(opid, libc::SIGCONT);
        (leader, other)
    });
    h.cluster.raft[leader - 1]
        .restart()
        .expect("restart the killed leader");
    for r in &records {
        assert!(
            matches!(r.status, 201 | 410),
            "seed {} (killed {leader}, paused {other}): {r:?}\n{:?}",
            h.seed,
            tally(&records)
        );
    }
    assert_eq!(records.len(), plan.len());
    check(&h, &records, &[]).await;
}
