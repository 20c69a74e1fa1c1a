//! CPU time of processes from `/proc/<pid>/stat` (utime + stime), so a
//! benchmark reports what each server process spent per request next to
//! what the load generator itself spent: on two shared cores the generator
//! can be the bottleneck, and only these figures show it.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime, in ticks, of one process (`pid` or "self"), if it exists.
fn ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces: `) S ppid …`.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] = state (field 3); utime = field 14; stime = 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec())
}

/// CPU time of `pid` alone.
pub fn of(pid: u32) -> Duration {
    duration(ticks(&pid.to_string()).unwrap_or(0))
}

/// CPU time of `pid` and its direct children (Postgres: the postmaster and
/// one backend per connection). Children that exited meanwhile are missed,
/// so a pool that reconnects under-reports a little.
pub fn with_children(pid: u32) -> Duration {
    let children: u64 = coupon_testkit::procs::children(pid)
        .into_iter()
        .filter_map(|child| ticks(&child.to_string()))
        .sum();
    duration(ticks(&pid.to_string()).unwrap_or(0) + children)
}

/// This process (the load generator).
pub fn own() -> Duration {
    duration(ticks("self").unwrap_or(0))
}

/// A named set of processes measured before and after a run.
pub struct Meter {
    procs: Vec<(String, u32, bool)>,
    before: BTreeMap<String, Duration>,
}

impl Meter {
    /// `procs`: (label, pid, include children).
    pub fn start(procs: Vec<(String, u32, bool)>) -> Meter {
        let mut m = Meter {
            procs,
            before: BTreeMap::new(),
        };
        m.before = m.read();
        m
    }

    fn read(&self) -> BTreeMap<String, Duration> {
        let mut out = BTreeMap::new();
        out.insert("load generator".to_owned(), own());
        for (label, pid, children) in &self.procs {
            let t = if *children {
                with_children(*pid)
            } else {
                of(*pid)
            };
            out.insert(label.clone(), t);
        }
        out
    }

    /// CPU spent by each process since `start`.
    pub fn spent(&self) -> BTreeMap<String, Duration> {
        self.read()
            .into_iter()
            .map(|(k, v)| {
                let b = self.before.get(&k).copied().unwrap_or_default();
                (k, v.saturating_sub(b))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_busy_loop_shows_in_own_cpu() {
        let before = super::own();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let spent = super::own() - before;
        assert!(spent >= std::time::Duration::from_millis(100), "{spent:?}");
    }
}
