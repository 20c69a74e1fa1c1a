//! Guards docs/architecture.md §3.1, §3.5 and §3.3 with **two node processes per
//! region** on the region's one Postgres and one Redis, behind a round-robin
//! balancer (the local stand-in for a Kubernetes Service), as production
//! runs them: a burst through every router ends with exactly `total_limit`
//! winners in Postgres and both nodes serving; one `Idempotency-Key` fired at
//! both nodes at once uses one seat; killing one node mid-burst loses no
//! acknowledged redemption and the other node keeps the region serving.

use super::helpers::{attempts, check, metrics, tally, EU_CODE};
use coupon_chaos_tests::workload::{burst, shared_campaign, Record};
use coupon_chaos_tests::Harness;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Redeem requests a node answered, from its own `/metrics`.
async fn redeems_served(h: &Harness, node: &str) -> u64 {
    metrics(&h.http, node)
        .await
        .lines()
        .filter(|l| l.starts_with("coupon_http_requests_total{route=\"/v1/coupons/redeem\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Under a burst on a loaded machine a forward can time out (503, outcome
/// unknown). Clients retry such attempts with the same key, as the contract
/// asks: retries every attempt without a definitive answer (no answer, 5xx,
/// or 409 `idempotency_in_flight`) until all settle or `limit` passes, and
/// returns every retry's record.
async fn settle(
    h: &Harness,
    plan: &[(String, String, String)],
    first: &[Record],
    limit: Duration,
) -> Vec<Record> {
    let definitive = |r: &Record| matches!(r.status, 200 | 201 | 410);
    let undecided = |records: &[Record], (via, user): (&String, &String)| {
        records
            .iter()
            .any(|r| &r.via == via && &r.user == user && !definitive(r))
    };
    let mut pending: Vec<_> = plan
        .iter()
        .filter(|(via, user, _)| undecided(first, (via, user)))
        .cloned()
        .collect();
    let deadline = std::time::Instant::now() + limit;
    let mut retried = Vec::new();
    while !pending.is_empty() {
        let round = burst(h, pending.clone(), 6).await;
        for r in &round {
            assert!(
                definitive(r)
                    || r.status >= 500
                    || r.reason.as_deref() == Some("idempotency_in_flight"),
                "seed {}: retry answered {r:?}",
                h.seed
            );
        }
        pending.retain(|(via, user, _)| undecided(&round, (via, user)));
        retried.extend(round);
        assert!(
            std::time::Instant::now() < deadline,
            "seed {}: still undecided after {limit:?}: {pending:?}\n{:?}",
            h.seed,
            tally(&retried)
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    retried
}

/// Users whose last answer was a success (201, or 200 replaying one).
fn winners(records: &[Record]) -> BTreeSet<(String, String)> {
    let mut last = std::collections::BTreeMap::new();
    for r in records {
        last.insert((r.via.clone(), r.user.clone()), r.status);
    }
    last.into_iter()
        .filter(|(_, s)| matches!(s, 200 | 201))
        .map(|(k, _)| k)
        .collect()
}

fn eu_nodes(h: &Harness) -> Vec<String> {
    h.cluster.region("eu").nodes().map(|n| n.url()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sharing_one_postgres_and_redis_hand_out_exactly_the_seats() {
    const SEATS: usize = 1000;
    let router_env = vec![("COUPON_FORWARD_TIMEOUT_MS".into(), "5000".into())];
    let mut h = Harness::start_scaled("two-nodes-burst", 2, router_env).await;
    shared_campaign(&h, "eu", EU_CODE, SEATS as i64).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "b", 1000);
    let first = burst(&h, plan.clone(), 24).await;
    eprintln!("burst: {:?}", tally(&first));
    let retried = settle(&h, &plan, &first, Duration::from_secs(60)).await;
    let mut records = first;
    records.extend(retried);
    let won = winners(&records);
    assert_eq!(
        won.len(),
        SEATS,
        "seed {}: exactly the seats are won; {:?}",
        h.seed,
        tally(&records)
    );
    let summary = check(&h, &records, &[]).await;
    assert_eq!(
        summary.active.values().sum::<i64>(),
        SEATS as i64,
        "seed {}: active redemptions in Postgres",
        h.seed
    );
    for node in eu_nodes(&h) {
        let served = redeems_served(&h, &node).await;
        assert!(served > 0, "eu node {node} served no redeem: not two nodes");
        eprintln!("eu node {node} answered {served} redeems");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_fired_at_both_nodes_at_once_uses_one_seat() {
    let h = Harness::start_scaled("two-nodes-key", 2, vec![]).await;
    shared_campaign(&h, "eu", EU_CODE, 10).await;
    let nodes = eu_nodes(&h);
    let token = h.issuer.user("same-key-user");
    let send = |node: String| {
        let (http, token) = (h.http.clone(), token.clone());
        async move {
            let r = http
                .post(format!("{node}/v1/coupons/redeem"))
                .bearer_auth(token)
                .header("Idempotency-Key", "checkout-42")
                .json(&json!({"code": EU_CODE, "order_id": "ord-42"}))
                .send()
                .await
                .expect("redeem");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let fired: Vec<_> = (0..24)
        .map(|i| tokio::spawn(send(nodes[i % 2].clone())))
        .collect();
    let mut answers = Vec::new();
    for f in fired {
        answers.push(f.await.expect("redeem task"));
    }
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        created == 1
            && answers
                .iter()
                .all(|(s, b)| *s == 201 || *s == 200 || b["code"] == "idempotency_in_flight"),
        "seed {}: {answers:?}",
        h.seed
    );
    let ids: BTreeSet<_> = answers
        .iter()
        .filter_map(|(_, b)| b["redemption_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every success names the one redemption: {ids:?}"
    );
    // A later retry at either node replays it.
    for node in &nodes {
        let (s, b) = send(node.clone()).await;
        assert_eq!(s, 200, "replay at {node}: {b}");
        assert!(ids.contains(b["redemption_id"].as_str().unwrap_or_default()));
    }
    let db = sqlx::PgPool::connect(&h.cluster.region("eu").db_url())
        .await
        .expect("eu postgres");
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM redemptions WHERE user_id = 'same-key-user' AND released_at IS NULL",
    )
    .fetch_one(&db)
    .await
    .expect("count");
    assert_eq!(rows, 1, "one key, one use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_nodes_mid_burst_loses_nothing_and_the_other_keeps_serving() {
    const SEATS: i64 = 60;
    let mut h = Harness::start_scaled("two-nodes-kill", 2, vec![]).await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "k", 30);
    let victim = h.cluster.region("eu").node.pid().expect("eu node pid");
    let load = {
        let (plan, h) = (plan.clone(), &h);
        async move {
            let mut out = Vec::new();
            for chunk in plan.chunks(15) {
                out.extend(burst(h, chunk.to_vec(), 6).await);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            out
        }
    };
    let crash = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        h.instant_mid_flight(2, "SIGKILL one of eu's two nodes")
            .await;
        coupon_testkit::procs::signal(victim, libc::SIGKILL);
    };
    let started = std::time::Instant::now();
    let (first, ()) = tokio::join!(load, crash);
    eprintln!(
        "burst with a node killed: {:?} in {:?}",
        tally(&first),
        started.elapsed()
    );
    // The kill landed on requests in flight (which node each was on is
    // the balancer's choice).
    coupon_chaos_tests::timeline::require_load_over_every_fault(&h.timeline, &first, h.seed);
    // No restart: the surviving node serves every retry and new request.
    // The killed node's in-flight markers keep their keys (409) for up to
    // 30 s, the marker's TTL; connections it held are reset (503).
    let retried = settle(&h, &plan, &first, Duration::from_secs(60)).await;
    let retried_count = retried.len();
    eprintln!("retries settled after {:?}", started.elapsed());
    let late_plan = attempts(&mut h, &["us", "ap"], EU_CODE, "late", 5);
    let mut late = burst(&h, late_plan.clone(), 5).await;
    late.extend(settle(&h, &late_plan, &late, Duration::from_secs(10)).await);
    assert!(
        late.iter()
            .filter(|r| matches!(r.status, 201 | 410))
            .all(|r| r.region.as_deref() == Some("eu")),
        "seed {}: the surviving node serves eu: {:?}",
        h.seed,
        tally(&late)
    );
    let mut records = first;
    records.extend(retried);
    records.extend(late);
    let summary = check(&h, &records, &[]).await;
    assert!(
        summary.active.values().all(|n| *n <= SEATS),
        "seed {}: {summary:?}",
        h.seed
    );
    eprintln!(
        "one of two nodes killed: {retried_count} retried, {:?}",
        tally(&records)
    );
}
