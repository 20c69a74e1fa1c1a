//! Guards DESIGN.md §3.7 "fail closed" and §3.1/§3.4 under a partition:
//! while `eu` is cut off from `us` and `ap` (every link, both ways) during a
//! burst through all three routers, `eu` codes via `us`/`ap` get 503
//! `owner_unreachable` within a bounded time (never a local redemption),
//! `eu` codes via `eu` keep working; a blackholed link also fails within the
//! router's timeout; `us`'s router names `eu` in `/readyz` but stays ready
//! for traffic (`/readyz?scope=traffic`, the Kubernetes probe); after heal
//! every router works again. Checker at the end.

use super::helpers::{attempts, check, eventually, tally, EU_CODE, US_CODE};
use coupon_chaos_tests::faults;
use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use coupon_testkit::netproxy::Fault;
use std::time::Duration;

/// Longest a fail-closed answer may take (router timeout 1.5 s + margin).
const BOUND: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eu_cut_off_fails_closed_elsewhere_keeps_serving_in_eu_and_recovers_after_heal() {
    let mut h = Harness::start("partition").await;
    shared_campaign(&h, "eu", EU_CODE, 40).await;
    shared_campaign(&h, "us", US_CODE, 40).await;
    let n = faults::partition(&h.cluster.net, "eu", Fault::Cut);
    assert!(n > 0, "no cross-region links found");

    let mut plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "p1", 10);
    plan.extend(attempts(&mut h, &["us", "ap"], US_CODE, "p1", 5));
    let during = burst(&h, plan, 12).await;
    for r in &during {
        let ok = match (r.code.as_str(), r.via.as_str()) {
            (EU_CODE, "eu") => r.status == 201 && r.region.as_deref() == Some("eu"),
            (EU_CODE, _) => {
                r.status == 503
                    && r.reason.as_deref() == Some("owner_unreachable")
                    && r.elapsed < BOUND
            }
            (_, _) => r.status == 201 && r.region.as_deref() == Some("us"),
        };
        assert!(
            ok,
            "seed {}: during the partition {r:?}\n{:?}",
            h.seed,
            tally(&during)
        );
    }

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
    faults::partition(&h.cluster.net, "eu", Fault::Blackhole);
    let plan = attempts(&mut h, &["us"], EU_CODE, "p2", 4);
    let silent = burst(&h, plan, 4).await;
    for r in &silent {
        assert!(
            r.status == 503 && r.elapsed < BOUND,
            "seed {}: blackholed {r:?}",
            h.seed
        );
    }

    faults::heal(&h.cluster.net);
    let (http, us) = (h.http.clone(), h.router("us"));
    eventually(
        Duration::from_secs(30),
        "us router ready after heal",
        || {
            let (http, us) = (http.clone(), us.clone());
            async move {
                super::helpers::get_json(&http, &format!("{us}/readyz"))
                    .await
                    .0
                    == 200
            }
        },
    )
    .await;
    // Everyone who got a 503 retries with the same key; plus fresh users.
    let mut retry: Vec<_> = during
        .iter()
        .chain(&silent)
        .filter(|r| r.status == 503)
        .map(|r| (r.via.clone(), r.user.clone(), r.code.clone()))
        .collect();
    retry.extend(attempts(&mut h, &["us", "eu", "ap"], US_CODE, "p3", 3));
    let after = burst(&h, retry, 12).await;
    for r in &after {
        assert!(
            matches!(r.status, 201 | 410),
            "seed {}: after heal {r:?}\n{:?}",
            h.seed,
            tally(&after)
        );
    }
    let all: Vec<_> = during.into_iter().chain(silent).chain(after).collect();
    let summary = check(&h, &all, &[]).await;
    assert!(summary.active.values().all(|n| *n <= 40));
}
