//! Shared helpers of the scenarios.

use coupon_chaos_tests::checker::{self, Move, Summary};
use coupon_chaos_tests::workload::Record;
use coupon_chaos_tests::Harness;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// `BLACKFRI100` hashes to slot 586, which the initial map gives to `eu`.
pub const EU_CODE: &str = "BLACKFRI100";
/// `SAVE20` hashes to slot 762, which the initial map gives to `us`.
pub const US_CODE: &str = "SAVE20";
pub const US_SLOT: u16 = 762;

/// Runs the checker over the scenario's records and moves, with what the
/// ownership sampler saw while it ran.
pub async fn check(h: &Harness, records: &[Record], moves: &[Move]) -> Summary {
    assert!(
        h.sampler.reads() > 0,
        "the ownership sampler never read a region (seed {})",
        h.seed
    );
    let urls = h.db_urls();
    checker::check(checker::Input {
        db_urls: &urls,
        records,
        moves,
        sampled: h.sampler.findings(),
        seed: h.seed,
    })
    .await
}

/// `(via, user, code)` attempts: `n` users per router, in a seeded order.
pub fn attempts(
    h: &mut Harness,
    routers: &[&str],
    code: &str,
    tag: &str,
    n: usize,
) -> Vec<(String, String, String)> {
    use rand::seq::SliceRandom;
    let mut v: Vec<_> = routers
        .iter()
        .flat_map(|r| {
            (0..n).map(move |i| (r.to_string(), format!("{tag}-{r}-{i}"), code.to_owned()))
        })
        .collect();
    v.shuffle(&mut h.rng);
    v
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, Value) {
    match http.get(url).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

pub async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// Polls `cond` every 100 ms for up to `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Statuses of `records` by via-region, for failure messages.
pub fn tally(records: &[Record]) -> BTreeMap<(String, u16), usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry((r.via.clone(), r.status)).or_default() += 1;
    }
    m
}

/// The checker against the databases that survived the loss of `lost`
/// (each lost region's promoted standby in place of its primary; with
/// `lost` empty, every region's own primary).
pub async fn check_surviving(
    h: &Harness,
    lost: &[&str],
    records: &[Record],
    moves: &[Move],
) -> Summary {
    let urls = coupon_chaos_tests::region::surviving_db_urls(h, lost);
    checker::check(checker::Input {
        db_urls: &urls,
        records,
        moves,
        sampled: vec![],
        seed: h.seed,
    })
    .await
}

/// Every attempt of `records` that got no definitive answer, sent again
/// once with its own key through `via`'s router.
pub async fn retry_ambiguous_via(h: &Harness, records: &[Record], via: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.ambiguous()) {
        let token = h.issuer.user(&r.user);
        out.push(
            coupon_chaos_tests::workload::redeem_keyed(
                &h.http,
                &h.router(via),
                via,
                &token,
                &r.user,
                &r.code,
                &r.key,
            )
            .await,
        );
    }
    out
}
