//! Retries and stale Redis views: a retry of a success replays whatever Redis
//! says, a key in flight is never refused as if it had failed, and a seat or
//! code Redis handed out stale is neither kept nor given back.

use crate::helpers::*;
use coupon_node::burst::keys::Keys;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn redis() -> MultiplexedConnection {
    redis::Client::open(stores().redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Redis loses everything it held for the campaign (a flush or a failover
/// to a replica that was behind), then the reconciler rebuilds it.
async fn lose_and_rebuild(app: &TestApp, r: &mut MultiplexedConnection, id: &str) {
    let keys: Vec<String> = r.keys(format!("c:{{{id}}}:*")).await.unwrap();
    let _: () = r.del(keys).await.unwrap();
    let resp = app
        .post(
            &format!("/v1/campaigns/{id}/reconcile"),
            Some(&app.admin()),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[track_caller]
fn assert_replayed(s: StatusCode, b: &Value, h: &reqwest::header::HeaderMap, first: &Value) {
    assert_eq!(s, StatusCode::OK, "a retry of a success must replay: {b}");
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(b["redemption_id"], first["redemption_id"]);
}

#[tokio::test]
async fn a_retry_of_a_success_replays_whatever_redis_says() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(
            json!({"kind": "shared", "code": "LOSTMARK", "total_limit": 1, "per_user_limit": 2}),
        )
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let mut r = redis().await;
    let (s, first, _) = app.redeem("u1", "K", "LOSTMARK", "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // The reply is lost; Redis loses the replay marker with everything else.
    lose_and_rebuild(&app, &mut r, id).await;
    // Redis now says: seats exhausted.
    let (s, b, h) = app.redeem("u1", "K", "LOSTMARK", "o1").await;
    assert_replayed(s, &b, &h, &first);
    // Redis says: paused (another node paused it; this node's cache has not
    // seen it yet).
    let k = Keys::new(id);
    lose_and_rebuild(&app, &mut r, id).await;
    let _: () = r.set(k.paused(), 1).await.unwrap();
    let (s, b, h) = app.redeem("u1", "K", "LOSTMARK", "o1").await;
    assert_replayed(s, &b, &h, &first);
    let _: () = r.del(k.paused()).await.unwrap();
    // Redis says: in flight (the commit landed, the settle step was lost).
    let _: () = r.set(k.inflight("u1", "K"), "claim").await.unwrap();
    let (s, b, h) = app.redeem("u1", "K", "LOSTMARK", "o1").await;
    assert_replayed(s, &b, &h, &first);
    assert_eq!(app.active_redemptions(id).await, 1);
}

#[tokio::test]
async fn a_gate_refusal_while_the_same_key_is_in_flight_answers_409() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "GATEFLIGHT", "total_limit": 5}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let mut r = redis().await;
    // On the burst path: another node claimed under u1's key and has not
    // committed yet.
    let _: () = r
        .set(Keys::new(id).inflight("u1", "busy"), "claim")
        .await
        .unwrap();
    // On the Postgres path: u2's redeem transaction holds its key.
    let key = coupon_node::domain::idempotency::IdempotencyKey::parse("busy2").unwrap();
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key.lock_key(id, "u2"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let paused = app
        .post(
            &format!("/v1/campaigns/{id}/pause"),
            Some(&app.admin()),
            &json!({}),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    // The originals may still succeed: a retry must hear "in flight", not
    // "paused" (which would tell the client that nothing was redeemed).
    let (s, b, _) = app.redeem("u1", "busy", "GATEFLIGHT", "o").await;
    assert_problem(s, &b, 409, "idempotency_in_flight");
    let (s, b, _) = app.redeem("u2", "busy2", "GATEFLIGHT", "o").await;
    assert_problem(s, &b, 409, "idempotency_in_flight");
    tx.rollback().await.unwrap();
    // A key nobody holds gets the gate's answer.
    let (s, b, _) = app.redeem("u3", "idle", "GATEFLIGHT", "o").await;
    assert_problem(s, &b, 410, "paused");
}

#[tokio::test]
async fn a_stale_pool_code_from_redis_falls_back_to_postgres_and_leaves_redis() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "pool", "code": "STALEPOOL", "total_limit": null}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    app.generate(id, json!({"count": 2})).await;
    let codes: Vec<String> = app
        .export(id)
        .await
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    let (stale, fresh) = (&codes[0], &codes[1]);
    let k = Keys::new(id);
    let mut r = redis().await;
    // Postgres used `stale` behind Redis' back; Redis lists only `stale`.
    sqlx::query("UPDATE codes SET used = true WHERE code = $1")
        .bind(stale)
        .execute(&app.db)
        .await
        .unwrap();
    let _: () = r.srem(k.free(), fresh).await.unwrap();
    let (s, b, _) = app.redeem("u1", "k1", "STALEPOOL", "o").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "Postgres must pop a code itself: {b}"
    );
    assert_eq!(b["assigned_code"], fresh.as_str(), "{b}");
    let listed: Vec<String> = r.smembers(k.free()).await.unwrap();
    assert!(
        listed.is_empty(),
        "the used code went back to Redis: {listed:?}"
    );
    // Stale again, and nothing left in Postgres: exhausted, and the used
    // code still does not go back.
    let _: () = r.sadd(k.free(), stale).await.unwrap();
    let (s, b, _) = app.redeem("u2", "k2", "STALEPOOL", "o").await;
    assert_problem(s, &b, 410, "exhausted");
    let listed: Vec<String> = r.smembers(k.free()).await.unwrap();
    assert!(
        listed.is_empty(),
        "the used code went back to Redis: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_number_clash_keeps_the_claimed_seat() {
    let app = TestApp::spawn().await;
    let total = 200;
    let c = app
        .campaign(json!({"kind": "shared", "code": "USECLASH", "total_limit": total, "per_user_limit": 2}))
        .await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    // Another transaction takes u1's use 1 (on seat `total`) and commits
    // only once the node's insert waits on it: the node's insert then
    // clashes on the use number, not on the seat Redis claimed for it.
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
         idempotency_key, request_hash, code, seat_no, use_no, discount) \
         SELECT 'red_direct', campaign_id, slot, 1, 'u1', 'o', 'direct', 'h', 'USECLASH', $2, 1, '{}' \
         FROM campaigns WHERE campaign_id = $1",
    )
    .bind(&id)
    .bind(total)
    .execute(&mut *tx)
    .await
    .unwrap();
    let node = {
        let base = app.base.clone();
        let token = app.user("u1");
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/coupons/redeem"))
                .bearer_auth(token)
                .header("Idempotency-Key", "K")
                .json(&json!({"code": "USECLASH", "order_id": "o"}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.commit().await.unwrap();
    let resp = node.await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The seat Redis claimed (its first, seat 1) is the one taken: had the
    // clash dropped it, Postgres would have picked another and Redis would
    // have lost seat 1 until the next rebuild.
    let seat: i32 = sqlx::query_scalar(
        "SELECT seat_no FROM redemptions WHERE campaign_id = $1 AND idempotency_key = 'K'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seat, 1);
}

#[tokio::test]
async fn a_key_is_scoped_to_the_caller_and_the_campaign() {
    let app = TestApp::spawn().await;
    app.campaign(json!({"kind": "shared", "code": "SCOPEA", "total_limit": 5}))
        .await;
    app.campaign(json!({"kind": "shared", "code": "SCOPEB", "total_limit": 5}))
        .await;
    // Two campaigns, one key: two scopes, as when the campaigns live in two
    // regions (the multi-region test checks that side).
    let (s, a, _) = app.redeem("u1", "same", "SCOPEA", "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (s, b, _) = app.redeem("u1", "same", "SCOPEB", "o1").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_ne!(a["redemption_id"], b["redemption_id"]);
    // Within a campaign the key still means one redemption.
    let (s, r, h) = app.redeem("u1", "same", "SCOPEA", "o1").await;
    assert_replayed(s, &r, &h, &a);
    let (s, r, _) = app.redeem("u1", "same", "SCOPEA", "o2").await;
    assert_problem(s, &r, 422, "idempotency_key_reused");
}

/// Refusals check Postgres for a prior success in batches: under 220
/// concurrent refusals each retry still gets its own redemption back, a
/// reused key with another body is still refused, and a fresh attempt is
/// told the campaign is exhausted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refusals_each_get_their_own_replay_or_refusal() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "BATCHREPLAY", "total_limit": 60}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let firsts = futures::future::join_all((0..60).map(|i| {
        let app = &app;
        async move {
            app.redeem(
                &format!("w{i}"),
                &format!("k{i}"),
                "BATCHREPLAY",
                &format!("o{i}"),
            )
            .await
        }
    }))
    .await;
    for (s, b, _) in &firsts {
        assert_eq!(*s, StatusCode::CREATED, "{b}");
    }
    // The replay markers are lost; Redis says "exhausted" to everyone now.
    let mut r = redis().await;
    lose_and_rebuild(&app, &mut r, id).await;
    let asks = (0..220).map(|i| {
        let app = &app;
        async move {
            match i {
                0..60 => {
                    let (u, k, o) = (format!("w{i}"), format!("k{i}"), format!("o{i}"));
                    app.redeem(&u, &k, "BATCHREPLAY", &o).await
                }
                60..80 => {
                    let j = i - 60;
                    let (u, k) = (format!("w{j}"), format!("k{j}"));
                    app.redeem(&u, &k, "BATCHREPLAY", "another-order").await
                }
                _ => {
                    let u = format!("late{i}");
                    app.redeem(&u, "fresh", "BATCHREPLAY", "o").await
                }
            }
        }
    });
    let answers = futures::future::join_all(asks).await;
    for (i, (s, b, h)) in answers.iter().enumerate() {
        match i {
            0..60 => assert_replayed(*s, b, h, &firsts[i].1),
            60..80 => assert_eq!(
                (*s, b["code"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("idempotency_key_reused")
                ),
                "{b}"
            ),
            _ => assert_eq!(
                (*s, b["code"].as_str()),
                (StatusCode::GONE, Some("exhausted")),
                "{b}"
            ),
        }
    }
    assert_eq!(app.active_redemptions(id).await, 60);
}
