//! Real concurrency over real HTTP: hundreds of simultaneous requests, then
//! the counts checked in Postgres (issue acceptance 3).

use crate::helpers::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Requests in flight at once from the test client.
pub const IN_FLIGHT: usize = 400;

/// Fire `n` redeems at once: request i is (user_of(i), key_of(i), code).
pub async fn burst(
    app: &Arc<TestApp>,
    n: usize,
    user_of: impl Fn(usize) -> String,
    key_of: impl Fn(usize) -> String,
    code: &str,
) -> Vec<(StatusCode, Value, bool)> {
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let tokens: Vec<String> = (0..n).map(|i| app.user(&user_of(i))).collect();
    let calls = (0..n).map(|i| {
        let (app, gate, token, key, code) = (
            app.clone(),
            gate.clone(),
            tokens[i].clone(),
            key_of(i),
            code.to_owned(),
        );
        tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let resp = app
                .http
                .post(format!("{}/v1/coupons/redeem", app.base))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({"code": code, "order_id": "ord"}))
                .send()
                .await
                .expect("redeem request");
            let status = resp.status();
            let replayed = resp.headers().get("idempotent-replayed").is_some();
            (
                status,
                resp.json::<Value>().await.unwrap_or(Value::Null),
                replayed,
            )
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

pub fn tally(results: &[(StatusCode, Value, bool)]) -> HashMap<String, usize> {
    let mut t = HashMap::new();
    for (s, b, replayed) in results {
        let k = match b["code"].as_str() {
            Some(code) if !s.is_success() => format!("{} {code}", s.as_u16()),
            _ if *replayed => format!("{} replayed", s.as_u16()),
            _ => s.as_u16().to_string(),
        };
        *t.entry(k).or_default() += 1;
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_users_on_a_thousand_use_code_give_exactly_a_thousand_winners() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(json!({"kind": "shared", "code": "BLACKFRI100", "total_limit": 1000}))
        .await;
    let results = burst(
        &app,
        5000,
        |i| format!("user-{i}"),
        |i| format!("key-{i}"),
        "BLACKFRI100",
    )
    .await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&1000), "{t:?}");
    assert_eq!(t.get("410 exhausted"), Some(&4000), "{t:?}");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1000
    );
    let seats: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT seat_no) FROM redemptions WHERE seat_no BETWEEN 1 AND 1000",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seats, 1000);
}

/// As many users as seats, beyond one window of the Postgres seat pick
/// (1,024 seats): every one wins. The tail is where a seat pick goes
/// wrong: the last free seats are gaps the racers converge on, read with
/// statistics from before the launch. On the Postgres-only engine (the
/// second pass of `deploy/test.sh`) this ended short of the cap with 503s
/// before the pick walked the gaps and skipped seats racers hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_thousand_users_on_three_thousand_seats_all_win() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(json!({"kind": "shared", "code": "EVERYONE3K", "total_limit": 3000}))
        .await;
    let results = burst(
        &app,
        3000,
        |i| format!("user-{i}"),
        |i| format!("key-{i}"),
        "EVERYONE3K",
    )
    .await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&3000), "{t:?}");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        3000
    );
}

/// A redeem still queued for a Postgres connection, or in a transaction
/// not yet committing, has decided nothing: its wait is load, answered
/// late, never "outcome unknown" (that 503 is for a commit waiting for its
/// standby). Every transaction here takes longer than the commit wait
/// before its COMMIT, and one connection makes the rest queue (the pool's
/// other connection is the ownership view's LISTEN, held for good).
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redeem_queued_for_a_connection_is_not_an_unknown_outcome() {
    // One usable connection (the other is the ownership view's LISTEN):
    // N commits in a row on the Postgres engine, each held SLEEP_MS before
    // its COMMIT, stay inside the 4 s bound before the COMMIT (at 800 ms the
    // three took 2.4 s of it and the test failed once in a full local run;
    // 600 ms leaves the queue 2.2 s). The commit wait, 1 s, is below the
    // second redeem's 1.2 s from arrival (the old timer, started on arrival,
    // failed 2 of 3) and well above what a loaded machine adds after the
    // COMMIT (at 200 ms it flaked: 1 of 8 "unknown" in 2 of 7 loaded runs).
    // The hold is a timer (`return(MS)`), not a blocking `sleep(MS)`: that
    // stalled one of the runtime's workers, and a handler woken onto it once
    // outwaited a 500 ms commit wait in CI.
    const N: usize = 3;
    const SLEEP_MS: u64 = 600;
    let scenario = fail::FailScenario::setup();
    let app = Arc::new(
        TestApp::spawn_with(|cfg| {
            cfg.db_max_connections = 2;
            cfg.commit_wait_ms = 1000;
        })
        .await,
    );
    let c = app
        .campaign(json!({"kind": "shared", "code": "QUEUED", "total_limit": 1000}))
        .await;
    fail::cfg("before_commit", &format!("return({SLEEP_MS})")).unwrap();
    let results = burst(
        &app,
        N,
        |i| format!("user-{i}"),
        |i| format!("key-{i}"),
        "QUEUED",
    )
    .await;
    fail::remove("before_commit");
    scenario.teardown();
    let t = tally(&results);
    let refusals: Vec<&Value> = results
        .iter()
        .filter(|(s, _, _)| !s.is_success())
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(t.get("201"), Some(&N), "{t:?}: {refusals:?}");
    assert_eq!(app.metric("coupon_redeem_outcome_unknown_total").await, 0.0);
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        N as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_firing_twenty_keys_at_once_wins_once() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(json!({"kind": "shared", "code": "ONEEACH", "total_limit": 100}))
        .await;
    let results = burst(
        &app,
        20,
        |_| "greedy".into(),
        |i| format!("key-{i}"),
        "ONEEACH",
    )
    .await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&1), "{t:?}");
    assert_eq!(t.get("409 already_redeemed"), Some(&19), "{t:?}");
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_fifty_times_at_once_redeems_once() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(json!({"kind": "shared", "code": "RETRYME", "total_limit": 100}))
        .await;
    let results = burst(&app, 50, |_| "u1".into(), |_| "the-key".into(), "RETRYME").await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&1), "{t:?}");
    let allowed = ["201", "200 replayed", "409 idempotency_in_flight"];
    assert!(t.keys().all(|k| allowed.contains(&k.as_str())), "{t:?}");
    let first = results.iter().find(|r| r.0 == StatusCode::CREATED).unwrap();
    for r in results.iter().filter(|r| r.2) {
        assert_eq!(r.1, first.1, "a replay answers the original JSON");
    }
    assert_eq!(
        app.active_redemptions(c["campaign_id"].as_str().unwrap())
            .await,
        1
    );
    let (s, b, _) = app
        .redeem("u1", "the-key", "RETRYME", "another-order")
        .await;
    assert_problem(s, &b, 422, "idempotency_key_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_users_on_a_five_hundred_code_pool_use_each_code_once() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(json!({"kind": "pool", "code": "POOLRUSH"}))
        .await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    app.generate(&id, json!({"count": 500})).await;
    let results = burst(
        &app,
        2000,
        |i| format!("user-{i}"),
        |i| format!("key-{i}"),
        "POOLRUSH",
    )
    .await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&500), "{t:?}");
    assert_eq!(t.get("410 exhausted"), Some(&1500), "{t:?}");
    let (active, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT pool_code) FROM redemptions WHERE campaign_id = $1 AND released_at IS NULL",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((active, distinct), (500, 500));
    let unused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM codes WHERE campaign_id = $1 AND NOT used")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(unused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_users_racing_for_named_pool_codes_use_each_once() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app.campaign(json!({"kind": "pool"})).await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    app.generate(&id, json!({"count": 500})).await;
    let codes: Vec<String> = app
        .export(&id)
        .await
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    // Four users race for each code.
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let calls = (0..2000).map(|i| {
        let (app, gate, code) = (app.clone(), gate.clone(), codes[i % 500].clone());
        tokio::spawn(async move {
            let _p = gate.acquire_owned().await.unwrap();
            app.redeem(&format!("user-{i}"), "k", &code, "o").await
        })
    });
    let results: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let wins = results
        .iter()
        .filter(|r| r.0 == StatusCode::CREATED)
        .count();
    let dup = results
        .iter()
        .filter(|r| r.1["code"] == "already_redeemed")
        .count();
    assert_eq!((wins, dup), (500, 1500));
    assert_eq!(app.active_redemptions(&id).await, 500);
}

/// Winners of a shared campaign are committed several to a transaction
/// (`redeem/group_commit.rs`). 150 users with a per-user cap of 2 each send
/// three keys at once, and resend the first: each user ends with exactly
/// two uses, every 201 is the caller's own row with its own event in the
/// outbox, every replay is its key's original, and on the Redis engine the
/// groups carried winners (a third to a half here: a user's third key, refused by
/// Redis' per-user count, is re-checked in Postgres alone and may win there
/// before the group commits, which then sends its clashing member alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_winners_get_their_own_rows_events_and_replays() {
    let app = Arc::new(TestApp::spawn().await);
    let c = app
        .campaign(
            json!({"kind": "shared", "code": "GROUPED2", "total_limit": 1000, "per_user_limit": 2}),
        )
        .await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    // Request i: user i / 4, keys 0, 1, 2 and key 0 again.
    let user_of = |i: usize| format!("g-user-{}", i / 4);
    let key_of = |i: usize| format!("g-key-{}-{}", i / 4, (i % 4) % 3);
    let results = burst(&app, 600, user_of, key_of, "GROUPED2").await;
    let t = tally(&results);
    assert_eq!(t.get("201"), Some(&300), "{t:?}");
    let allowed = [
        "201",
        "200 replayed",
        "409 already_redeemed",
        "409 idempotency_in_flight",
    ];
    assert!(t.keys().all(|k| allowed.contains(&k.as_str())), "{t:?}");

    let mut won: HashMap<String, Value> = HashMap::new();
    for (i, (s, body, _)) in results.iter().enumerate() {
        if *s == StatusCode::CREATED {
            assert_eq!(
                body["user_id"],
                user_of(i),
                "a 201 carries the caller's own row"
            );
            won.insert(key_of(i), body.clone());
        }
    }
    for (i, (_, body, replayed)) in results.iter().enumerate() {
        if *replayed {
            assert_eq!(
                Some(body),
                won.get(&key_of(i)),
                "a replay answers its key's original"
            );
        }
    }
    let per_user: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT user_id, count(*), count(DISTINCT use_no) FROM redemptions \
         WHERE campaign_id = $1 AND released_at IS NULL GROUP BY user_id",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(per_user.len(), 150);
    assert!(
        per_user.iter().all(|(_, n, uses)| *n == 2 && *uses == 2),
        "{per_user:?}"
    );

    // One event per redemption, carrying that redemption.
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_id, data FROM outbox WHERE campaign_id = $1 AND type = 'coupon.redeemed'",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(events.len(), 300);
    let rows: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT redemption_id, user_id FROM redemptions WHERE campaign_id = $1",
    )
    .bind(&id)
    .fetch_all(&app.db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for (event_id, data) in &events {
        let rid = data["redemption_id"].as_str().unwrap();
        assert_eq!(event_id, &format!("{rid}:coupon.redeemed"));
        assert_eq!(
            data["user_id"].as_str(),
            rows.get(rid).map(String::as_str),
            "{data}"
        );
    }

    if redis_engine() {
        let text = app.get("/metrics", None).await.text().await.unwrap();
        let grouped: f64 = text
            .lines()
            .find(|l| l.starts_with("coupon_group_commit_total{how=\"grouped\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0);
        // 89–148 of 300 in runs on the project's machine; 0 when every
        // member goes alone.
        assert!(grouped >= 30.0, "winners committed in groups: {grouped}");
    }
}

/// Validates from 300 users at once, batched into a few reads of their
/// uses: each answer is about its own user (a third have used none of
/// their two uses, a third one, a third both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_validates_at_once_each_count_their_own_users_uses() {
    let app = Arc::new(TestApp::spawn().await);
    app.campaign(
        json!({"kind": "shared", "code": "VALIDATES", "total_limit": 10000, "per_user_limit": 2}),
    )
    .await;
    let n = 300;
    let uses = |i: usize| i % 3;
    join_all((0..n).map(|i| {
        let app = app.clone();
        async move {
            for k in 0..uses(i) {
                let (s, body, _) = app
                    .redeem(&format!("v{i}"), &format!("k{k}"), "VALIDATES", "o")
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{body}");
            }
        }
    }))
    .await;
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let answers = join_all((0..n).map(|i| {
        let (app, gate) = (app.clone(), gate.clone());
        async move {
            let _permit = gate.acquire().await.unwrap();
            let token = app.user(&format!("v{i}"));
            let resp = app
                .post(
                    "/v1/coupons/validate",
                    Some(&token),
                    &json!({"code": "VALIDATES"}),
                )
                .await;
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    }))
    .await;
    for (i, (s, body)) in answers.iter().enumerate() {
        if uses(i) == 2 {
            assert_problem(*s, body, 409, "already_redeemed");
        } else {
            assert_eq!(
                *s,
                StatusCode::OK,
                "user v{i} with {} uses: {body}",
                uses(i)
            );
        }
    }
}
