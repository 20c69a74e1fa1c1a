//! `couponctl drill evacuate R [--undo]`: every slot of R to the other
//! regions (or, with `--undo`, an even spread over every region), a bounded
//! number at a time, with progress, ending with the report.
//!
//! Resumable by construction: the run first drives every move raft still
//! holds (an interrupted run's) to its end, then plans from the map as it is
//! now, so a re-run only does what is left.

use super::plan;
use super::report::{self, Check, Event, Report, SlotMove};
use crate::clusterfile::FILE;
use coupon_node::ownership::mover::{self, MoveError, Options, Outcome};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Attempts per slot before the drill gives up on it (each failed attempt
/// rolled back or left for a re-run, never half done).
const ATTEMPTS: u32 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// The region to empty (omit with --undo to rebalance every region).
    #[arg(required_unless_present = "undo")]
    pub region: Option<String>,
    /// Spread slots back evenly over every region instead.
    #[arg(long)]
    pub undo: bool,
    /// Slots moved at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    pub cluster_file: PathBuf,
}

struct Log {
    started: Instant,
    events: Mutex<Vec<Event>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Log {
    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
    fn event(&self, what: String) {
        let at_s = self.at();
        self.events.lock().expect("log").push(Event { at_s, what });
    }
    fn error(&self, e: &MoveError) {
        *self
            .errors
            .lock()
            .expect("log")
            .entry(e.class().to_owned())
            .or_default() += 1;
    }
}

pub async fn run(a: Args) -> anyhow::Result<Report> {
    let (admin, stores) = crate::slot::connect(&a.cluster_file).await?;
    let log = Arc::new(Log {
        started: Instant::now(),
        events: Mutex::default(),
        errors: Mutex::default(),
    });
    let name = if a.undo { "rebalance" } else { "evacuate" };
    log.event(format!("{name} started"));
    // 1. Finish what an interrupted run left.
    let map = admin.map().await?;
    let mut moves: Vec<SlotMove> = Vec::new();
    for rec in &map.moves {
        let t0 = log.at();
        match mover::resume(&admin, &stores, rec.slot as u16, false, &Options::default()).await {
            Ok(Some(r)) => moves.push(slot_move(&r, t0, log.at(), 1)),
            Ok(None) => {}
            Err(e) => {
                log.error(&e);
                log.event(format!(
                    "slot {}: unfinished move could not be finished: {e}",
                    rec.slot
                ));
            }
        }
    }
    if !map.moves.is_empty() {
        log.event(format!(
            "{} unfinished move(s) of an earlier run driven to their end",
            map.moves.len()
        ));
    }
    // 2. Plan from the map as it is now.
    let map = admin.map().await?;
    let planned = match (&a.region, a.undo) {
        (_, true) => plan::rebalance(&map),
        (Some(r), false) => {
            anyhow::ensure!(
                map.regions.iter().any(|x| x.id.as_str() == r),
                "no region {r} in the map"
            );
            plan::evacuate(&map, r)
        }
        (None, false) => anyhow::bail!("name the region to evacuate"),
    };
    let total = planned.len();
    log.event(format!(
        "{total} slot(s) to move, {} at a time",
        a.concurrency.max(1)
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = tokio::spawn({
        let (done, log, json) = (done.clone(), log.clone(), a.json);
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !json {
                    let errs: u64 = log.errors.lock().expect("log").values().sum();
                    eprintln!(
                        "  +{:>5.1}s  {}/{total} slots moved, {errs} error(s) retried",
                        log.at(),
                        done.load(Ordering::Relaxed)
                    );
                }
            }
        }
    });
    let results: Vec<SlotMove> = futures::stream::iter(planned.iter().cloned())
        .map(|(slot, to)| {
            let (admin, stores, log, done) = (&admin, &stores, log.clone(), done.clone());
            async move {
                let t0 = log.at();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let r = mover::move_slot(admin, stores, slot, &to, &Options::default()).await;
                    match r {
                        Ok(Some(r)) if r.outcome == Outcome::Completed => {
                            done.fetch_add(1, Ordering::Relaxed);
                            return slot_move(&r, t0, log.at(), attempts);
                        }
                        Ok(None) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            return unmoved(slot, &to, "already_there", t0, log.at(), attempts);
                        }
                        Ok(Some(r)) => {
                            *log.errors
                                .lock()
                                .expect("log")
                                .entry("rolled_back".into())
                                .or_default() += 1;
                            if attempts >= ATTEMPTS {
                                return slot_move(&r, t0, log.at(), attempts);
                            }
                        }
                        Err(e) => {
                            log.error(&e);
                            if attempts >= ATTEMPTS {
                                log.event(format!(
                                    "slot {slot}: gave up after {attempts} attempts: {e}"
                                ));
                                return unmoved(slot, &to, "failed", t0, log.at(), attempts);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                }
            }
        })
        .buffer_unordered(a.concurrency.max(1))
        .collect()
        .await;
    progress.abort();
    moves.extend(results);
    log.event(format!(
        "moves ended: {} completed",
        moves.iter().filter(|m| m.outcome == "completed").count()
    ));
    // 3. Judge.
    let map = admin.map().await?;
    let goal = match (&a.region, a.undo) {
        (Some(r), false) => {
            let left = map.slots.iter().filter(|s| s.region.as_str() == r).count();
            Check {
                name: format!("region {r} holds no slot"),
                ok: left == 0,
                detail: format!("{left} slot(s) left in {r}"),
            }
        }
        _ => {
            let left = plan::rebalance(&map).len();
            Check {
                name: "slots spread evenly".into(),
                ok: left == 0,
                detail: format!("{left} slot(s) still to move for an even spread"),
            }
        }
    };
    let moved: Vec<(u16, String, String)> = moves
        .iter()
        .filter(|m| m.outcome == "completed")
        .map(|m| (m.slot, m.from.clone(), m.to.clone()))
        .collect();
    let invariants = super::verdict::judge(&map, &stores, goal, &moved).await?;
    log.event(format!("invariants checked: {}", invariants.verdict));
    let frozen: Vec<f64> = moves.iter().filter_map(|m| m.frozen_ms).collect();
    let mut by_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for m in &moves {
        for (s, ms) in &m.steps_ms {
            by_step.entry(s.clone()).or_default().push(*ms);
        }
    }
    let step_ms = by_step
        .iter()
        .filter_map(|(s, v)| Some((s.clone(), report::freeze(v)?)))
        .collect();
    let report = Report {
        drill: name.into(),
        region: a.region.clone(),
        total_s: log.at(),
        slots_planned: total,
        slots_moved: moved.len(),
        timeline: log.events.lock().expect("log").clone(),
        freeze: report::freeze(&frozen),
        step_ms,
        errors: log.errors.lock().expect("log").clone(),
        moves,
        invariants,
    };
    report.print(a.json);
    Ok(report)
}

fn slot_move(r: &mover::MoveReport, t0: f64, t1: f64, attempts: u32) -> SlotMove {
    SlotMove {
        slot: r.slot,
        from: r.from.clone(),
        to: r.to.clone(),
        outcome: match r.outcome {
            Outcome::Completed => "completed",
            Outcome::RolledBack => "rolled_back",
        }
        .into(),
        started_at_s: t0,
        ended_at_s: t1,
        frozen_ms: r.frozen_for.map(|d| d.as_secs_f64() * 1e3),
        attempts,
        resumed: r.resumed,
        steps_ms: r
            .steps
            .iter()
            .map(|(s, d)| ((*s).to_owned(), d.as_secs_f64() * 1e3))
            .collect(),
    }
}

fn unmoved(slot: u16, to: &str, outcome: &str, t0: f64, t1: f64, attempts: u32) -> SlotMove {
    SlotMove {
        slot,
        from: String::new(),
        to: to.to_owned(),
        outcome: outcome.into(),
        started_at_s: t0,
        ended_at_s: t1,
        frozen_ms: None,
        attempts,
        resumed: false,
        steps_ms: Vec::new(),
    }
}
