//! Admin writes are fenced like redemptions (docs/architecture.md §7): with
//! the campaign's slot frozen in this region's Postgres, a pause, a code
//! batch, a job's creation, progress and result, and a new campaign in the
//! slot are each refused with `misdirected` and change nothing; once the
//! slot is active again the same calls land. The store functions are called
//! directly, below the HTTP ownership check, so each fence is tested alone.

use crate::helpers::TestApp;
use coupon_core::{CampaignId, JobId};
use coupon_node::domain::campaign::{CreateCampaign, ValidateCampaign};
use coupon_node::error::ApiError;
use coupon_node::store::{campaigns, codes, jobs};
use serde_json::{json, Value};
use sqlx::PgPool;

fn misdirected<T: std::fmt::Debug>(what: &str, r: Result<T, ApiError>) {
    assert!(
        matches!(r, Err(ApiError::Misdirected { .. })),
        "{what} on a frozen slot: {r:?}"
    );
}

async fn set_state(db: &PgPool, slot: u16, state: &str) {
    sqlx::query("UPDATE slot_ownership SET state = $2 WHERE slot = $1")
        .bind(i32::from(slot))
        .bind(state)
        .execute(db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_frozen_slot_refuses_every_admin_write_and_an_active_one_takes_them() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .post(
            "/v1/campaigns",
            Some(&app.admin()),
            &json!({"name": "fenced", "kind": "pool", "per_user_limit": 1,
                "discount": {"type": "percent", "percent": 10},
                "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["campaign_id"]
        .as_str()
        .expect("campaign id")
        .to_owned();
    let slot = CampaignId::parse(&id).unwrap().slot();
    let job = JobId::random(slot, &mut rand::thread_rng()).to_string();
    jobs::create(&app.db, &job, &id, "generate_pool", 10)
        .await
        .unwrap();
    let code = coupon_core::GeneratedCode::random(slot, &mut rand::thread_rng())
        .as_str()
        .to_owned();
    let new: CreateCampaign = serde_json::from_value(json!({"name": "in the slot", "kind": "pool",
        "per_user_limit": 1, "discount": {"type": "percent", "percent": 5},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}))
    .unwrap();
    let new = new.validate().unwrap();
    let other = CampaignId::random(slot, &mut rand::thread_rng()).to_string();
    let db = app.db.clone();

    set_state(&db, slot.get(), "frozen").await;
    misdirected("pause", campaigns::set_paused(&db, &id, true).await);
    let mut conn = db.acquire().await.unwrap();
    // Both batch writers are fenced, and with them the job's progress,
    // which is counted inside the batch's transaction.
    let batch = std::slice::from_ref(&code);
    let by_insert = codes::insert_batch(&mut conn, &id, &job, batch, &[1], &[None]).await;
    misdirected("code batch", by_insert);
    let by_copy = codes::copy_batch(&mut conn, &id, &job, batch, &[1], &[None]).await;
    misdirected("code batch by COPY", by_copy);
    misdirected(
        "job result",
        jobs::finish(&db, &job, "done", &json!({}), None).await,
    );
    let job2 = JobId::random(slot, &mut rand::thread_rng()).to_string();
    misdirected(
        "job creation",
        jobs::create(&db, &job2, &id, "generate_pool", 1).await,
    );
    misdirected(
        "campaign creation",
        campaigns::insert(&db, &other, slot.get(), &new).await,
    );
    let state: (String, i64, String, i64, i64) = sqlx::query_as(
        "SELECT (SELECT status FROM campaigns WHERE campaign_id = $1), \
                (SELECT count(*) FROM codes WHERE campaign_id = $1), \
                (SELECT state || ':' || done FROM jobs WHERE job_id = $2), \
                (SELECT count(*) FROM jobs WHERE job_id = $3), \
                (SELECT count(*) FROM campaigns WHERE campaign_id = $4)",
    )
    .bind(&id)
    .bind(&job)
    .bind(&job2)
    .bind(&other)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        state,
        ("active".into(), 0, "running:0".into(), 0, 0),
        "nothing written on a frozen slot"
    );

    set_state(&db, slot.get(), "active").await;
    assert!(campaigns::set_paused(&db, &id, true).await.unwrap());
    assert_eq!(
        codes::insert_batch(&mut conn, &id, &job, &[code], &[1], &[None])
            .await
            .unwrap(),
        vec![1]
    );
    let done: i64 = sqlx::query_scalar("SELECT done FROM jobs WHERE job_id = $1")
        .bind(&job)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(done, 1, "progress counts the batch in its own transaction");
    jobs::finish(&db, &job, "done", &json!({}), None)
        .await
        .unwrap();
    jobs::create(&db, &job2, &id, "generate_pool", 1)
        .await
        .unwrap();
    campaigns::insert(&db, &other, slot.get(), &new)
        .await
        .unwrap();
}
