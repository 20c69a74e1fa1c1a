//! Guards "fail closed" and the limits under a partition: `eu` is cut off
//! from `us` and `ap` (every link, both ways) while requests are in flight,
//! during continuous load through all three routers. Requests in flight at
//! the cut may go either way (the ambiguous case); requests started after
//! it: `eu` codes via `us`/`ap` get 503 `owner_unreachable` with
//! `Retry-After` within a bounded time (never a local redemption), `eu`
//! codes via `eu` keep working until `eu`'s region lease lapses (then 503:
//! the region stops before anyone could take it over), `us` codes keep
//! working. `us`'s router names `eu` in
//! `/readyz` but stays ready for traffic (`/readyz?scope=traffic`, the
//! Kubernetes probe). A blackholed link also fails within the router's
//! timeout. After heal, every 503 is retried with its key and fresh users
//! arrive: while seats remain, only 201 (or the 200 replay of an ambiguous
//! commit). Exact counts and the checker at the end.

use super::helpers::{attempts, check, eventually, get_json, tally, EU_CODE, US_CODE};
use coupon_chaos_tests::faults;
use coupon_chaos_tests::timeline::require_load_over_every_fault;
use coupon_chaos_tests::workload::{burst, paced, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use coupon_testkit::netproxy::Fault;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Longest a fail-closed answer may take (router timeout 1.5 s + margin).
const BOUND: Duration = Duration::from_secs(4);
/// More seats than attempts: every user can win once the partition heals.
const SEATS: i64 = 200;

fn fail_closed(r: &Record) -> bool {
    r.status == 503
        && r.reason.as_deref() == Some("owner_unreachable")
        && r.retry_after.is_some()
        && r.elapsed < BOUND
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eu_cut_off_fails_closed_elsewhere_keeps_serving_in_eu_and_recovers_after_heal() {
    let mut h = Harness::start("partition").await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    shared_campaign(&h, "us", US_CODE, SEATS).await;
    let mut plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "p1", 16);
    plan.extend(attempts(&mut h, &["us", "ap"], US_CODE, "p1", 8));
    {
        use rand::seq::SliceRandom;
        plan.shuffle(&mut h.rng);
    }
    let cut_after = h.jitter(300, 600);
    let load = paced(&h, plan, 10, Duration::from_millis(25));
    let cut = async {
        tokio::time::sleep(cut_after).await;
        h.begin_mid_flight(1, "eu cut off from us and ap").await;
        assert!(faults::partition(&h.cluster.net, "eu", Fault::Cut) > 0);
    };
    let (during, ()) = tokio::join!(load, cut);
    require_load_over_every_fault(&h.timeline, &during, h.seed);
    let cut_at = h.timeline.windows()[0].start;
    for r in &during {
        let after_cut = r.started_at > cut_at + chrono::Duration::milliseconds(50);
        let ok = match (r.code.as_str(), r.via.as_str(), after_cut) {
            // In flight at the cut: committed or not, but answered.
            (_, _, false) => r.status == 201 || (r.status == 503 && r.retry_after.is_some()),
            // Cut off from raft, eu serves until its lease lapses, then
            // answers 503 (docs/failover.md): never a redemption elsewhere.
            (EU_CODE, "eu", true) => {
                (r.status == 201 && r.region.as_deref() == Some("eu"))
                    || (r.status == 503 && r.retry_after.is_some())
            }
            (EU_CODE, _, true) => fail_closed(r),
            (_, _, true) => r.status == 201 && r.region.as_deref() == Some("us"),
        };
        assert!(
            ok,
            "seed {}: during the partition {r:?}\n{:?}",
            h.seed,
            tally(&during)
        );
    }
    assert!(
        during.iter().any(fail_closed),
        "no request failed closed (seed {})",
        h.seed
    );

    // us's router names the unreachable peer, yet stays ready for traffic:
    // the Kubernetes probe (`scope=traffic`) must not pull a region's routers
    // out of their Service because another region is cut off.
    let (http, us) = (h.http.clone(), h.router("us"));
    eventually(Duration::from_secs(10), "us router names eu", || {
        let (http, us) = (http.clone(), us.clone());
        async move {
            let (s, body) = super::helpers::get_json(&http, &format!("{us}/readyz")).await;
            s == 503 && body.to_string().contains("peer eu: unreachable")
        }
    })
    .await;
    let (s, body) =
        super::helpers::get_json(&h.http, &format!("{}/readyz?scope=traffic", h.router("us")))
            .await;
    assert_eq!(
        s, 200,
        "us router ready for traffic during the partition: {body}"
    );

    // A blackhole (silence, not resets) also fails within the router's timeout.
    let w = h.timeline.begin("eu blackholed");
    faults::partition(&h.cluster.net, "eu", Fault::Blackhole);
    let plan = attempts(&mut h, &["us"], EU_CODE, "p2", 4);
    let silent = burst(&h, plan, 4).await;
    h.timeline.end(w);
    for r in &silent {
        assert!(fail_closed(r), "seed {}: blackholed {r:?}", h.seed);
    }

    faults::heal(&h.cluster.net);
    let (http, us) = (h.http.clone(), h.router("us"));
    eventually(
        Duration::from_secs(30),
        "us router ready after heal",
        || {
            let (http, us) = (http.clone(), us.clone());
            async move { get_json(&http, &format!("{us}/readyz")).await.0 == 200 }
        },
    )
    .await;
    // eu's node renews its lease once raft hears it again.
    let eu = h.node("eu");
    eventually(Duration::from_secs(30), "eu holds its lease again", || {
        let (http, eu) = (http.clone(), eu.clone());
        async move { get_json(&http, &format!("{eu}/readyz")).await.0 == 200 }
    })
    .await;
    // Everyone who got a 503 retries with the same key; plus fresh users.
    let mut retry: Vec<_> = during
        .iter()
        .chain(&silent)
        .filter(|r| r.ambiguous())
        .map(|r| (r.via.clone(), r.user.clone(), r.code.clone()))
        .collect();
    retry.extend(attempts(&mut h, &["us", "eu", "ap"], US_CODE, "p3", 3));
    retry.extend(attempts(&mut h, &["us", "ap"], EU_CODE, "p3", 3));
    let after = burst(&h, retry, 12).await;
    for r in &after {
        assert!(
            r.status == 201 || (r.status == 200 && r.replayed),
            "seed {}: after heal, seats remain: {r:?}\n{:?}",
            h.seed,
            tally(&after)
        );
    }
    let all: Vec<_> = during.into_iter().chain(silent).chain(after).collect();
    let summary = check(&h, &all, &[]).await;
    // Every distinct user of a code ends with exactly one redemption of it.
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &all {
        users
            .entry(r.code.as_str())
            .or_default()
            .insert(r.user.as_str());
    }
    let expected: i64 = users.values().map(|u| u.len() as i64).sum();
    assert_eq!(
        summary.active.values().sum::<i64>(),
        expected,
        "one redemption per user and code (seed {}): {summary:?}",
        h.seed
    );
}
