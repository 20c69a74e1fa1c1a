//! The standby node's half of a takeover (docs/failover.md §3), run when the
//! raft map shows this node's region `failing_over` to it. Every step is
//! idempotent, so a node killed anywhere in here finishes on restart:
//!
//! 1. promote the standby database (skipped once it is out of recovery);
//! 2. check it has every acknowledged commit: replay LSN ≥ the LSN the lost
//!    primary's last lease reported as confirmed by this standby;
//! 3. run alone: clear `synchronous_standby_names` (inherited from the old
//!    primary; with no standby of its own every commit would block);
//! 4. activate the region's slots at epoch + 1 in this database;
//! 5. commit the takeover in raft with this database's timeline; routers
//!    follow the map to this node.

use super::replication;
use coupon_raft::model::FailoverRecord;
use sqlx::PgPool;
use std::time::{Duration, Instant};

const PROMOTE_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("the database was not promoted within {0:?}")]
    NotPromoted(Duration),
    #[error(
        "the promoted database replayed WAL to {replayed}, but the lost primary had commits acknowledged up to {acked}: refusing to serve with acknowledged redemptions missing"
    )]
    Behind { replayed: u64, acked: u64 },
    #[error("raft: {0}")]
    Raft(String),
}

/// What the node needs to commit the takeover in raft.
pub struct RaftAccess<'a> {
    pub urls: &'a [String],
    pub token: &'a str,
}

/// Steps 1–5; returns the promoted database's timeline.
pub async fn run(
    db: &PgPool,
    rec: &FailoverRecord,
    raft: &RaftAccess<'_>,
) -> Result<u64, TakeoverError> {
    let region = rec.region.as_str();
    // A planned switchover starts while the old primary still holds its
    // lease: promote only once the raft leader judges it lapsed (it can no
    // longer renew), so the two never serve at once.
    if rec.planned && replication::in_recovery(db).await? {
        wait_lapsed(raft, region).await?;
    }
    if replication::in_recovery(db).await? {
        tracing::warn!(region, "takeover: promoting the standby database");
        sqlx::query("SELECT pg_promote(true, 60)")
            .execute(db)
            .await?;
    }
    let started = Instant::now();
    while replication::in_recovery(db).await? {
        if started.elapsed() > PROMOTE_WAIT {
            return Err(TakeoverError::NotPromoted(PROMOTE_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A takeover cut here (the promoted database not yet in raft) must be
    // finished by the next run: chaos::takeover_interrupted.
    fail::fail_point!("takeover_after_promote", |_| {
        tracing::error!("failpoint takeover_after_promote: exiting");
        std::process::exit(3)
    });
    let replayed: i64 = sqlx::query_scalar(
        "SELECT (COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(db)
    .await?;
    if (replayed as u64) < rec.acked_lsn && !rec.forced {
        return Err(TakeoverError::Behind {
            replayed: replayed as u64,
            acked: rec.acked_lsn,
        });
    }
    sqlx::query("ALTER SYSTEM RESET synchronous_standby_names")
        .execute(db)
        .await?;
    sqlx::query("SELECT pg_reload_conf()").execute(db).await?;
    activate(db, &rec.slots).await?;
    let timeline = replication::status(db).await?.timeline;
    complete(raft, rec, timeline).await?;
    tracing::warn!(
        region,
        timeline,
        slots = rec.slots.len(),
        "takeover complete: this node now serves the region"
    );
    Ok(timeline)
}

/// Activates every taken-over slot at its new epoch in one statement: the
/// promoted database has no other writer yet, so the per-slot locks the
/// mover takes against in-flight redeems are not needed here.
async fn activate(db: &PgPool, slots: &[(u32, u64)]) -> Result<(), sqlx::Error> {
    let s: Vec<i32> = slots.iter().map(|(s, _)| *s as i32).collect();
    let e: Vec<i64> = slots.iter().map(|(_, e)| *e as i64).collect();
    sqlx::query(
        "INSERT INTO slot_ownership (slot, epoch, state) \
         SELECT s, e, 'active' FROM UNNEST($1::int[], $2::bigint[]) AS t(s, e) \
         ON CONFLICT (slot) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'active', updated_at = now() \
         WHERE slot_ownership.epoch < EXCLUDED.epoch",
    )
    .bind(&s)
    .bind(&e)
    .execute(db)
    .await?;
    Ok(())
}

async fn wait_lapsed(raft: &RaftAccess<'_>, region: &str) -> Result<(), TakeoverError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| TakeoverError::Raft(e.to_string()))?;
    let started = Instant::now();
    loop {
        for base in raft.urls {
            let url = format!("{}/v1/cluster/leases", base.trim_end_matches('/'));
            if let Ok(r) = http.get(url).send().await {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let lapsed = v["leases"].as_array().is_some_and(|ls| {
                    ls.iter()
                        .any(|l| l["region"] == region && l["lapsed"] == true)
                });
                if lapsed {
                    return Ok(());
                }
                break;
            }
        }
        if started.elapsed() > PROMOTE_WAIT {
            return Err(TakeoverError::Raft(format!(
                "region {region}'s lease never lapsed within {PROMOTE_WAIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn complete(
    raft: &RaftAccess<'_>,
    rec: &FailoverRecord,
    timeline: u64,
) -> Result<(), TakeoverError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(6))
        .build()
        .map_err(|e| TakeoverError::Raft(e.to_string()))?;
    let body = serde_json::json!({"request_id": format!("complete-{}", rec.id),
        "region": rec.region, "timeline": timeline});
    let mut last = String::from("no raft member");
    for base in raft.urls {
        let res = http
            .post(format!(
                "{}/v1/cluster/failover/complete",
                base.trim_end_matches('/')
            ))
            .bearer_auth(raft.token)
            .json(&body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                let p: serde_json::Value = r.json().await.unwrap_or_default();
                // Completed by an earlier run whose answer was lost.
                if p["code"] == "no_failover" {
                    return Ok(());
                }
                last = format!("{status}: {p}");
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(TakeoverError::Raft(last))
}
