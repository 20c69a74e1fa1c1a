//! `RedisClaim`: the claim engine of the burst path.

use super::keys::{claim_member, Keys};
use super::reconcile::now_ms;
use super::scripts::scripts;
use super::{seed, INFLIGHT_TTL_MS, REDIS_TIMEOUT, REPLAY_MARKER_TTL_MS};
use crate::config::BurstConfig;
use crate::domain::campaign::Campaign;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

use crate::redeem::pg::{self, Hint};
use crate::redeem::{RedeemOutcome, RedeemRequest, Target};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Campaigns the periodic reconciler follows at most, per node.
pub const MAX_TOUCHED: usize = 10_000;
/// A campaign nobody redeemed for this long drops out of the periodic
/// reconciler (a redeem or an explicit reconcile brings it back).
pub const TOUCHED_IDLE: Duration = Duration::from_secs(3600);

pub struct RedisClaim {
    pub(super) db: PgPool,
    pub(super) redis: ConnectionManager,
    pub(super) metrics: Arc<Metrics>,
    pub(super) grace: Duration,
    seeding: Arc<Mutex<HashSet<String>>>,
    /// Campaigns this node served recently (id → last served, and their
    /// Redis key names), for the periodic reconciler; bounded, and only ids:
    /// the reconciler reads each campaign afresh, so it never publishes a
    /// stale state.
    pub(super) touched: Mutex<HashMap<String, Touched>>,
    /// The replay check every refusal makes, batched.
    replays: crate::redeem::replay_batch::ReplayReader,
    /// Winners of shared campaigns, committed several to a transaction.
    groups: crate::redeem::group_commit::GroupCommitter,
    /// Seat picks of redeems that commit without a Redis seat.
    seats: crate::redeem::seats::SeatFrontier,
    /// Validate's count when Redis cannot answer for the campaign.
    pub(super) remaining: crate::redeem::remaining::RemainingCounts,
}

pub(super) struct Touched {
    at: Instant,
    keys: Arc<Keys>,
}

enum Verdict {
    /// Over a rate limit: its scope and the ms to wait.
    Limited(String, u64),
    NotLoaded,
    Paused,
    Replay,
    InFlight,
    AlreadyRedeemed,
    CodeUsed,
    Exhausted,
    AudienceMismatch,
    Claimed(String),
}

pub(super) async fn bounded<T>(
    f: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(REDIS_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "redis call timed out",
            )))
        })
}

impl RedisClaim {
    pub fn new(
        db: PgPool,
        redis: ConnectionManager,
        metrics: Arc<Metrics>,
        cfg: &BurstConfig,
    ) -> Arc<RedisClaim> {
        // Counters an alert watches exist from the start at 0: a series
        // born at its first increment has no earlier sample, so `increase()`
        // would miss that first failure.
        for name in [
            "coupon_reconcile_runs_total",
            "coupon_reconcile_failures_total",
            "coupon_reconcile_leaks_returned_total",
            "coupon_seed_failures_total",
        ] {
            metrics.add(name, &[], 0);
        }
        for reason in ["redis_error", "not_loaded"] {
            metrics.add("coupon_claim_fallback_total", &[("reason", reason)], 0);
        }
        let engine = Arc::new(RedisClaim {
            replays: crate::redeem::replay_batch::ReplayReader::spawn(db.clone()),
            groups: crate::redeem::group_commit::GroupCommitter::spawn(db.clone(), metrics.clone()),
            seats: crate::redeem::seats::SeatFrontier::new(&db, metrics.clone()),
            remaining: crate::redeem::remaining::RemainingCounts::new(db.clone()),
            db,
            redis,
            metrics,
            grace: Duration::from_millis(cfg.reconcile_grace_ms),
            seeding: Arc::default(),
            touched: Mutex::default(),
        });
        if cfg.reconcile_interval_ms > 0 {
            tokio::spawn(super::engine_sync::periodic(
                Arc::downgrade(&engine),
                Duration::from_millis(cfg.reconcile_interval_ms),
            ));
        }
        engine
    }

    async fn run_claim(&self, req: &RedeemRequest, k: &Keys) -> redis::RedisResult<Verdict> {
        let s = scripts();
        let (script, third) = match &req.target {
            Target::Shared => (
                &s.claim_shared,
                req.campaign.total_limit.unwrap_or(0).to_string(),
            ),
            Target::PoolClaim => (&s.claim_pool, String::new()),
            Target::Code {
                code,
                intended_user: None,
            } => (&s.claim_pool, code.clone()),
            Target::Code {
                code,
                intended_user: Some(_),
            } => (&s.claim_unique, code.clone()),
        };
        let mut inv = script.key(k.ready());
        inv.key(k.paused())
            .key(k.free())
            .key(k.users())
            .key(k.claims())
            .key(k.inflight(&req.user, req.key.as_str()))
            .key(k.next())
            .key(&req.limits.user.key)
            .key(&req.limits.ip.key);
        inv.arg(&req.user)
            .arg(req.campaign.per_user_limit)
            .arg(third)
            .arg(now_ms())
            .arg(INFLIGHT_TTL_MS)
            .arg(req.key.as_str());
        match &req.target {
            Target::Code {
                intended_user: Some(owner),
                ..
            } => inv.arg(owner),
            _ => inv.arg(""),
        };
        let l = &req.limits;
        inv.arg(l.user.interval_ms)
            .arg(l.user.burst)
            .arg(l.ip.interval_ms)
            .arg(l.ip.burst);
        let mut r = self.redis.clone();
        let out: Vec<String> = bounded(inv.invoke_async(&mut r)).await?;
        Ok(match out.first().map(String::as_str) {
            Some("ok") => Verdict::Claimed(out.get(1).cloned().unwrap_or_default()),
            Some("limited") => Verdict::Limited(
                out.get(1).cloned().unwrap_or_default(),
                out.get(2).and_then(|w| w.parse().ok()).unwrap_or(1000),
            ),
            Some("not_loaded") => Verdict::NotLoaded,
            Some("paused") => Verdict::Paused,
            Some("replay") => Verdict::Replay,
            Some("in_flight") => Verdict::InFlight,
            Some("already_redeemed") => Verdict::AlreadyRedeemed,
            Some("code_used") => Verdict::CodeUsed,
            Some("exhausted") => Verdict::Exhausted,
            Some("audience_mismatch") => Verdict::AudienceMismatch,
            other => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::TypeError,
                    "unexpected script answer",
                    format!("{other:?}"),
                )))
            }
        })
    }

    pub(super) async fn redeem_inner(&self, req: &RedeemRequest) -> ApiResult<RedeemOutcome> {
        let k = self.touch(&req.campaign);
        let verdict = match self.run_claim(req, &k).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "redis claim failed; using the postgres-only path");
                return self.fallback(req, "redis_error").await;
            }
        };
        let claimed = match verdict {
            Verdict::Claimed(token) => token,
            // Before any other answer, a replay included, as on the
            // separate limit call.
            Verdict::Limited(scope, wait_ms) => {
                return Err(super::ratelimit::limited(&self.metrics, &scope, wait_ms))
            }
            Verdict::NotLoaded => {
                self.spawn_seed(req.campaign.clone());
                return self.fallback(req, "not_loaded").await;
            }
            Verdict::Replay
            | Verdict::AlreadyRedeemed
            | Verdict::CodeUsed
            | Verdict::Paused
            | Verdict::Exhausted
            | Verdict::InFlight
            | Verdict::AudienceMismatch => {
                // Whatever Redis says, a retry of a success replays: its
                // marker may be gone (flush, failover, expiry, a lost
                // settle), so Postgres, which keeps every success, is asked
                // before any refusal. One indexed read, no lock, no write.
                if let Some(prior) = self.replays.prior(req).await? {
                    return Ok(RedeemOutcome {
                        redemption: prior,
                        replayed: true,
                        taken: None,
                    });
                }
                return match verdict {
                    // Redis may count a use Postgres does not have: a claim
                    // leaked by a node killed between claim and commit keeps
                    // the user's use until the reconciler returns it. Postgres
                    // decides (and refuses a use the user really spent).
                    Verdict::AlreadyRedeemed => self.fallback(req, "user_uses_unconfirmed").await,
                    Verdict::CodeUsed => {
                        Err(ApiError::AlreadyRedeemed("this code was already used"))
                    }
                    Verdict::Paused => Err(ApiError::Paused),
                    Verdict::Exhausted => Err(ApiError::Exhausted),
                    Verdict::InFlight => Err(ApiError::IdempotencyInFlight),
                    Verdict::AudienceMismatch => Err(ApiError::AudienceMismatch),
                    _ => self.fallback(req, "stale_replay_marker").await,
                };
            }
        };
        self.metrics
            .inc("coupon_claims_total", &[("result", "claimed")]);
        // A crash here leaks the claim until the reconciler returns it.
        fail::fail_point!("after_claim_before_commit", |_| Err(
            ApiError::Unavailable {
                what: "node (failpoint)"
            }
        ));
        let member = claim_member(&claimed, req.key.as_str(), &req.user);
        let hint = match &req.target {
            Target::Shared => Hint {
                seat_no: claimed.parse().ok(),
                pool_code: None,
            },
            _ => Hint {
                seat_no: None,
                pool_code: Some(claimed.clone()),
            },
        };
        match self.commit(req, hint).await {
            Ok(out) if out.replayed => {
                self.give_back_checked(&k, &member, &claimed, req).await;
                Ok(out)
            }
            Ok(out) => {
                let repair = out.taken.as_deref().filter(|t| *t != claimed).unwrap_or("");
                let mut r = self.redis.clone();
                let mut settle = scripts().finish.key(k.free());
                settle
                    .key(k.claims())
                    .key(k.inflight(&req.user, req.key.as_str()));
                settle.arg(&member).arg(REPLAY_MARKER_TTL_MS).arg(repair);
                if let Err(e) = bounded(settle.invoke_async::<i64>(&mut r)).await {
                    // The row is committed; the reconciler settles the claim later.
                    tracing::warn!(error = %e, "could not settle the redis claim");
                }
                fail::fail_point!("after_commit_before_reply", |_| Err(
                    ApiError::Unavailable {
                        what: "node (failpoint)"
                    }
                ));
                Ok(out)
            }
            Err(e) => {
                self.give_back_checked(&k, &member, &claimed, req).await;
                Err(e)
            }
        }
    }

    /// The Postgres commit of a claim: a seat of a shared campaign joins a
    /// group of winners; anything else, or a member its group could not
    /// settle, commits alone.
    async fn commit(&self, req: &RedeemRequest, hint: Hint) -> ApiResult<RedeemOutcome> {
        use crate::redeem::group_commit::Grouped;
        if let (Target::Shared, Some(seat)) = (&req.target, hint.seat_no) {
            if let Grouped::Done(out) = self.groups.redeem(req, seat).await {
                return Ok(*out);
            }
        }
        pg::redeem_tx(&self.db, &self.seats, req, hint).await
    }

    /// Gives the claim back, but re-lists its seat or code only if Postgres
    /// says it is free: a stale Redis view may have handed out a taken one,
    /// which must leave the free set for good. When Postgres cannot answer,
    /// the claim is trusted (the reconciler corrects any drift).
    async fn give_back_checked(&self, k: &Keys, member: &str, token: &str, req: &RedeemRequest) {
        let token = if token.is_empty() {
            token
        } else {
            match pg::token_free(&self.db, &req.campaign, token).await {
                Ok(false) => {
                    self.metrics
                        .inc("coupon_claims_total", &[("result", "stale_dropped")]);
                    ""
                }
                _ => token,
            }
        };
        self.give_back(k, member, token, req).await;
    }

    async fn give_back(&self, k: &Keys, member: &str, token: &str, req: &RedeemRequest) {
        let mut r = self.redis.clone();
        let mut call = scripts().give_back.key(k.free());
        call.key(k.users())
            .key(k.claims())
            .key(k.inflight(&req.user, req.key.as_str()));
        call.arg(member).arg(token).arg(&req.user);
        match bounded(call.invoke_async::<i64>(&mut r)).await {
            Ok(_) => self
                .metrics
                .inc("coupon_claims_total", &[("result", "given_back")]),
            Err(e) => {
                tracing::warn!(error = %e, "could not give the claim back; the reconciler will")
            }
        }
    }

    async fn fallback(&self, req: &RedeemRequest, reason: &str) -> ApiResult<RedeemOutcome> {
        self.metrics
            .inc("coupon_claim_fallback_total", &[("reason", reason)]);
        pg::redeem_tx(&self.db, &self.seats, req, Hint::default()).await
    }

    /// Marks the campaign served now; returns its key names.
    pub(super) fn touch(&self, c: &Campaign) -> Arc<Keys> {
        let mut t = self.touched.lock().expect("touched lock");
        let now = Instant::now();
        if let Some(entry) = t.get_mut(&c.campaign_id) {
            entry.at = now;
            return entry.keys.clone();
        }
        if t.len() >= MAX_TOUCHED {
            // Full: forget what was idle longest, so the map stays bounded.
            t.retain(|_, e| now.duration_since(e.at) < TOUCHED_IDLE);
            if t.len() >= MAX_TOUCHED {
                if let Some(oldest) = t.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone()) {
                    t.remove(&oldest);
                }
            }
        }
        let keys = Arc::new(Keys::new(&c.campaign_id));
        t.insert(
            c.campaign_id.clone(),
            Touched {
                at: now,
                keys: keys.clone(),
            },
        );
        keys
    }

    /// Campaigns served within [`TOUCHED_IDLE`]; older ones are forgotten.
    pub(super) fn recently_touched(&self) -> Vec<String> {
        let mut t = self.touched.lock().expect("touched lock");
        let now = Instant::now();
        t.retain(|_, e| now.duration_since(e.at) < TOUCHED_IDLE);
        t.keys().cloned().collect()
    }

    /// Build the campaign's Redis state in the background, once at a time.
    pub fn spawn_seed(&self, c: Arc<Campaign>) {
        if !self
            .seeding
            .lock()
            .expect("seeding lock")
            .insert(c.campaign_id.clone())
        {
            return;
        }
        let (db, redis, metrics, seeding) = (
            self.db.clone(),
            self.redis.clone(),
            self.metrics.clone(),
            self.seeding.clone(),
        );
        tokio::spawn(async move {
            match seed::seed(&db, &redis, &c).await {
                Ok(s) => {
                    tracing::info!(campaign = %c.campaign_id, free = s.free, users = s.users, "seeded redis")
                }
                Err(e) => {
                    metrics.inc("coupon_seed_failures_total", &[]);
                    tracing::warn!(campaign = %c.campaign_id, error = %e, "seeding redis failed");
                }
            }
            seeding.lock().expect("seeding lock").remove(&c.campaign_id);
        });
    }
}
