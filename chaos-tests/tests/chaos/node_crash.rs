//! Guards "acknowledged means durable" and idempotency across a crash,
//! combined with "Redis is only an accelerator": under continuous load
//! through all three routers on an `eu` campaign, `eu`'s node keeps
//! committing while its replies are held on the way back (so commits have
//! replies in flight) and then `eu`'s node and Redis are SIGKILLed and restarted
//! (Redis empty). Clients retry every attempt without a definitive answer
//! with the same key until each has one. Required: the load overlapped the
//! crash; at least one commit whose reply the crash lost is replayed as 200;
//! every retried key with a row ends acknowledged with that row; exactly
//! `SEATS` active redemptions; and the checker's invariants.

use super::helpers::{attempts, check, eventually, get_json, tally, EU_CODE};
use coupon_chaos_tests::timeline::require_load_over_every_fault;
use coupon_chaos_tests::workload::{paced, retry_ambiguous, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_testkit::netproxy::Fault;
use std::collections::HashMap;
use std::time::Duration;

/// Seats remain while the crash lands, so commits are in flight at the kill.
const SEATS: i64 = 70;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_node_and_its_redis_mid_burst_loses_no_acknowledged_redemption() {
    let mut h = Harness::start("node-crash").await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "c", 40);
    let (slow_after, kill_after) = (h.jitter(400, 800), h.jitter(300, 600));
    let node_pid = h.cluster.region("eu").node.pid().expect("eu node pid");
    let redis_pid = h.cluster.region("eu").redis.pid().expect("eu redis pid");
    let load = paced(&h, plan.clone(), 12, Duration::from_millis(30));
    let crash = async {
        tokio::time::sleep(slow_after).await;
        h.when_in_flight(1).await;
        // The node keeps committing, but its replies stop reaching the
        // routers: every commit of this window has its reply in flight when
        // the node dies, and the cut drops those held replies for good.
        let to_eu = |name: &str| name.starts_with("router:") && name.ends_with("->node:eu");
        // Hold first and open the window once the paced load (one attempt
        // every 30 ms) has sent into the hold: a held request cannot finish,
        // so the window starts with one in flight. Opened first, the window
        // could miss them all: a fast node answered the one request seen in
        // flight before the window's timestamp was taken (CI, once).
        assert!(h.cluster.net.set(to_eu, Fault::Pass, Fault::Blackhole) > 0);
        tokio::time::sleep(Duration::from_millis(45)).await;
        let held = h.begin_mid_flight(1, "eu node's replies held").await;
        tokio::time::sleep(kill_after).await;
        h.instant_mid_flight(2, "SIGKILL eu node and eu redis")
            .await;
        assert!(coupon_testkit::procs::signal(redis_pid, libc::SIGKILL));
        assert!(coupon_testkit::procs::signal(node_pid, libc::SIGKILL));
        h.cluster.net.set(to_eu, Fault::Cut, Fault::Cut);
        tokio::time::sleep(Duration::from_millis(50)).await;
        h.cluster.net.set(to_eu, Fault::Pass, Fault::Pass);
        h.timeline.end(held);
    };
    let (first, ()) = tokio::join!(load, crash);
    require_load_over_every_fault(&h.timeline, &first, h.seed);
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
    let retried = retry_ambiguous(&h, &first, 6, 5).await;
    let mut records = first.clone();
    records.extend(retried.iter().cloned());
    let summary = check(&h, &records, &[]).await;
    eprintln!(
        "node crash: first {:?}; retried {:?}; {summary:?}",
        tally(&first),
        tally(&retried)
    );
    assert_eq!(
        summary.active.values().sum::<i64>(),
        SEATS,
        "every seat is taken once all attempts have answers (seed {})",
        h.seed
    );
    // Lost replies: ambiguous on the first try, yet the row exists; each
    // must have been answered by a 200 replay of that row.
    let rows: HashMap<String, String> = acknowledged_ids(&records);
    let lost: Vec<&Record> = first
        .iter()
        .filter(|r| r.ambiguous() && rows.contains_key(&r.key))
        .collect();
    let replayed = lost
        .iter()
        .filter(|l| {
            retried.iter().any(|r| {
                r.key == l.key
                    && r.status == 200
                    && r.replayed
                    && r.redemption_id.as_ref() == rows.get(&l.key)
            })
        })
        .count();
    assert!(
        replayed >= 1 && replayed == lost.iter().filter(|l| committed_before_retry(l, &retried)).count(),
        "{} replies lost by the crash, {replayed} replayed as 200 (seed {}): first {:?} retried {:?}",
        lost.len(),
        h.seed,
        tally(&first),
        tally(&retried)
    );
}

/// key → redemption id, from every acknowledgement.
fn acknowledged_ids(records: &[Record]) -> HashMap<String, String> {
    records
        .iter()
        .filter(|r| r.acknowledged())
        .filter_map(|r| Some((r.key.clone(), r.redemption_id.clone()?)))
        .collect()
}

/// The key's first retry was not itself the one that committed (a 201).
fn committed_before_retry(lost: &Record, retried: &[Record]) -> bool {
    !retried.iter().any(|r| r.key == lost.key && r.status == 201)
}
