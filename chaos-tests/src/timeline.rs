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

/// The workload's requests in flight. A request's start and finish are
/// stamped under the same lock that opens a mid-flight window, so a window
/// opened while the count is n has n requests with `started_at <= start <=
/// finished_at`: none can finish between "seen in flight" and the stamp
/// (a fast node once answered the request seen in flight before a
/// scenario took the window's timestamp, and the check failed).
#[derive(Debug, Default)]
pub struct InFlight(Mutex<usize>);

impl InFlight {
    /// A request starts: its `started_at`.
    pub fn enter(&self) -> DateTime<Utc> {
        let mut n = self.0.lock().expect("in flight");
        *n += 1;
        Utc::now()
    }

    /// A request finished: its `finished_at`.
    pub fn leave(&self) -> DateTime<Utc> {
        let mut n = self.0.lock().expect("in flight");
        *n -= 1;
        Utc::now()
    }

    pub fn count(&self) -> usize {
        *self.0.lock().expect("in flight")
    }
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
        if !cfg!(test) {
            eprintln!("fault {name:?} begins at {start}");
        }
        w.len() - 1
    }

    /// Opens a mid-flight window (`instant`: a single instant) if at least
    /// `n` requests are in flight, stamped while they are held in flight.
    pub fn begin_if_in_flight(
        &self,
        flight: &InFlight,
        n: usize,
        name: &str,
        instant: bool,
    ) -> Option<usize> {
        let held = flight.0.lock().expect("in flight");
        if *held < n {
            return None;
        }
        let i = if instant {
            self.instant(name)
        } else {
            self.begin_mid_flight(name)
        };
        drop(held);
        Some(i)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Requests that come and go as fast as threads can run, and windows
    /// opened among them: every window opened "with one in flight" has a
    /// request whose span holds its start.
    #[test]
    fn a_window_opened_mid_flight_starts_on_a_request_in_flight() {
        let (flight, timeline) = (Arc::new(InFlight::default()), Timeline::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (flight, stop) = (flight.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut spans = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let started = flight.enter();
                        std::hint::spin_loop();
                        spans.push((started, flight.leave()));
                    }
                    spans
                })
            })
            .collect();
        let mut opened = 0;
        while opened < 2_000 {
            opened += usize::from(timeline.begin_if_in_flight(&flight, 1, "w", true).is_some());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let spans: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        let mut starts: Vec<_> = timeline.windows().iter().map(|w| w.start).collect();
        starts.sort();
        let missed = starts
            .iter()
            .filter(|t| !spans.iter().any(|(s, f)| s <= *t && *t <= f))
            .count();
        assert_eq!(
            missed, 0,
            "{missed} of {opened} windows began on no request"
        );
    }
}
