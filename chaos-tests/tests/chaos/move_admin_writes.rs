//! Guards admin writes across a move (docs/architecture.md §7):
//! - a pause answered 200 before the move is carried to the new owner; a
//!   pause sent during the freeze (at the old owner's node and through a
//!   router) is never answered 200; after the move a pause through any
//!   router lands at the new owner and the campaign refuses redeems
//!   (`paused`);
//! - a code-generation job running while its slot moves does not strand
//!   codes: the new owner holds exactly the codes the old owner wrote, the
//!   job ends (`done`, or `failed` naming the move with `done` equal to the
//!   codes moved — never `running` for ever), and a moved code redeems at
//!   the new owner.

use super::helpers::{check, eventually, US_CODE, US_SLOT};
use coupon_chaos_tests::checker::Move;
use coupon_chaos_tests::moves::{admin, move_slot, stores};
use coupon_chaos_tests::workload::{create_campaign, redeem, shared_campaign};
use coupon_chaos_tests::Harness;
use coupon_core::CampaignId;
use coupon_node::ownership::mover::{self, MoveError, Options, Outcome, Step};
use serde_json::{json, Value};
use std::time::Duration;

async fn post(h: &Harness, base: &str, path: &str) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{base}{path}"))
        .bearer_auth(h.issuer.admin())
        .json(&json!({}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(h: &Harness, path: &str) -> Value {
    h.http
        .get(format!("{}{path}", h.router("ap")))
        .bearer_auth(h.issuer.admin())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .unwrap_or(Value::Null)
}

async fn scalar(h: &Harness, region: &str, sql: &str, id: &str) -> Option<String> {
    let db = sqlx::PgPool::connect(&h.cluster.region(region).db_url())
        .await
        .unwrap();
    let v: Option<String> = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&db)
        .await
        .unwrap();
    db.close().await;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pauses_during_a_freeze_and_a_job_spanning_a_move_are_never_lost() {
    let h = Harness::start("move-admin-writes").await;
    let c = shared_campaign(&h, "us", US_CODE, 100).await;
    let id = c["campaign_id"].as_str().unwrap().to_owned();
    let status = "SELECT status FROM campaigns WHERE campaign_id = $1";
    // A pause and a resume before the move, both 200.
    assert_eq!(
        post(&h, &h.router("us"), &format!("/v1/campaigns/{id}/pause"))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&h, &h.router("us"), &format!("/v1/campaigns/{id}/resume"))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&h, &h.router("eu"), &format!("/v1/campaigns/{id}/pause"))
            .await
            .0,
        200
    );

    // The move stops after the freeze (a mover crash would leave it so).
    let began_at = chrono::Utc::now();
    let opts = Options {
        stop_after: Some(Step::Frozen),
    };
    match mover::move_slot(&admin(&h), &stores(&h).await, US_SLOT, "eu", &opts).await {
        Err(MoveError::Stopped(Step::Frozen)) => {}
        other => panic!("the mover should stop after the freeze: {other:?}"),
    }
    for base in [h.node("us"), h.router("us"), h.router("ap")] {
        let (s, b) = post(&h, &base, &format!("/v1/campaigns/{id}/resume")).await;
        assert_ne!(
            s, 200,
            "a resume during the freeze via {base} answered 200: {b}"
        );
        assert!([421, 503].contains(&s), "via {base}: {s} {b}");
    }
    assert_eq!(
        scalar(&h, "us", status, &id).await.as_deref(),
        Some("paused")
    );
    let r = mover::resume(
        &admin(&h),
        &stores(&h).await,
        US_SLOT,
        false,
        &Options::default(),
    )
    .await
    .expect("finish the move")
    .expect("an unfinished move");
    assert_eq!(r.outcome, Outcome::Completed);
    let moved = Move {
        slot: US_SLOT,
        from: "us".into(),
        to: "eu".into(),
        new_epoch: 2,
        began_at,
        completed_at: chrono::Utc::now(),
    };
    // The pause answered 200 before the move is at the new owner.
    assert_eq!(
        scalar(&h, "eu", status, &id).await.as_deref(),
        Some("paused")
    );
    let mut records = Vec::new();
    let r = settled(&h, "ap", "while-paused", US_CODE, &mut records).await;
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (410, Some("paused")),
        "{r:?}"
    );
    let mut resumed = (0, Value::Null);
    for _ in 0..20 {
        resumed = post(&h, &h.router("us"), &format!("/v1/campaigns/{id}/resume")).await;
        if resumed.0 != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(resumed.0, 200, "{resumed:?}");
    assert_eq!(
        scalar(&h, "eu", status, &id).await.as_deref(),
        Some("active")
    );

    // A generation job spanning a move of its campaign's slot.
    let pool = create_campaign(
        &h,
        "us",
        json!({"name": "spanning", "kind": "pool", "per_user_limit": 1,
            "discount": {"type": "percent", "percent": 10},
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let pid = pool["campaign_id"].as_str().unwrap().to_owned();
    let pslot = CampaignId::parse(&pid).unwrap().slot().get();
    let (s, job) = post_json(
        &h,
        &format!("/v1/campaigns/{pid}/codes"),
        json!({"count": 300000}),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let job_path = format!("/v1/jobs/{}", job["job_id"].as_str().unwrap());
    eventually(Duration::from_secs(60), "the job made progress", || async {
        get(&h, &job_path).await["done"].as_i64().unwrap_or(0) > 0
    })
    .await;
    let began_at = chrono::Utc::now();
    let m2 = move_slot(&h, pslot, "ap")
        .await
        .expect("move the job's slot");
    let second = Move { began_at, ..m2 };
    eventually(Duration::from_secs(60), "the job ended", || async {
        let state = get(&h, &job_path).await["state"].clone();
        state == "done" || state == "failed"
    })
    .await;
    let end = get(&h, &job_path).await;
    let count = "SELECT count(*)::text FROM codes WHERE campaign_id = $1";
    let (old, new) = (
        scalar(&h, "us", count, &pid).await.unwrap(),
        scalar(&h, "ap", count, &pid).await.unwrap(),
    );
    eprintln!("job across a move: {end}; codes at us {old}, at ap {new}");
    assert_eq!(old, new, "codes stranded on the old owner: {end}");
    let n: i64 = new.parse().unwrap();
    match end["state"].as_str() {
        Some("done") => assert_eq!(n, 300000, "{end}"),
        Some("failed") => {
            assert!(
                end["error"].as_str().unwrap_or("").contains("slot move"),
                "{end}"
            );
            // Progress is counted in each batch's own transaction, so the
            // copied job says exactly how many codes moved.
            assert_eq!(end["done"].as_i64(), Some(n), "{end}");
        }
        other => panic!("job state {other:?}: {end}"),
    }
    let (_, export) = get_export(&h, &pid).await;
    let code = export["codes"][0]["code"]
        .as_str()
        .expect("a moved code")
        .to_owned();
    let r = settled(&h, "us", "moved-code", &code, &mut records).await;
    assert_eq!((r.status, r.region.as_deref()), (201, Some("ap")), "{r:?}");
    let summary = check(&h, &records, &[moved, second]).await;
    assert_eq!(summary.active.values().sum::<i64>(), 1);
}

/// Redeems through `via`, retrying the bounded 503s of a slot that just
/// moved (frozen, or warming up on its new owner) with the same key.
async fn settled(
    h: &Harness,
    via: &str,
    user: &str,
    code: &str,
    records: &mut Vec<coupon_chaos_tests::workload::Record>,
) -> coupon_chaos_tests::workload::Record {
    let token = h.issuer.user(user);
    for _ in 0..40 {
        let r = redeem(&h.http, &h.router(via), via, &token, user, code).await;
        records.push(r.clone());
        if r.status != 503 {
            return r;
        }
        assert!(r.retry_after.is_some(), "503 without Retry-After: {r:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{code} via {via} still 503 after 10 s");
}

async fn post_json(h: &Harness, path: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{}{path}", h.router("eu")))
        .bearer_auth(h.issuer.admin())
        .json(&body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get_export(h: &Harness, pid: &str) -> (u16, Value) {
    let r = h
        .http
        .get(format!(
            "{}/v1/campaigns/{pid}/codes?limit=5",
            h.router("eu")
        ))
        .bearer_auth(h.issuer.admin())
        .send()
        .await
        .expect("export");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}
