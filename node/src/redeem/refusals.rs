//! Refusals of a campaign the node believes full, several to a
//! transaction, on the Postgres path (the Postgres-only engine, and the
//! Redis engine's fallback while Redis cannot answer).
//!
//! Alone, a loser's transaction is six round trips (begin with the fence
//! lock, ownership read with the key's lock, replay read, free use, the
//! seat count, rollback): about 555 µs of Postgres per loser at a launch
//! on the dev VM (docs/benchmarks.md, "The Postgres-only engine's
//! losers"). Here the redeems of a campaign
//! whose seats the node last counted all taken, arriving while a batch is
//! in flight, join the next one: one fence, one read that takes every
//! key's lock and finds each key's prior success and each user's free use
//! (the group commit's read), one count of the campaign's seats, one
//! rollback.
//!
//! A batch only refuses, and only what the single transaction would refuse
//! in its order: a member whose key's lock is held (in flight) or whose key
//! already succeeded (a replay), or whose campaign has a seat free, goes
//! the single path, which gives the exact answer; so does every member of
//! a batch that fails or finds the slot not this region's. The refusals
//! (`already_redeemed`, then `exhausted`) are read after the batch holds
//! every key's lock, as on the single path, so no success under the same
//! key can commit between the read and the answer.

use super::group_commit::{by_campaign, read_members};
use super::pg::begin_fenced;
use super::RedeemRequest;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store::{batch, slots};
use futures::future::join_all;
use sqlx::{Connection, PgPool};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Asks per batch (one read of every member).
const BATCH: usize = 256;

/// `$1` campaign: its seats in use, read after the members' locks.
const SEATS_TAKEN: &str = "SELECT count(*) FROM redemptions WHERE campaign_id = $1 \
     AND seat_no IS NOT NULL AND released_at IS NULL";

struct Ask {
    req: RedeemRequest,
    /// The refusal, or `None`: go the single path.
    reply: oneshot::Sender<Option<ApiError>>,
}

#[derive(Clone)]
pub struct FullRefusals {
    tx: mpsc::Sender<Ask>,
}

impl FullRefusals {
    pub fn spawn(db: PgPool, metrics: Arc<Metrics>) -> FullRefusals {
        for how in ["refused", "alone"] {
            metrics.add("coupon_batched_refusals_total", &[("how", how)], 0);
        }
        let (tx, mut rx) = mpsc::channel::<Ask>(BATCH * 16);
        tokio::spawn(async move {
            let mut asks = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut asks, BATCH).await > 0 {
                let groups = by_campaign(asks.drain(..), |a: &Ask| &a.req);
                join_all(groups.into_iter().map(|g| answer(&db, &metrics, g))).await;
            }
        });
        FullRefusals { tx }
    }

    /// The refusal a batch gave `req`, or `None`: redeem on the single path.
    pub async fn refusal(&self, req: &RedeemRequest) -> Option<ApiError> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            req: req.clone(),
            reply,
        };
        self.tx.send(ask).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// Answers one campaign's batch; a batch past the batches' deadline, or
/// failed, sends every member the single way.
async fn answer(db: &PgPool, metrics: &Metrics, group: Vec<Ask>) {
    let decided = tokio::time::timeout(batch::DEADLINE, decide(db, &group)).await;
    let mut answers = match decided {
        Ok(Ok(answers)) => answers,
        Ok(Err(e)) => {
            tracing::info!(error = %e, members = group.len(), "refusal batch failed; members go alone");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(members = group.len(), "refusal batch outlived its deadline");
            Vec::new()
        }
    };
    answers.resize_with(group.len(), || None);
    let refused = answers.iter().filter(|a| a.is_some()).count() as u64;
    metrics.add(
        "coupon_batched_refusals_total",
        &[("how", "refused")],
        refused,
    );
    let alone = group.len() as u64 - refused;
    metrics.add("coupon_batched_refusals_total", &[("how", "alone")], alone);
    for (ask, answer) in group.into_iter().zip(answers) {
        let _ = ask.reply.send(answer);
    }
}

/// Per member, in order, its refusal or `None`. The transaction only reads,
/// and ends rolled back (its key locks go with it) whatever happens.
async fn decide(db: &PgPool, group: &[Ask]) -> ApiResult<Vec<Option<ApiError>>> {
    let first = &group[0].req;
    let c = &first.campaign;
    let Some(total) = c.total_limit else {
        return Ok(Vec::new());
    };
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin_with(begin_fenced(c.slot)).await?;
    let read = async {
        // The group shares its routed epoch: a fence refusal sends every
        // member alone, to be refused with it one by one.
        slots::fence_read(&mut tx, c.slot, first.epoch, None).await?;
        let read = read_members(&mut tx, group.iter().map(|a| &a.req)).await?;
        let taken: i64 = sqlx::query_scalar(SEATS_TAKEN)
            .bind(&c.campaign_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut answers: Vec<Option<ApiError>> = group.iter().map(|_| None).collect();
        for r in read {
            answers[r.i] = match (r.locked, r.prior, r.free_use) {
                (true, false, None) => Some(ApiError::AlreadyRedeemed(
                    "this user reached the campaign's per-user limit",
                )),
                (true, false, Some(_)) if taken >= total as i64 => Some(ApiError::Exhausted),
                _ => None,
            };
        }
        Ok::<_, ApiError>(answers)
    }
    .await;
    let _ = tx.rollback().await;
    read
}
