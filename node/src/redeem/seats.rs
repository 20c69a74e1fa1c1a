//! Where the Postgres-only path looks for a free seat of a shared campaign.
//!
//! Postgres keeps no seat counter (a counter row would make every winner
//! wait on one lock): the seats in use are the active redemptions, unique
//! per `(campaign, seat_no)`. Counting them reads every one, so a pick that
//! counts first costs O(seats taken): 12 winners/s at 30,000 seats taken,
//! against 455/s on a fresh campaign (docs/benchmarks.md, "The Postgres
//! seat pick"). Instead each node keeps, per campaign, how many seats it
//! believes are taken: one exact count the first time, then one more per
//! seat it picks. A pick probes a window of [`WINDOW`] seats reaching that
//! far above the estimate (or ending at the cap), where seats are free
//! while the estimate holds, reading the seat index in order up to the
//! first gap with a seat no racer holds. When the window is full (another
//! node, or a Redis claim, took seats this node did not count) the node
//! counts again; only a count answers `exhausted`, so the estimate can
//! make a pick slower, never wrong. Seats given back by a release, and gaps the moving window left
//! behind, sit below the estimate: the first pick that finds them (after
//! a count, probing down to seat 1) marks the campaign, and its later picks
//! start anywhere from seat 1 instead of re-reading the full window and
//! counting first.

use super::pg::free_seat_in;
use super::refusals::FullRefusals;
use super::seat_counts::SeatCounts;
use super::{RedeemRequest, Target};
use crate::domain::campaign::Campaign;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Seats a pick probes: wide enough that racers spread out (256 made 5,000
/// racers on 1,000 seats collide into 503s), short enough that a full
/// window costs little.
const WINDOW: i32 = 1024;
/// Exact counts before a pick gives up with 503 (racers filled every seat
/// it found between its count and its probe, that many times in a row).
const RECOUNTS: usize = 4;
/// Campaigns remembered; past this the map starts again (a recount each).
const REMEMBERED: usize = 10_000;

pub struct SeatFrontier {
    taken: Mutex<HashMap<String, Estimate>>,
    counts: SeatCounts,
    refusals: FullRefusals,
}

/// What a node believes of a campaign's seats.
#[derive(Clone, Copy)]
struct Estimate {
    taken: i64,
    /// A pick found the window full and a free seat below it: the free
    /// seats are gaps left behind (racers' picks spread over the window as
    /// it moved up; releases). From then on picks start anywhere from seat
    /// 1 up, and no longer read the full window and count again first,
    /// which had cost every pick of a campaign's last gaps a 1,024-seat
    /// probe and a count (the 503s at the end of a 3,000-seat burst at 50
    /// connections fell by two thirds; docs/benchmarks.md).
    gaps_below: bool,
}

impl SeatFrontier {
    pub fn new(db: &PgPool, metrics: Arc<Metrics>) -> SeatFrontier {
        metrics.add("coupon_seat_counts_total", &[], 0);
        SeatFrontier {
            taken: Mutex::default(),
            counts: SeatCounts::spawn(db, metrics.clone()),
            refusals: FullRefusals::spawn(db.clone(), metrics),
        }
    }

    /// The refusal of a redeem with no seat granted (`Hint::seat_no`) of a
    /// shared campaign this node last counted full, from a batch of them
    /// ([`super::refusals`]); `None`: redeem on the single path.
    pub async fn refused_if_full(&self, req: &RedeemRequest) -> Option<ApiError> {
        let c = &req.campaign;
        let total = c.total_limit?;
        let full = matches!(req.target, Target::Shared)
            && self
                .estimate(&c.campaign_id)
                .is_some_and(|e| e.taken >= total as i64);
        if !full {
            return None;
        }
        self.refusals.refusal(req).await
    }

    fn estimate(&self, campaign: &str) -> Option<Estimate> {
        self.taken.lock().expect("seat lock").get(campaign).copied()
    }

    fn set(&self, campaign: &str, taken: i64) {
        let mut m = self.taken.lock().expect("seat lock");
        if m.len() >= REMEMBERED && !m.contains_key(campaign) {
            m.clear();
        }
        let gaps_below = m.get(campaign).is_some_and(|e| e.gaps_below);
        m.insert(campaign.to_owned(), Estimate { taken, gaps_below });
    }

    /// A free seat of `c` (capped at `total`), or `None` when every seat
    /// is taken. The insert that follows re-checks it (unique index); a
    /// racer that wins the same seat makes the caller pick again.
    pub async fn pick(
        &self,
        conn: &mut PgConnection,
        c: &Campaign,
        total: i32,
    ) -> ApiResult<Option<i32>> {
        let id = c.campaign_id.as_str();
        let known = self.estimate(id);
        let gaps_below = known.is_some_and(|e| e.gaps_below);
        let mut estimate = known.map(|e| e.taken);
        for _ in 0..=RECOUNTS {
            let (taken, exact) = match estimate.take() {
                // A campaign believed full is counted: only a count answers
                // `exhausted`. The count is shared with the picks asking at
                // the same time (a full campaign's every loser asks).
                Some(t) if t < total as i64 => (t, false),
                _ => {
                    let t = self.counts.of(id).await?;
                    self.set(id, t);
                    (t, true)
                }
            };
            if exact && taken >= total as i64 {
                return Ok(None);
            }
            // The window: WINDOW seats ending WINDOW above the estimate,
            // or at the cap (never narrower near the cap: racers would all
            // land on its last few seats), probed from a random start and
            // wrapping round. After an exact count the wrap goes down to
            // seat 1, since `taken` seats cannot fill `taken + 1` places.
            let hi = (taken as i32).saturating_add(WINDOW).min(total);
            let window_lo = (hi - WINDOW + 1).max(1);
            let lo = if exact || gaps_below { 1 } else { window_lo };
            let from = if gaps_below { 1 } else { window_lo };
            let start = rand::thread_rng().gen_range(from..=hi);
            for (from, to) in [(start, hi), (lo, start - 1)] {
                if from > to {
                    continue;
                }
                if let Some(seat) = free_seat_in(&mut *conn, id, from, to).await? {
                    // One seat more taken. Not "the highest seat taken":
                    // racers pick across the window, and the highest of
                    // their picks would run ahead of the seats in use.
                    if let Some(e) = self.taken.lock().expect("seat lock").get_mut(id) {
                        e.taken += 1;
                        e.gaps_below |= seat < window_lo;
                    }
                    return Ok(Some(seat));
                }
            }
        }
        tracing::warn!(campaign = %id, "seat pick found no free seat {RECOUNTS} times in a row");
        Err(ApiError::Unavailable { what: "postgres" })
    }
}
