//! Moving one slot between regions (docs/architecture.md §7), as a persisted
//! state machine that any re-run drives to exactly one active owner.
//!
//! Raft holds the move record (id, slot, from, to, base epoch e); each
//! region's Postgres holds its own step in `slot_moves`. The steps:
//!
//! 1. raft `begin_move` (the record; the slot shows `moving`);
//! 2. target `copying` (refused if the target aborted this move);
//! 3. source frozen at e (waits out in-flight redemptions);
//! 4. rows copied and verified, target `copied` (one target transaction);
//! 5. target active at e+1, target `active`;
//! 6. raft `complete_move` (slot → target, e+1); target `done`, source
//!    `released`; routers and nodes follow the map.
//!
//! Forward or back: a failure before (5) rolls the move back — target
//! `aborted` first (under the target's slot lock, so a mover that wakes up
//! late can no longer activate it), then raft `abort_move`, then the source
//! unfreezes at e. Once (5) committed the move only goes forward: the
//! roll-back finds `active` and completes instead. A re-run reads the raft
//! record and the target's step and continues from there. A roll-back that
//! cannot reach the target leaves the slot frozen (unavailable, never
//! doubly owned) and says so; the next run finishes it.

mod copy;
mod steps;

use coupon_raft::client::{AdminClient, ClientError};
use coupon_raft::model::{MoveRecord, SlotState};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use copy::{Sum, PAGE_ROWS};
pub use steps::target_step;

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("raft: {0}")]
    Raft(#[from] ClientError),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("{0}")]
    Refused(String),
    #[error("copy of table {table} does not verify: source {src:?}, target {dst:?}")]
    Verify {
        table: &'static str,
        src: Sum,
        dst: Sum,
    },
    /// The target rolled this move back; it can only end aborted.
    #[error("the move was rolled back")]
    Aborted,
    /// The target is active for this move; it can only end completed.
    #[error("the target already serves the slot for this move")]
    AlreadyActive,
    /// A test asked the mover to stop here (see [`Options::stop_after`]).
    #[error("mover stopped after {0:?} (test hook)")]
    Stopped(Step),
    #[error("no Postgres configured for region {0}")]
    NoStore(String),
}

impl MoveError {
    /// A short class name for reports (errors by class).
    pub fn class(&self) -> &'static str {
        match self {
            MoveError::Raft(_) => "raft",
            MoveError::Postgres(_) => "postgres",
            MoveError::Refused(_) => "refused",
            MoveError::Verify { .. } => "verify",
            MoveError::Aborted => "aborted",
            MoveError::AlreadyActive => "already_active",
            MoveError::Stopped(_) => "stopped",
            MoveError::NoStore(_) => "config",
        }
    }
}

/// Points a test can stop the mover at (then SIGKILL it and re-run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    Begun,
    Prepared,
    Frozen,
    /// After the first page of the copy (the copy transaction still open).
    MidCopy,
    Copied,
    Activated,
    Completed,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Test hook: return [`MoveError::Stopped`] on reaching this step.
    pub stop_after: Option<Step>,
}

/// Every region's Postgres, by region id.
#[derive(Clone, Default)]
pub struct Stores(pub BTreeMap<String, PgPool>);

impl Stores {
    fn get(&self, region: &str) -> Result<&PgPool, MoveError> {
        self.0
            .get(region)
            .ok_or_else(|| MoveError::NoStore(region.to_owned()))
    }
}

/// One move as the stores see it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub slot: u16,
    pub from: String,
    pub to: String,
    pub epoch: i64,
}

impl From<&MoveRecord> for Plan {
    fn from(r: &MoveRecord) -> Plan {
        Plan {
            id: r.id.clone(),
            slot: r.slot as u16,
            from: r.from.to_string(),
            to: r.to.to_string(),
            epoch: r.epoch as i64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    RolledBack,
}

/// What a move did.
#[derive(Debug, Clone)]
pub struct MoveReport {
    pub slot: u16,
    pub move_id: String,
    pub from: String,
    pub to: String,
    pub outcome: Outcome,
    /// The slot's epoch now (e+1 completed, e rolled back).
    pub new_epoch: i64,
    /// True when this run continued a move an earlier run had begun.
    pub resumed: bool,
    /// Rows and checksum per table (when this run copied).
    pub tables: BTreeMap<&'static str, Sum>,
    /// From the source's freeze to raft's commit of the new owner (or the
    /// roll-back's unfreeze), when this run did both.
    pub frozen_for: Option<Duration>,
    /// Why a rolled-back move was rolled back.
    pub error: Option<String>,
    /// How long each step this run made took, in order (prepare, freeze,
    /// copy, activate, complete, finish; or the roll-back's).
    pub steps: Vec<(&'static str, Duration)>,
}

/// Times the steps of one run.
#[derive(Default)]
struct Clock {
    last: Option<Instant>,
    steps: Vec<(&'static str, Duration)>,
}

impl Clock {
    fn lap(&mut self, step: &'static str) {
        let now = Instant::now();
        if let Some(last) = self.last {
            self.steps.push((step, now - last));
        }
        self.last = Some(now);
    }
}

/// Moves `slot` to `to`. An unfinished move of the slot is driven to its end
/// first (whatever its target); if the slot then is not in `to`, a new move
/// begins. Returns the report of the last move driven (`None` when the slot
/// was already in `to` with no move under way).
pub async fn move_slot(
    admin: &AdminClient,
    stores: &Stores,
    slot: u16,
    to: &str,
    opts: &Options,
) -> Result<Option<MoveReport>, MoveError> {
    let mut last = None;
    for _ in 0..3 {
        let map = raft_retry(|| admin.map()).await?;
        let Some(entry) = map.slot(u32::from(slot)) else {
            return Err(MoveError::Refused(format!("slot {slot} is not in the map")));
        };
        if let Some(rec) = map.moves.iter().find(|m| m.slot == u32::from(slot)) {
            last = Some(drive(admin, stores, &Plan::from(rec), true, opts).await?);
            continue;
        }
        if entry.region.as_str() == to && entry.state == SlotState::Active {
            return Ok(last);
        }
        let id = format!("move-{slot}-to-{to}-{:016x}", rand::random::<u64>());
        let began = raft_retry(|| admin.begin_move(&id, u32::from(slot), to)).await?;
        let change = began
            .slot
            .ok_or_else(|| MoveError::Refused("begin-move answered without the slot".into()))?;
        stop(opts, Step::Begun)?;
        let plan = Plan {
            id,
            slot,
            from: change.region.to_string(),
            to: to.to_owned(),
            epoch: change.epoch as i64,
        };
        let report = drive(admin, stores, &plan, false, opts).await?;
        if report.outcome == Outcome::RolledBack {
            return Ok(Some(report));
        }
        last = Some(report);
    }
    Ok(last)
}

/// Drives an unfinished move of `slot`, if raft has one, to its end:
/// forward, or back when `roll_back` (refused once the target is active).
pub async fn resume(
    admin: &AdminClient,
    stores: &Stores,
    slot: u16,
    roll_back: bool,
    opts: &Options,
) -> Result<Option<MoveReport>, MoveError> {
    let map = raft_retry(|| admin.map()).await?;
    let Some(rec) = map.moves.iter().find(|m| m.slot == u32::from(slot)) else {
        return Ok(None);
    };
    let plan = Plan::from(rec);
    if roll_back {
        let (src, dst) = (stores.get(&plan.from)?, stores.get(&plan.to)?);
        return back(
            admin,
            src,
            dst,
            &plan,
            true,
            None,
            "asked to roll back".into(),
        )
        .await
        .map(Some);
    }
    drive(admin, stores, &plan, true, opts).await.map(Some)
}

async fn drive(
    admin: &AdminClient,
    stores: &Stores,
    p: &Plan,
    resumed: bool,
    opts: &Options,
) -> Result<MoveReport, MoveError> {
    let (src, dst) = (stores.get(&p.from)?, stores.get(&p.to)?);
    match steps::target_step(dst, &p.id).await?.as_deref() {
        Some("active" | "done") => return forward(admin, src, dst, p, resumed, None, opts).await,
        Some("aborted") => {
            return back(
                admin,
                src,
                dst,
                p,
                resumed,
                None,
                "rolled back earlier".into(),
            )
            .await
        }
        _ => {}
    }
    let mut frozen_at = None;
    let mut tables = BTreeMap::new();
    let mut clock = Clock::default();
    clock.lap("start");
    let ahead = async {
        steps::prepare_target(dst, p).await?;
        clock.lap("prepare");
        stop(opts, Step::Prepared)?;
        steps::freeze_source(src, p).await?;
        clock.lap("freeze");
        frozen_at = Some(Instant::now());
        stop(opts, Step::Frozen)?;
        let pages = std::sync::atomic::AtomicU64::new(0);
        let on_page = || {
            if pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                stop(opts, Step::MidCopy)
            } else {
                Ok(())
            }
        };
        tables = copy::copy_slot(src, dst, p, &on_page).await?;
        clock.lap("copy");
        stop(opts, Step::Copied)?;
        steps::activate_target(dst, p).await?;
        clock.lap("activate");
        stop(opts, Step::Activated)
    };
    match ahead.await {
        Ok(()) | Err(MoveError::AlreadyActive) => {
            let mut r = forward(admin, src, dst, p, resumed, frozen_at, opts).await?;
            r.tables = tables;
            clock.steps.append(&mut r.steps);
            r.steps = clock.steps;
            Ok(r)
        }
        Err(e @ MoveError::Stopped(_)) => Err(e),
        Err(e) => {
            tracing::warn!(slot = p.slot, move_id = %p.id, error = %e, "slot move failed; rolling back");
            let why = e.to_string();
            match back(admin, src, dst, p, resumed, frozen_at, why).await {
                Ok(r) if r.outcome == Outcome::RolledBack && !matches!(e, MoveError::Aborted) => {
                    Err(e)
                }
                other => other,
            }
        }
    }
}

/// From an active target to a committed map.
async fn forward(
    admin: &AdminClient,
    src: &PgPool,
    dst: &PgPool,
    p: &Plan,
    resumed: bool,
    frozen_at: Option<Instant>,
    opts: &Options,
) -> Result<MoveReport, MoveError> {
    let request = format!("{}-complete", p.id);
    let mut clock = Clock::default();
    clock.lap("start");
    match raft_retry(|| admin.complete_move(&request, u32::from(p.slot))).await {
        Ok(_) => {}
        Err(MoveError::Raft(e)) if e.code() == Some("slot_not_moving") => {
            settled(admin, p, &p.to, p.epoch + 1).await?
        }
        Err(e) => return Err(e),
    }
    clock.lap("complete");
    // Frozen until the map names the new owner (routers follow it).
    let frozen_for = frozen_at.map(|t| t.elapsed());
    stop(opts, Step::Completed)?;
    steps::finish(src, dst, p).await?;
    clock.lap("finish");
    tracing::info!(slot = p.slot, from = %p.from, to = %p.to, new_epoch = p.epoch + 1, "slot moved");
    let mut r = report(
        p,
        Outcome::Completed,
        p.epoch + 1,
        resumed,
        frozen_for,
        None,
    );
    r.steps = clock.steps;
    Ok(r)
}

/// Back to the source at its old epoch; forward instead if the target is
/// already active for this move.
async fn back(
    admin: &AdminClient,
    src: &PgPool,
    dst: &PgPool,
    p: &Plan,
    resumed: bool,
    frozen_at: Option<Instant>,
    why: String,
) -> Result<MoveReport, MoveError> {
    if !steps::abort_target(dst, p).await? {
        let opts = Options::default();
        return forward(admin, src, dst, p, resumed, None, &opts).await;
    }
    let request = format!("{}-abort", p.id);
    match raft_retry(|| admin.abort_move(&request, u32::from(p.slot))).await {
        Ok(_) => {}
        Err(MoveError::Raft(e)) if e.code() == Some("slot_not_moving") => {
            settled(admin, p, &p.from, p.epoch).await?
        }
        Err(e) => return Err(e),
    }
    steps::unfreeze_source(src, p).await?;
    tracing::warn!(slot = p.slot, move_id = %p.id, reason = %why, "slot move rolled back; old owner serves again");
    let frozen = frozen_at.map(|t| t.elapsed());
    Ok(report(
        p,
        Outcome::RolledBack,
        p.epoch,
        resumed,
        frozen,
        Some(why),
    ))
}

/// Raft no longer has the move: it must show the end we expected.
async fn settled(admin: &AdminClient, p: &Plan, region: &str, epoch: i64) -> Result<(), MoveError> {
    let map = raft_retry(|| admin.map()).await?;
    match map.slot(u32::from(p.slot)) {
        Some(s) if s.region.as_str() == region && s.epoch as i64 == epoch => Ok(()),
        other => Err(MoveError::Refused(format!(
            "raft ended move {} otherwise: slot is {other:?}, expected {region} at {epoch}",
            p.id
        ))),
    }
}

fn report(
    p: &Plan,
    outcome: Outcome,
    new_epoch: i64,
    resumed: bool,
    frozen_for: Option<Duration>,
    error: Option<String>,
) -> MoveReport {
    MoveReport {
        slot: p.slot,
        move_id: p.id.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        outcome,
        new_epoch,
        resumed,
        tables: BTreeMap::new(),
        frozen_for,
        error,
        steps: Vec::new(),
    }
}

fn stop(opts: &Options, at: Step) -> Result<(), MoveError> {
    match opts.stop_after {
        Some(s) if s == at => Err(MoveError::Stopped(at)),
        _ => Ok(()),
    }
}

/// Longest a raft call is retried (a leader election takes a few seconds).
const RAFT_PATIENCE: Duration = Duration::from_secs(30);

/// Retries a raft call that failed in transport or with a 5xx (no leader,
/// timeout) — safe for writes, whose request ids deduplicate them.
async fn raft_retry<T, F, Fut>(f: F) -> Result<T, MoveError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + RAFT_PATIENCE;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e @ ClientError::Problem { status, .. }) if status < 500 => return Err(e.into()),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "raft call failed; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}
