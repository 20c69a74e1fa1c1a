//! Prometheus metrics shared by nodes and routers, kept deliberately small:
//! labelled counters, gauges and fixed-bucket latency histograms in the text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
    gauges: Mutex<BTreeMap<(&'static str, Labels), f64>>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_ms: f64,
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        let key = (name, own(labels));
        *self
            .counters
            .lock()
            .expect("metrics lock")
            .entry(key)
            .or_default() += n;
    }

    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.gauges
            .lock()
            .expect("metrics lock")
            .insert((name, own(labels)), v);
    }

    pub fn observe_ms(&self, name: &'static str, labels: &[(&'static str, &str)], ms: f64) {
        let mut h = self.histograms.lock().expect("metrics lock");
        let e = h.entry((name, own(labels))).or_default();
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                e.buckets[i] += 1;
            }
        }
        e.count += 1;
        e.sum_ms += ms;
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        let key = (name, own(labels));
        self.counters
            .lock()
            .expect("metrics lock")
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for ((name, labels), v) in self.counters.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
        }
        for ((name, labels), v) in self.gauges.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
        }
        for ((name, labels), h) in self.histograms.lock().expect("metrics lock").iter() {
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let le = format!("{b}");
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    fmt_labels(labels, Some(&le)),
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                fmt_labels(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum_ms);
            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
        }
        out
    }
}

fn own(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
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
