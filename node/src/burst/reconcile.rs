//! The reconciler (docs/architecture.md §4 step 7, §5): gives back claims that never
//! reached Postgres once they are older than the grace period, measures the
//! drift between Redis and Postgres, and rebuilds a campaign that drifted.

use super::keys::{parse_member, Keys};
use super::scripts::scripts;
use super::seed;
use crate::domain::campaign::{Campaign, Kind};
use crate::error::ApiResult;
use crate::metrics::Metrics;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;

/// Pause between the two drift readings; drift must persist to count, since
/// claims in flight make a single reading flicker.
const DRIFT_RECHECK: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub campaign_id: String,
    /// Seats or codes Postgres holds as taken (shared: active seats; pool and unique: used codes).
    pub postgres_taken: i64,
    pub redis_free: i64,
    pub in_flight: i64,
    /// Leaked claims (older than the grace period, no row in Postgres) given back.
    pub leaks_returned: i64,
    /// Free seats/codes in Redis minus what Postgres implies, before repair.
    pub drift: i64,
    /// True when the campaign's Redis state was rebuilt from Postgres.
    pub rebuilt: bool,
}

pub async fn reconcile(
    db: &PgPool,
    redis: &ConnectionManager,
    metrics: &Metrics,
    c: &Campaign,
    grace: Duration,
) -> ApiResult<Report> {
    let k = Keys::new(&c.campaign_id);
    let mut r = redis.clone();
    let mut report = Report {
        campaign_id: c.campaign_id.clone(),
        ..Report::default()
    };
    let ready: bool = r.exists(k.ready()).await?;
    if !ready {
        report.rebuilt = seed::seed(db, redis, c).await?.done;
    }
    report.leaks_returned = return_leaks(db, &mut r, &k, &c.campaign_id, grace).await?;
    let first = drift(db, &mut r, &k, c).await?;
    let second = if first.0 == 0 {
        first
    } else {
        tokio::time::sleep(DRIFT_RECHECK).await;
        drift(db, &mut r, &k, c).await?
    };
    (
        report.drift,
        report.postgres_taken,
        report.redis_free,
        report.in_flight,
    ) = second;
    metrics.set_gauge(
        "coupon_redis_drift",
        &[("campaign", &c.campaign_id)],
        second.0 as f64,
    );
    if first.0 != 0 && first.0 == second.0 {
        tracing::warn!(campaign = %c.campaign_id, drift = second.0, "redis drifted from postgres; rebuilding");
        report.rebuilt = seed::seed(db, redis, c).await?.done;
        let after = drift(db, &mut r, &k, c).await?;
        metrics.set_gauge(
            "coupon_redis_drift",
            &[("campaign", &c.campaign_id)],
            after.0 as f64,
        );
    }
    metrics.inc("coupon_reconcile_runs_total", &[]);
    metrics.add(
        "coupon_reconcile_leaks_returned_total",
        &[],
        report.leaks_returned as u64,
    );
    Ok(report)
}

async fn return_leaks(
    db: &PgPool,
    r: &mut ConnectionManager,
    k: &Keys,
    campaign_id: &str,
    grace: Duration,
) -> ApiResult<i64> {
    let cutoff = now_ms() - grace.as_millis() as i64;
    let old: Vec<String> = r.zrangebyscore(k.claims(), "-inf", cutoff).await?;
    let mut returned = 0;
    for member in old {
        let Some((token, key, user)) = parse_member(&member) else {
            continue;
        };
        let committed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM redemptions WHERE campaign_id = $3 AND user_id = $1 \
             AND idempotency_key = $2)",
        )
        .bind(user)
        .bind(key)
        .bind(campaign_id)
        .fetch_one(db)
        .await?;
        if committed {
            // The commit happened; only the settle step was lost.
            let _: () = r.zrem(k.claims(), &member).await?;
            continue;
        }
        let n: i64 = scripts()
            .give_back
            .key(k.free())
            .key(k.users())
            .key(k.claims())
            .key(k.inflight(user, key))
            .arg(&member)
            .arg(token)
            .arg(user)
            .invoke_async(r)
            .await?;
        returned += n;
    }
    Ok(returned)
}

/// (drift, postgres taken, redis free, in flight).
async fn drift(
    db: &PgPool,
    r: &mut ConnectionManager,
    k: &Keys,
    c: &Campaign,
) -> ApiResult<(i64, i64, i64, i64)> {
    let (listed, in_flight, next): (i64, i64, Option<i64>) = redis::pipe()
        .atomic()
        .scard(k.free())
        .zcard(k.claims())
        .get(k.next())
        .query_async(r)
        .await?;
    let free = listed + super::keys::unlisted(c.total_limit, next);
    let (capacity, taken): (i64, i64) = match (c.kind, c.total_limit) {
        (Kind::Shared, None) => return Ok((0, 0, free, in_flight)),
        (Kind::Shared, Some(total)) => {
            let taken: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND seat_no IS NOT NULL AND released_at IS NULL",
            )
            .bind(&c.campaign_id)
            .fetch_one(db)
            .await?;
            (total as i64, taken)
        }
        (Kind::Pool | Kind::Unique, _) => {
            sqlx::query_as(
                "SELECT count(*), count(*) FILTER (WHERE used) FROM codes WHERE campaign_id = $1",
            )
            .bind(&c.campaign_id)
            .fetch_one(db)
            .await?
        }
    };
    let expected_free = capacity - taken - in_flight;
    Ok((free - expected_free, taken, free, in_flight))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
