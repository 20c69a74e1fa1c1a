//! The drill report: timeline, per-slot freeze times, errors by class and
//! the invariant verdict, printed for people or as JSON (`--json`).

use serde::Serialize;
use std::collections::BTreeMap;

/// One step of the timeline, at seconds since the drill started.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_s: f64,
    pub what: String,
}

/// One slot's move as the drill saw it.
#[derive(Debug, Clone, Serialize)]
pub struct SlotMove {
    pub slot: u16,
    pub from: String,
    pub to: String,
    /// `completed`, `rolled_back` or `failed`.
    pub outcome: String,
    pub started_at_s: f64,
    pub ended_at_s: f64,
    /// From the freeze to raft's commit of the new owner.
    pub frozen_ms: Option<f64>,
    pub attempts: u32,
    /// A move an earlier, interrupted run had begun.
    pub resumed: bool,
    /// Each step's time (prepare, freeze, copy, activate, complete, finish).
    pub steps_ms: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Freeze {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub slots: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `pass` or `fail`.
    pub verdict: String,
    /// Each invariant checked, with what was found.
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: String,
    pub region: Option<String>,
    pub total_s: f64,
    pub slots_planned: usize,
    pub slots_moved: usize,
    pub timeline: Vec<Event>,
    pub freeze: Option<Freeze>,
    /// Where the time goes: each mover step's p50/p99/max over the moves.
    pub step_ms: BTreeMap<String, Freeze>,
    pub errors: BTreeMap<String, u64>,
    pub moves: Vec<SlotMove>,
    pub invariants: Verdict,
}

impl Report {
    pub fn pass(&self) -> bool {
        self.invariants.verdict == "pass"
    }

    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(self).expect("report serializes")
            );
            return;
        }
        let region = self.region.as_deref().unwrap_or("every region");
        println!("\n== drill {} ({region}) ==", self.drill);
        println!("timeline:");
        for e in &self.timeline {
            println!("  +{:>7.2}s  {}", e.at_s, e.what);
        }
        println!(
            "slots: {} planned, {} moved, in {:.1} s",
            self.slots_planned, self.slots_moved, self.total_s
        );
        if let Some(f) = &self.freeze {
            println!(
                "freeze per slot: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} slots)",
                f.p50_ms, f.p99_ms, f.max_ms, f.slots
            );
        }
        if !self.step_ms.is_empty() {
            println!("time per step (p50 / p99 / max ms):");
            for (step, f) in &self.step_ms {
                println!(
                    "  {step:<10} {:>7.0} {:>7.0} {:>7.0}",
                    f.p50_ms, f.p99_ms, f.max_ms
                );
            }
        }
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            println!("errors by class:");
            for (class, n) in &self.errors {
                println!("  {class:<16} {n}");
            }
        }
        println!("invariants:");
        for c in &self.invariants.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            println!("  {mark} {}: {}", c.name, c.detail);
        }
        println!("verdict: {}", self.invariants.verdict);
    }
}

/// p50/p99/max of the freeze times (nearest-rank percentiles).
pub fn freeze(ms: &[f64]) -> Option<Freeze> {
    if ms.is_empty() {
        return None;
    }
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Freeze {
        p50_ms: rank(0.50),
        p99_ms: rank(0.99),
        max_ms: v[v.len() - 1],
        slots: v.len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let f = super::freeze(&v).unwrap();
        assert_eq!((f.p50_ms, f.p99_ms, f.max_ms), (50.0, 99.0, 100.0));
        assert!(super::freeze(&[]).is_none());
    }
}
