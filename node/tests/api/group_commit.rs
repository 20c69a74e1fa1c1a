//! A group of winners goes in with plain inserts; when one of its rows
//! meets a unique index, the group runs once more with the clashes skipped,
//! so only the clashing member goes alone (`redeem/group_commit.rs`).

use crate::helpers::TestApp;
use coupon_node::domain::campaign::Campaign;
use coupon_node::domain::idempotency::{request_hash, IdempotencyKey};
use coupon_node::metrics::Metrics;
use coupon_node::redeem::group_commit::{try_commit, Won};
use coupon_node::redeem::{RedeemRequest, Target};
use coupon_node::store::campaigns;
use serde_json::json;
use std::sync::Arc;

pub(crate) fn member(campaign: &Arc<Campaign>, user: &str, seat: i32) -> Won {
    let code = campaign.code.clone().unwrap_or_default();
    Won {
        req: RedeemRequest {
            campaign: campaign.clone(),
            user: user.into(),
            key: IdempotencyKey::parse(&format!("{user}-key")).unwrap(),
            request_hash: request_hash(&code, &format!("{user}-order")),
            order_id: format!("{user}-order"),
            code,
            target: Target::Shared,
            epoch: None,
            committing: Default::default(),
            limits: Default::default(),
        },
        seat,
    }
}

/// Seat 1 is already taken in Postgres (as when Redis' seat view is stale):
/// the member handed seat 1 goes alone, the other two commit in the group.
#[tokio::test]
async fn a_clash_in_a_plain_group_insert_sends_only_the_clashing_member_alone() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "CLASHGRP", "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let (status, body, _) = app
        .redeem("gc-first", "gc-first-key", "CLASHGRP", "gc-o")
        .await;
    assert_eq!(status, 201, "{body}");
    let taken: i32 = sqlx::query_scalar("SELECT seat_no FROM redemptions WHERE campaign_id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let campaign = Arc::new(campaigns::by_id(&app.db, id).await.unwrap().unwrap());
    let free: Vec<i32> = (1..=10).filter(|s| *s != taken).take(2).collect();
    let group = [
        member(&campaign, "gc-a", free[0]),
        member(&campaign, "gc-b", taken),
        member(&campaign, "gc-c", free[1]),
    ];
    let metrics = Metrics::new();
    let mut conn = app.db.acquire().await.unwrap();
    let done = try_commit(&mut conn, &metrics, &group).await.unwrap();
    let mut settled: Vec<usize> = done.keys().copied().collect();
    settled.sort();
    assert_eq!(settled, [0, 2], "the clashing member alone is left out");
    for (i, who) in [(0, "gc-a"), (2, "gc-c")] {
        assert_eq!(done[&i].redemption.user_id, who);
    }
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT user_id, seat_no FROM redemptions WHERE campaign_id = $1 ORDER BY seat_no",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.contains(&("gc-first".into(), taken)), "{rows:?}");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE campaign_id = $1 AND type = 'coupon.redeemed'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 3, "one event per redemption");
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l == "coupon_group_commit_clashes_total 1"),
        "the clash was met by a plain insert, once:\n{text}"
    );
}

/// Without a clash the group goes in on its first, plain, pass.
#[tokio::test]
async fn a_group_without_clashes_commits_on_its_first_pass() {
    let app = TestApp::spawn().await;
    let c = app
        .campaign(json!({"kind": "shared", "code": "PLAINGRP", "total_limit": 10}))
        .await;
    let id = c["campaign_id"].as_str().unwrap();
    let campaign = Arc::new(campaigns::by_id(&app.db, id).await.unwrap().unwrap());
    let group = [member(&campaign, "gp-a", 4), member(&campaign, "gp-b", 5)];
    let metrics = Metrics::new();
    let mut conn = app.db.acquire().await.unwrap();
    let done = try_commit(&mut conn, &metrics, &group).await.unwrap();
    assert_eq!(done.len(), 2);
    assert!(
        !metrics
            .render()
            .contains("coupon_group_commit_clashes_total 1"),
        "no clash to meet"
    );
}
