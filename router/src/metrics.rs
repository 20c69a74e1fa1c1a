//! Prometheus metrics of the router: labelled counters, gauges and
//! fixed-bucket latency histograms in the text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

type Key = (&'static str, Vec<(&'static str, String)>);
/// Bucket counts, count, sum in ms.
type Histogram = (Vec<u64>, u64, f64);

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, u64>>,
    gauges: Mutex<BTreeMap<Key, f64>>,
    histograms: Mutex<BTreeMap<Key, Histogram>>,
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        *self
            .counters
            .lock()
            .expect("metrics")
            .entry(key(name, labels))
            .or_default() += 1;
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.counters
            .lock()
            .expect("metrics")
            .get(&key(name, labels))
            .copied()
            .unwrap_or(0)
    }

    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.gauges
            .lock()
            .expect("metrics")
            .insert(key(name, labels), v);
    }

    pub fn observe_ms(&self, name: &'static str, labels: &[(&'static str, &str)], ms: f64) {
        let mut h = self.histograms.lock().expect("metrics");
        let e = h
            .entry(key(name, labels))
            .or_insert_with(|| (vec![0; BUCKETS_MS.len()], 0, 0.0));
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                e.0[i] += 1;
            }
        }
        e.1 += 1;
        e.2 += ms;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for ((n, l), v) in self.counters.lock().expect("metrics").iter() {
            let _ = writeln!(out, "{n}{} {v}", labels(l, None));
        }
        for ((n, l), v) in self.gauges.lock().expect("metrics").iter() {
            let _ = writeln!(out, "{n}{} {v}", labels(l, None));
        }
        for ((n, l), (b, count, sum)) in self.histograms.lock().expect("metrics").iter() {
            for (i, le) in BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {}",
                    labels(l, Some(&le.to_string())),
                    b[i]
                );
            }
            let _ = writeln!(out, "{n}_bucket{} {count}", labels(l, Some("+Inf")));
            let _ = writeln!(out, "{n}_sum{} {sum}", labels(l, None));
            let _ = writeln!(out, "{n}_count{} {count}", labels(l, None));
        }
        out
    }
}

fn labels(l: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('"', "'")))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}
