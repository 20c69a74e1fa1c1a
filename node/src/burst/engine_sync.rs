//! `RedisClaim` beyond the claim itself: keeping Redis in step with
//! Postgres (seed, pause, new codes, releases), `remaining` for validate, the
//! reconciler, and the `ClaimEngine` glue.

use super::engine::{bounded, RedisClaim};
use super::keys::{self, Keys};
use super::{reconcile, seed};
use crate::domain::campaign::{Campaign, Kind};
use crate::error::ApiResult;
use crate::redeem::claim::{BoxFut, ClaimEngine};
use crate::redeem::{RedeemOutcome, RedeemRequest};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;

/// How long a code job waits for another seeder of the same campaign.
const SEEDER_WAIT: Duration = Duration::from_secs(10);

impl RedisClaim {
    pub async fn reconcile(&self, c: &Campaign) -> ApiResult<reconcile::Report> {
        reconcile::reconcile(&self.db, &self.redis, &self.metrics, c, self.grace).await
    }

    async fn remaining_inner(&self, c: &Campaign) -> ApiResult<Option<i64>> {
        if c.kind == Kind::Shared && c.total_limit.is_none() {
            return Ok(None);
        }
        let k = Keys::new(&c.campaign_id);
        let mut r = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.exists(k.ready()).scard(k.free()).get(k.next());
        match bounded(pipe.query_async::<(bool, i64, Option<i64>)>(&mut r)).await {
            Ok((true, free, next)) if c.kind != Kind::Shared || next.is_some() => {
                Ok(Some(free + keys::unlisted(c.total_limit, next)))
            }
            _ => self.remaining.of(c).await,
        }
    }

    /// Campaign metadata changed (pause, resume, new codes): mirror it.
    async fn sync_campaign(&self, c: &Campaign) -> ApiResult<()> {
        let k = Keys::new(&c.campaign_id);
        let mut r = self.redis.clone();
        let _: () = if c.paused {
            r.set(k.paused(), 1).await?
        } else {
            r.del(k.paused()).await?
        };
        Ok(())
    }

    async fn codes_added_inner(&self, c: &Campaign, codes: &[String]) -> ApiResult<Option<i64>> {
        let k = Keys::new(&c.campaign_id);
        let mut r = self.redis.clone();
        // A seeder that starts now reads this batch from Postgres (it is
        // committed). One that is already running may have paged past it
        // and publishes nothing before it ends: wait for it, then add the
        // batch ourselves. A seeder stuck past the wait leaves the count
        // short, and the job's report says so.
        let waited = std::time::Instant::now();
        loop {
            if r.exists(k.ready()).await? {
                for chunk in codes.chunks(seed::SEED_BATCH) {
                    let _: () = r.sadd(k.free(), chunk).await?;
                }
                break;
            }
            if seed::seed(&self.db, &self.redis, c).await?.done || waited.elapsed() > SEEDER_WAIT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Verify in the store: count this batch's codes Redis really holds.
        let mut present = 0i64;
        for chunk in codes.chunks(seed::SEED_BATCH) {
            let flags: Vec<bool> = redis::cmd("SMISMEMBER")
                .arg(k.free())
                .arg(chunk)
                .query_async(&mut r)
                .await?;
            present += flags.into_iter().filter(|f| *f).count() as i64;
        }
        Ok(Some(present))
    }

    async fn released_inner(&self, c: &Campaign, token: Option<&str>, user: &str) -> ApiResult<()> {
        let k = Keys::new(&c.campaign_id);
        let mut r = self.redis.clone();
        let ready: bool = r.exists(k.ready()).await?;
        if !ready {
            return Ok(());
        }
        let mut p = redis::pipe();
        p.atomic().hincr(k.users(), user, -1);
        if let Some(t) = token {
            p.sadd(k.free(), t).ignore();
        }
        let (left,): (i64,) = p.query_async(&mut r).await?;
        if left < 0 {
            // A rebuild raced the release: a count never goes below zero.
            let _: () = r.hset(k.users(), user, 0).await?;
        }
        Ok(())
    }
}

impl ClaimEngine for RedisClaim {
    fn redeem<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, ApiResult<RedeemOutcome>> {
        Box::pin(self.redeem_inner(req))
    }

    fn charges_limits(&self) -> bool {
        true
    }

    fn remaining<'a>(&'a self, c: &'a Campaign) -> BoxFut<'a, ApiResult<Option<i64>>> {
        Box::pin(self.remaining_inner(c))
    }

    fn in_flight<'a>(&'a self, req: &'a RedeemRequest) -> BoxFut<'a, bool> {
        Box::pin(async move {
            let k = Keys::new(&req.campaign.campaign_id);
            let mut r = self.redis.clone();
            let marker =
                bounded(r.get::<_, Option<String>>(k.inflight(&req.user, req.key.as_str())));
            matches!(marker.await, Ok(Some(m)) if m == "claim")
        })
    }

    fn campaign_changed<'a>(&'a self, c: &'a Campaign) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(self.sync_campaign(c))
    }

    fn codes_added<'a>(
        &'a self,
        c: &'a Campaign,
        codes: &'a [String],
    ) -> BoxFut<'a, ApiResult<Option<i64>>> {
        Box::pin(self.codes_added_inner(c, codes))
    }

    fn released<'a>(
        &'a self,
        c: &'a Campaign,
        token: Option<&'a str>,
        user: &'a str,
    ) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(self.released_inner(c, token, user))
    }

    fn reconcile<'a>(&'a self, c: &'a Campaign) -> BoxFut<'a, ApiResult<serde_json::Value>> {
        Box::pin(async move {
            Ok(serde_json::to_value(self.reconcile(c).await?).expect("report serializes"))
        })
    }

    fn seed<'a>(&'a self, c: &'a Arc<Campaign>) -> BoxFut<'a, ApiResult<()>> {
        Box::pin(async move {
            self.touch(c);
            seed::seed(&self.db, &self.redis, c).await.map(|_| ())
        })
    }
}

pub(super) async fn periodic(engine: std::sync::Weak<RedisClaim>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(e) = engine.upgrade() else { return };
        for id in e.recently_touched() {
            // Read afresh: pause state and existence may have changed.
            let c = match crate::store::campaigns::by_id(&e.db, &id).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    e.touched.lock().expect("touched lock").remove(&id);
                    continue;
                }
                Err(err) => {
                    tracing::warn!(campaign = %id, error = %err, "reconcile could not read the campaign");
                    continue;
                }
            };
            if let Err(err) = e.reconcile(&c).await {
                tracing::warn!(campaign = %c.campaign_id, error = %err, "reconcile failed");
                // Drift stops being measured while this fails: alert on it.
                e.metrics.inc("coupon_reconcile_failures_total", &[]);
            }
        }
    }
}
