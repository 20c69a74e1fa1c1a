//! A redeem transaction that ends without a row lets go of the key's lock
//! before its caller hears the answer. A dropped sqlx transaction only
//! queues its ROLLBACK until its connection is next used, so a refusal that
//! merely dropped it kept the key locked for a while, and the member of a
//! group sent on alone (or the caller's own retry) read 409 "in flight"
//! instead of `already_redeemed`. Seen once as a flake in
//! `chaos::pools_and_releases`.
//!
//! Both writers are called on a connection the test holds and does not use
//! again, so nothing but the code under test can end the transaction: a
//! build that drops instead of rolling back fails here every time.

use crate::helpers::TestApp;
use coupon_node::domain::idempotency::{request_hash, IdempotencyKey};
use coupon_node::error::ApiError;
use coupon_node::redeem::group_commit::{try_commit, Won};
use coupon_node::redeem::pg::{redeem_on, redeem_tx, Hint};
use coupon_node::redeem::{RedeemRequest, Target};
use coupon_node::store::campaigns;
use serde_json::json;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::Arc;

/// A user who already used their one use, asking again with a new key.
async fn second_ask(app: &TestApp, code: &str) -> RedeemRequest {
    let c = app
        .campaign(json!({"kind": "shared", "code": code, "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let (status, body, _) = app.redeem("lk-user", "lk-key-1", code, "lk-o1").await;
    assert_eq!(status, 201, "{body}");
    let campaign = campaigns::by_id(&app.db, id).await.unwrap().unwrap();
    RedeemRequest {
        campaign: Arc::new(campaign),
        user: "lk-user".into(),
        key: IdempotencyKey::parse("lk-key-2").unwrap(),
        request_hash: request_hash(code, "lk-o2"),
        order_id: "lk-o2".into(),
        code: code.into(),
        target: Target::Shared,
        epoch: None,
        committing: Default::default(),
        limits: Default::default(),
    }
}

fn seats(db: &PgPool) -> coupon_node::redeem::seats::SeatFrontier {
    coupon_node::redeem::seats::SeatFrontier::new(
        db,
        std::sync::Arc::new(coupon_node::metrics::Metrics::new()),
    )
}

async fn backend(conn: &mut PoolConnection<Postgres>) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **conn)
        .await
        .unwrap()
}

async fn advisory_locks(db: &PgPool, pid: i32) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1")
        .bind(pid)
        .fetch_one(db)
        .await
        .unwrap()
}

/// The next ask with the same key, on another connection, gets the plain
/// refusal.
async fn asked_again(db: &PgPool, req: &RedeemRequest) {
    let again = redeem_tx(db, &seats(db), req, Hint::default()).await;
    assert!(
        matches!(again, Err(ApiError::AlreadyRedeemed(_))),
        "the key is still locked by a finished transaction: {again:?}"
    );
}

#[tokio::test]
async fn a_group_that_settles_nobody_has_let_go_of_its_keys_when_it_returns() {
    let app = TestApp::spawn().await;
    let req = second_ask(&app, "LOCKGRP1").await;
    let mut conn = app.db.acquire().await.unwrap();
    let pid = backend(&mut conn).await;
    let won = [Won {
        req: req.clone(),
        seat: 2,
    }];
    let metrics = coupon_node::metrics::Metrics::new();
    let done = try_commit(&mut conn, &metrics, &won).await.unwrap();
    assert!(done.is_empty(), "the user had no use left");
    assert_eq!(advisory_locks(&app.db, pid).await, 0, "locks left held");
    asked_again(&app.db, &req).await;
    drop(conn);
}

#[tokio::test]
async fn a_refused_single_redeem_has_let_go_of_its_key_when_it_returns() {
    let app = TestApp::spawn().await;
    let req = second_ask(&app, "LOCKONE1").await;
    let mut conn = app.db.acquire().await.unwrap();
    let pid = backend(&mut conn).await;
    let first = redeem_on(&mut conn, &seats(&app.db), &req, Hint::default()).await;
    assert!(
        matches!(first, Err(ApiError::AlreadyRedeemed(_))),
        "{first:?}"
    );
    assert_eq!(advisory_locks(&app.db, pid).await, 0, "locks left held");
    asked_again(&app.db, &req).await;
    drop(conn);
}
