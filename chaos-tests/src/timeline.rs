//! Fault windows on the wall clock, so a scenario can prove that its load
//! overlapped each fault (a fault that lands after the burst tests nothing).

use crate::workload::Record;
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// What the load must have done for a fault to count as exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Requests started while the fault was in force.
    StartedDuring,
    /// Requests were in flight at the instant it began (a kill, a cut
    /// that must catch requests mid-way: the ambiguous case).
    InFlight,
}

#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    pub start: DateTime<Utc>,
    /// `None` while the fault is still in force.
    pub end: Option<DateTime<Utc>>,
    pub needs: Needs,
}

/// Every fault a scenario injected, in order.
#[derive(Debug, Default)]
pub struct Timeline {
    windows: Mutex<Vec<Window>>,
}

impl Timeline {
    /// A fault starts now; requests must arrive while it lasts. Returns its
    /// index for [`end`](Self::end).
    pub fn begin(&self, name: &str) -> usize {
        self.push(name, Needs::StartedDuring)
    }

    /// A fault starts now and must catch requests in flight.
    pub fn begin_mid_flight(&self, name: &str) -> usize {
        self.push(name, Needs::InFlight)
    }

    fn push(&self, name: &str, needs: Needs) -> usize {
        let mut w = self.windows.lock().expect("timeline");
        let start = Utc::now();
        w.push(Window {
            name: name.to_owned(),
            start,
            end: None,
            needs,
        });
        eprintln!("fault {name:?} begins at {start}");
        w.len() - 1
    }

    pub fn end(&self, i: usize) {
        let mut w = self.windows.lock().expect("timeline");
        w[i].end = Some(Utc::now());
        eprintln!("fault {:?} ends at {}", w[i].name, Utc::now());
    }

    /// A fault that is a single instant (a SIGKILL): it must catch
    /// requests in flight.
    pub fn instant(&self, name: &str) -> usize {
        let i = self.push(name, Needs::InFlight);
        let mut w = self.windows.lock().expect("timeline");
        w[i].end = Some(w[i].start);
        i
    }

    pub fn windows(&self) -> Vec<Window> {
        self.windows.lock().expect("timeline").clone()
    }
}

/// How the load met one fault window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// Requests in flight when the fault began.
    pub in_flight_at_start: usize,
    /// Requests started while the fault was in force.
    pub started_during: usize,
    /// Requests that finished after the fault began.
    pub finished_after_start: usize,
}

pub fn overlap(records: &[Record], w: &Window) -> Overlap {
    let end = w.end.unwrap_or_else(Utc::now);
    Overlap {
        in_flight_at_start: records
            .iter()
            .filter(|r| r.started_at <= w.start && r.finished_at >= w.start)
            .count(),
        started_during: records
            .iter()
            .filter(|r| r.started_at >= w.start && r.started_at <= end)
            .count(),
        finished_after_start: records.iter().filter(|r| r.finished_at > w.start).count(),
    }
}

/// Panics unless the load met every fault as the fault needs: requests in
/// flight when it began, or requests arriving while it lasted.
pub fn require_load_over_every_fault(timeline: &Timeline, records: &[Record], seed: u64) {
    let windows = timeline.windows();
    assert!(!windows.is_empty(), "no fault was injected (seed {seed})");
    for w in &windows {
        let o = overlap(records, w);
        let instant = w.end == Some(w.start);
        let ok = match w.needs {
            Needs::InFlight => o.in_flight_at_start > 0 && (instant || o.started_during > 0),
            Needs::StartedDuring => o.started_during > 0,
        };
        assert!(
            ok,
            "the load did not overlap fault {:?} ({} .. {:?}): {o:?} (seed {seed})",
            w.name, w.start, w.end
        );
    }
}
