//! Latency percentiles for benchmark reports.

use std::time::Duration;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// "p50 x / p95 y / p99 z (n)".
pub fn summary(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    format!(
        "p50 {} / p95 {} / p99 {} (n={})",
        ms(percentile(&v, 50.0)),
        ms(percentile(&v, 95.0)),
        ms(percentile(&v, 99.0)),
        v.len()
    )
}
