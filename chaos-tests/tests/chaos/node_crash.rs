//! Guards DESIGN.md §3.3 "acknowledged means durable" and §3.5 idempotency
//! across a crash, combined with §3.2 "Redis is only an accelerator": during
//! a burst through all three routers on an `eu` campaign, `eu`'s node and
//! its Redis are both SIGKILLed, then restarted (Redis empty). Clients retry
//! every attempt that got no definitive answer with the same key. Every 201
//! or 200 has its row, no seat or per-user use is exceeded, and a retry of
//! a commit whose reply was lost replays instead of using a second seat.

use super::helpers::{attempts, check, eventually, get_json, tally, EU_CODE};
use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use std::time::Duration;

const SEATS: i64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_and_its_redis_mid_burst_loses_no_acknowledged_redemption() {
    let mut h = Harness::start("node-crash").await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "c", 25);
    let node_pid = h.cluster.region("eu").node.pid().expect("eu node pid");
    let redis_pid = h.cluster.region("eu").redis.pid().expect("eu redis pid");
    let load = {
        let (plan, h) = (plan.clone(), &h);
        async move {
            let mut out = Vec::new();
            for chunk in plan.chunks(15) {
                out.extend(burst(h, chunk.to_vec(), 5).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            out
        }
    };
    let crash = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        coupon_testkit::procs::signal(redis_pid, libc::SIGKILL);
        coupon_testkit::procs::signal(node_pid, libc::SIGKILL);
    };
    let (first, ()) = tokio::join!(load, crash);
    assert!(
        first.iter().any(|r| r.status == 0 || r.status >= 500),
        "the crash hit no request (seed {}): {:?}",
        h.seed,
        tally(&first)
    );
    {
        let eu = h.cluster.region_mut("eu");
        eu.redis.restart().expect("restart eu redis");
        eu.node.restart().expect("restart eu node");
    }
    let (http, node) = (h.http.clone(), h.node("eu"));
    eventually(Duration::from_secs(30), "eu node ready again", || {
        let (http, node) = (http.clone(), node.clone());
        async move { get_json(&http, &format!("{node}/readyz")).await.0 == 200 }
    })
    .await;
    // Retry every attempt without a definitive answer, with its own key.
    let unanswered: Vec<_> = plan
        .iter()
        .filter(|(via, user, _)| {
            first
                .iter()
                .any(|r| &r.via == via && &r.user == user && (r.status == 0 || r.status >= 500))
        })
        .cloned()
        .collect();
    let retried = burst(&h, unanswered.clone(), 5).await;
    for r in &retried {
        assert!(
            matches!(r.status, 200 | 201 | 410),
            "retry after restart (seed {}): {r:?}\n{:?}",
            h.seed,
            tally(&retried)
        );
    }
    let mut records = first;
    records.extend(retried);
    let summary = check(&h, &records, &[]).await;
    let won = records.iter().filter(|r| r.status == 201).count() as i64;
    assert!(
        won <= SEATS,
        "{won} winners for {SEATS} seats (seed {})",
        h.seed
    );
    eprintln!(
        "node crash: {} retried, summary {summary:?}",
        unanswered.len()
    );
}
