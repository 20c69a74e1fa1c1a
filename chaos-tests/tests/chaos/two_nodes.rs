//! Guards DESIGN.md §3.1, §3.5 and §3.3 with **two node processes per
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

fn eu_nodes(h: &Harness) -> Vec<String> {
    h.cluster.region("eu").nodes().map(|n| n.url()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sharing_one_postgres_and_redis_hand_out_exactly_the_seats() {
    const SEATS: i64 = 1000;
    let mut h = Harness::start_scaled("two-nodes-burst", 2).await;
    shared_campaign(&h, "eu", EU_CODE, SEATS).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], EU_CODE, "b", 1000);
    let records = burst(&h, plan, 32).await;
    let won = records.iter().filter(|r| r.status == 201).count() as i64;
    let other: Vec<_> = records
        .iter()
        .filter(|r| r.status != 201 && r.reason.as_deref() != Some("exhausted"))
        .collect();
    assert!(
        won == SEATS && other.is_empty(),
        "seed {}: {won} winners for {SEATS} seats; {:?}\n{:?}",
        h.seed,
        tally(&records),
        other.first()
    );
    let summary = check(&h, &records, &[]).await;
    assert_eq!(
        summary.active.values().sum::<i64>(),
        SEATS,
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
    let h = Harness::start_scaled("two-nodes-key", 2).await;
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
    assert_eq!(ids.len(), 1, "every success names the one redemption: {ids:?}");
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
    let mut h = Harness::start_scaled("two-nodes-kill", 2).await;
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
        coupon_testkit::procs::signal(victim, libc::SIGKILL);
    };
    let started = std::time::Instant::now();
    let (first, ()) = tokio::join!(load, crash);
    eprintln!("burst with a node killed: {:?} in {:?}", tally(&first), started.elapsed());
    // No restart: the surviving node serves every retry and new request.
    // Retry, with the same key, every attempt without a definitive answer:
    // no answer, 5xx, or 409 `idempotency_in_flight` — the killed node's
    // in-flight markers keep their keys for up to 30 s (the marker's TTL).
    let definitive = |r: &Record| matches!(r.status, 200 | 201 | 410);
    let mut pending: Vec<_> = plan
        .iter()
        .filter(|(via, user, _)| {
            first
                .iter()
                .any(|r| &r.via == via && &r.user == user && !definitive(r))
        })
        .cloned()
        .collect();
    let retried_count = pending.len();
    let mut retried = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while !pending.is_empty() {
        let round = burst(&h, pending.clone(), 6).await;
        pending.retain(|(via, user, _)| {
            round
                .iter()
                .any(|r| &r.via == via && &r.user == user && !definitive(r))
        });
        for r in &round {
            assert!(
                definitive(r) || r.status >= 500 || r.reason.as_deref() == Some("idempotency_in_flight"),
                "seed {}: retry with one node left {r:?}",
                h.seed
            );
        }
        retried.extend(round);
        assert!(
            std::time::Instant::now() < deadline,
            "seed {}: still undecided after 45 s: {pending:?}\n{:?}",
            h.seed,
            tally(&retried)
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    eprintln!("retries settled after {:?}", started.elapsed());
    let plan = attempts(&mut h, &["us", "ap"], EU_CODE, "late", 5);
    let late = burst(&h, plan, 5).await;
    assert!(
        late.iter().all(|r| matches!(r.status, 201 | 410)),
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
