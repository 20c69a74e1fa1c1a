//! "No slot active in two regions", sampled while the scenario runs, not
//! only at the end: a loop reads each region's active slots in turn. Between
//! two reads of region X, every other region was read once; a slot that X
//! held active at the same epoch on both reads, and that another region held
//! active in between, was served by two regions at once.

use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pause between two reads (of successive regions).
const EVERY: Duration = Duration::from_millis(40);

type Active = HashMap<i32, i64>;

/// A running sampler; its findings outlive it.
pub struct Sampler {
    findings: Arc<Mutex<Vec<String>>>,
    reads: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(db_urls: BTreeMap<String, String>) -> Sampler {
        let findings = Arc::new(Mutex::new(Vec::new()));
        let reads = Arc::new(Mutex::new(0));
        let task = tokio::spawn(run(db_urls, findings.clone(), reads.clone()));
        Sampler {
            findings,
            reads,
            task,
        }
    }

    /// Double ownership seen so far (deduplicated per slot and pair).
    pub fn findings(&self) -> Vec<String> {
        self.findings.lock().expect("findings").clone()
    }

    /// Successful reads so far (a sampler that never read proves nothing).
    pub fn reads(&self) -> u64 {
        *self.reads.lock().expect("reads")
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read(db: &PgPool) -> Option<Active> {
    let rows = sqlx::query("SELECT slot, epoch FROM slot_ownership WHERE state = 'active'")
        .fetch_all(db)
        .await
        .ok()?;
    Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn run(
    urls: BTreeMap<String, String>,
    findings: Arc<Mutex<Vec<String>>>,
    reads: Arc<Mutex<u64>>,
) {
    let mut dbs = Vec::new();
    for (region, url) in urls {
        // One connection each, lazily: a region whose Postgres is down is
        // skipped until it answers again.
        let opts = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(500));
        if let Ok(db) = opts.connect_lazy(&url) {
            dbs.push((region, db));
        }
    }
    // Latest read of each region (None: not read, or its read failed).
    let mut latest: Vec<Option<Active>> = vec![None; dbs.len()];
    let mut seen = std::collections::HashSet::new();
    loop {
        for i in 0..dbs.len() {
            tokio::time::sleep(EVERY).await;
            let now = read(&dbs[i].1).await;
            if let (Some(prev), Some(cur)) = (&latest[i], &now) {
                for (slot, epoch) in cur.iter().filter(|(s, e)| prev.get(s) == Some(e)) {
                    for (j, other) in latest.iter().enumerate().filter(|(j, _)| *j != i) {
                        if let Some(e2) = other.as_ref().and_then(|o| o.get(slot)) {
                            if seen.insert((*slot, i.min(j), i.max(j))) {
                                findings.lock().expect("findings").push(format!(
                                    "slot {slot} active in {} (epoch {epoch}) and {} (epoch {e2}) at the same time",
                                    dbs[i].0, dbs[j].0
                                ));
                            }
                        }
                    }
                }
            }
            if now.is_some() {
                *reads.lock().expect("reads") += 1;
            }
            latest[i] = now;
        }
    }
}
