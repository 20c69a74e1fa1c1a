//! Winners of a shared campaign, committed several to a transaction.
//!
//! Alone, a winner's transaction is seven round trips (begin with the
//! fence lock, ownership read with the key's lock, replay read, free use,
//! insert, outbox, commit), and at
//! a launch those statements, not the rows, were what Postgres spent its
//! CPU on: about 1,300 winners/s against 10,000 one-insert transactions/s
//! (`docs/benchmarks.md`). Here every seat Redis granted while a group was
//! being committed joins the next group of its campaign: one fence, one
//! read that locks every key and finds each user's free use, one multi-row
//! insert, one multi-row outbox append, one commit — and one fsync.
//!
//! Every guarantee stays with Postgres' unique indexes, as on the single
//! path: a member the group cannot settle plainly (its key is held or was
//! already used, its user has no use left, its row clashed with another on
//! a seat, use or key, or the group's transaction failed) is handed back
//! as [`Grouped::Alone`] and goes through [`super::pg::redeem_tx`] on its
//! own, after the group committed or rolled back, which gives the exact
//! answer (a replay, 409, `already_redeemed`, another seat).
//!
//! The inserts are plain first: `ON CONFLICT DO NOTHING` probes every
//! unique index before each row goes in, about a third of the insert's
//! time (`docs/benchmarks.md`), to skip clashes that the group's read has
//! already ruled out but for a racer or a stale seat. When a plain insert
//! does clash, the whole group rolls back and runs once more with the
//! clashes skipped, so only the clashing members go alone.

use super::pg::begin_fenced;
use super::{RedeemOutcome, RedeemRequest};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store::{redemptions, slots};
use coupon_core::{RedemptionId, Slot};
use futures::future::join_all;
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Members per batch: a group's rows are inserted by one statement.
const GROUP: usize = 256;
/// Batches committing at once. One measured best (4,500–6,100 winners/s
/// against 3,900–5,300 with two batches of up to 256, 3,300–4,700 with two
/// of 128, and 2,800–4,100 with four of 64: `docs/benchmarks.md`): while it
/// commits, the next batch grows, and Postgres' cost per winner falls with
/// the size of its group.
/// The price is that a batch waits for the one before it (bounded by the
/// statement timeout); the campaigns of one batch commit side by side.
const IN_FLIGHT: usize = 1;

/// The group's read: per member (`$3` key locks, `$4` users, `$5` keys,
/// of campaign `$1` with per-user limit `$2`) whether its key's lock was
/// taken, whether the key already succeeded, and the user's free use.
/// `prior` is a scalar subquery with `LIMIT 1`, not `EXISTS`: Postgres may
/// turn an `EXISTS` into a hashed subplan that reads every redemption of
/// the campaign once per group, and did so at a launch, when the table's
/// statistics still said the campaign was nearly empty (1.9 ms against
/// 0.8 ms for a group of 100 at 1,000 rows, and growing with the
/// campaign). Test: `plans::the_group_read_probes_each_member_by_index`.
pub const SETTLE_READ: &str = "SELECT q.i, pg_try_advisory_xact_lock(q.l) AS locked, \
       COALESCE((SELECT true FROM redemptions r WHERE r.campaign_id = $1 AND r.user_id = q.u \
                 AND r.idempotency_key = q.k LIMIT 1), false) AS prior, \
       (SELECT n FROM generate_series(1, $2::int) n WHERE NOT EXISTS ( \
          SELECT 1 FROM redemptions r WHERE r.campaign_id = $1 AND r.user_id = q.u \
          AND r.use_no = n AND r.released_at IS NULL) ORDER BY n LIMIT 1) AS free_use \
     FROM unnest($3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY AS q(l, u, k, i)";

/// What [`SETTLE_READ`] found for one member of a group.
pub(super) struct MemberRead {
    /// The member's position in its group.
    pub i: usize,
    /// Its key's lock was taken (else a transaction holds it: in flight).
    pub locked: bool,
    /// Its key already succeeded.
    pub prior: bool,
    /// The user's lowest free use, if any is left.
    pub free_use: Option<i32>,
}

/// [`SETTLE_READ`] for the redeems of one campaign (`reqs`, non-empty),
/// taking every member's key lock for the transaction.
pub(super) async fn read_members<'a>(
    tx: &mut PgConnection,
    reqs: impl Iterator<Item = &'a RedeemRequest> + Clone,
) -> Result<Vec<MemberRead>, sqlx::Error> {
    let Some(first) = reqs.clone().next() else {
        return Ok(Vec::new());
    };
    let c = &first.campaign;
    let locks: Vec<i64> = reqs
        .clone()
        .map(|r| r.key.lock_key(&c.campaign_id, &r.user))
        .collect();
    let users: Vec<&str> = reqs.clone().map(|r| r.user.as_str()).collect();
    let keys: Vec<&str> = reqs.map(|r| r.key.as_str()).collect();
    let rows = sqlx::query(SETTLE_READ)
        .bind(&c.campaign_id)
        .bind(c.per_user_limit)
        .bind(&locks)
        .bind(&users)
        .bind(&keys)
        .fetch_all(tx)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(MemberRead {
                i: (row.try_get::<i64, _>("i")? - 1) as usize,
                locked: row.try_get("locked")?,
                prior: row.try_get("prior")?,
                free_use: row.try_get("free_use")?,
            })
        })
        .collect()
}

/// How a member left its group.
pub enum Grouped {
    Done(Box<RedeemOutcome>),
    /// Not settled by the group: redeem on the single path.
    Alone,
}

/// A seat Redis granted, waiting for its row.
pub struct Won {
    pub req: RedeemRequest,
    pub seat: i32,
}

struct Member {
    won: Won,
    reply: oneshot::Sender<Grouped>,
}

#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Member>,
}

impl GroupCommitter {
    pub fn spawn(db: PgPool, metrics: Arc<Metrics>) -> GroupCommitter {
        for how in ["grouped", "alone"] {
            metrics.add("coupon_group_commit_total", &[("how", how)], 0);
        }
        metrics.add("coupon_group_commit_clashes_total", &[], 0);
        let (tx, mut rx) = mpsc::channel::<Member>(GROUP * IN_FLIGHT * 4);
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            loop {
                // Members wait in the channel while every group is
                // committing: that wait is what makes groups.
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut members = Vec::with_capacity(GROUP);
                if rx.recv_many(&mut members, GROUP).await == 0 {
                    return;
                }
                let (db, metrics) = (db.clone(), metrics.clone());
                tokio::spawn(async move {
                    let groups = by_campaign(members, |m: &Member| &m.won.req);
                    join_all(groups.into_iter().map(|g| commit(&db, &metrics, g))).await;
                    drop(permit);
                });
            }
        });
        GroupCommitter { tx }
    }

    /// Commits `req` on `seat` (the seat Redis granted) with whatever other
    /// winners arrive meanwhile.
    pub async fn redeem(&self, req: &RedeemRequest, seat: i32) -> Grouped {
        let (reply, answer) = oneshot::channel();
        let member = Member {
            won: Won {
                req: req.clone(),
                seat,
            },
            reply,
        };
        if self.tx.send(member).await.is_err() {
            return Grouped::Alone;
        }
        answer.await.unwrap_or(Grouped::Alone)
    }
}

/// One group per campaign and routed epoch, as each member read its
/// campaign: a group shares one fence, one per-user limit and one frozen
/// discount, so members that read an edited campaign go in another group.
pub(super) fn by_campaign<T>(
    members: impl IntoIterator<Item = T>,
    req_of: impl Fn(&T) -> &RedeemRequest,
) -> Vec<Vec<T>> {
    type Key = (String, Option<i64>, usize);
    let mut groups: HashMap<Key, Vec<T>> = HashMap::new();
    for m in members {
        let req = req_of(&m);
        let k = (
            req.campaign.campaign_id.clone(),
            req.epoch,
            Arc::as_ptr(&req.campaign) as usize,
        );
        groups.entry(k).or_default().push(m);
    }
    groups.into_values().collect()
}

async fn commit(db: &PgPool, metrics: &Metrics, group: Vec<Member>) {
    let (won, replies): (Vec<Won>, Vec<_>) = group.into_iter().map(|m| (m.won, m.reply)).unzip();
    let settled = match db.acquire().await {
        Ok(mut conn) => try_commit(&mut conn, metrics, &won).await,
        Err(e) => Err(e.into()),
    };
    let mut done = settled.unwrap_or_else(|e| {
        tracing::info!(error = %e, members = won.len(), "group commit failed; members go alone");
        HashMap::new()
    });
    let grouped = done.len() as u64;
    metrics.add("coupon_group_commit_total", &[("how", "grouped")], grouped);
    let alone = won.len() as u64 - grouped;
    metrics.add("coupon_group_commit_total", &[("how", "alone")], alone);
    for (i, reply) in replies.into_iter().enumerate() {
        let answer = done
            .remove(&i)
            .map_or(Grouped::Alone, |o| Grouped::Done(Box::new(o)));
        let _ = reply.send(answer);
    }
}

/// Commits one campaign's group on `conn`: the outcomes of the members it
/// settled, by position. When it settles none, or fails, it has rolled back
/// before it returns.
pub async fn try_commit(
    conn: &mut PgConnection,
    metrics: &Metrics,
    group: &[Won],
) -> ApiResult<HashMap<usize, RedeemOutcome>> {
    match commit_once(conn, group, Inserts::Plain).await {
        Err(Clash) => {
            metrics.inc("coupon_group_commit_clashes_total", &[]);
            commit_once(conn, group, Inserts::SkipClashes)
                .await
                .map_err(|Clash| {
                    ApiError::Internal("a group clashed while skipping clashes".into())
                })?
        }
        Ok(settled) => settled,
    }
}

/// How a group's rows go in.
#[derive(Clone, Copy, PartialEq)]
enum Inserts {
    /// As they are: one unique violation fails the statement.
    Plain,
    /// `ON CONFLICT DO NOTHING`: a clashing row is left out.
    SkipClashes,
}

/// A plain insert met a unique index: the group rolled back.
struct Clash;

fn is_clash(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("23505"))
}

async fn commit_once(
    conn: &mut PgConnection,
    group: &[Won],
    inserts: Inserts,
) -> Result<ApiResult<HashMap<usize, RedeemOutcome>>, Clash> {
    let mut tx = match conn
        .begin_with(begin_fenced(group[0].req.campaign.slot))
        .await
    {
        Ok(tx) => tx,
        Err(e) => return Ok(Err(e.into())),
    };
    match settle(&mut tx, group, inserts).await {
        Err(Settle::Clash) => {
            let _ = tx.rollback().await;
            Err(Clash)
        }
        Err(Settle::Failed(e)) => {
            let _ = tx.rollback().await;
            Ok(Err(e))
        }
        Ok(done) if !done.is_empty() => {
            super::about_to_commit(done.keys().map(|i| &group[*i].req)).await;
            Ok(tx.commit().await.map(|()| done).map_err(ApiError::from))
        }
        Ok(none) => {
            // Rolled back here, before any member goes alone: a dropped
            // transaction only queues its ROLLBACK, which is sent when the
            // connection is next used (here, when the pool takes it back,
            // on a task of its own), and until then the keys it locked
            // answer the member's own single-path redeem "in flight" (409).
            // Test: api::key_locks.
            let _ = tx.rollback().await;
            Ok(Ok(none))
        }
    }
}

/// Why a group's statements stopped short of its commit.
enum Settle {
    Clash,
    Failed(ApiError),
}

impl<E: Into<ApiError>> From<E> for Settle {
    fn from(e: E) -> Settle {
        Settle::Failed(e.into())
    }
}

/// The group's statements, up to its commit.
async fn settle(
    tx: &mut PgConnection,
    group: &[Won],
    inserts: Inserts,
) -> Result<HashMap<usize, RedeemOutcome>, Settle> {
    let skip = if inserts == Inserts::SkipClashes {
        "ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    let clash = |e: sqlx::Error| {
        if inserts == Inserts::Plain && is_clash(&e) {
            Settle::Clash
        } else {
            Settle::Failed(e.into())
        }
    };
    let first = &group[0].req;
    let c = &first.campaign;
    let (epoch, _) = slots::fence_read(&mut *tx, c.slot, first.epoch, None).await?;
    // A read that ran before a racer's commit only makes this group's
    // insert clash on a unique index, which sends that member alone.
    let read = read_members(&mut *tx, group.iter().map(|m| &m.req)).await?;

    let slot = Slot::new(c.slot).expect("stored slot");
    let mut ids = Vec::new();
    let mut index = HashMap::new();
    let (mut r_users, mut orders, mut r_keys, mut hashes, mut codes, mut seats, mut uses) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for r in read {
        let (true, false, Some(use_no)) = (r.locked, r.prior, r.free_use) else {
            continue;
        };
        let i = r.i;
        let m = &group[i].req;
        let id = RedemptionId::random(slot, &mut rand::thread_rng())
            .as_str()
            .to_owned();
        index.insert(id.clone(), i);
        ids.push(id);
        r_users.push(m.user.as_str());
        orders.push(m.order_id.as_str());
        r_keys.push(m.key.as_str());
        hashes.push(m.request_hash.as_str());
        codes.push(m.code.as_str());
        seats.push(group[i].seat);
        uses.push(use_no);
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "INSERT INTO redemptions (redemption_id, campaign_id, slot, epoch, user_id, order_id, \
           idempotency_key, request_hash, code, seat_no, use_no, discount) \
         SELECT q.id, $2, $3, $4, q.u, q.o, q.k, q.h, q.c, q.s, q.n, $5 \
         FROM unnest($1::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                     $11::int[], $12::int[]) AS q(id, u, o, k, h, c, s, n) \
         ORDER BY q.u, q.k {skip} RETURNING {}",
        redemptions::COLUMNS
    );
    let discount = serde_json::to_value(&c.discount).expect("discount serializes");
    let inserted = sqlx::query(&sql)
        .bind(&ids)
        .bind(&c.campaign_id)
        .bind(c.slot as i32)
        .bind(epoch)
        .bind(&discount)
        .bind(&r_users)
        .bind(&orders)
        .bind(&r_keys)
        .bind(&hashes)
        .bind(&codes)
        .bind(&seats)
        .bind(&uses)
        .fetch_all(&mut *tx)
        .await
        .map_err(clash)?;

    let mut done = HashMap::with_capacity(inserted.len());
    let mut event_ids = Vec::with_capacity(inserted.len());
    let mut events = Vec::with_capacity(inserted.len());
    for row in &inserted {
        let redemption = redemptions::from_row(row)?;
        let i = index[&redemption.redemption_id];
        event_ids.push(format!("{}:coupon.redeemed", redemption.redemption_id));
        events.push(serde_json::to_string(&redemption).expect("redemption serializes"));
        let taken = Some(group[i].seat.to_string());
        done.insert(
            i,
            RedeemOutcome {
                redemption,
                replayed: false,
                taken,
            },
        );
    }
    // Event ids are new redemption ids: a clash here is as unexpected as
    // any and goes the same careful way.
    let outbox = format!(
        "INSERT INTO outbox (event_id, type, campaign_id, data) \
         SELECT q.e, 'coupon.redeemed', $2, q.d::jsonb FROM unnest($1::text[], $3::text[]) AS q(e, d) \
         {skip}"
    );
    sqlx::query(&outbox)
        .bind(&event_ids)
        .bind(&c.campaign_id)
        .bind(&events)
        .execute(&mut *tx)
        .await
        .map_err(clash)?;
    Ok(done)
}
