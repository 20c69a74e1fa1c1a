//! Prometheus metrics of nodes and routers, recorded with the `metrics`
//! crate and rendered by `metrics-exporter-prometheus`: the text format with
//! `# HELP` and `# TYPE` lines, label values escaped by the library.
//!
//! Each [`Metrics`] has its own recorder (tests run many nodes in one
//! process, each with its own numbers). Every name comes from
//! [`catalogue::METRICS`], which also gives its help text and type.
//!
//! The hot path takes no lock and allocates nothing once a series has been
//! used on a thread: the handle (an atomic) comes from a thread-local cache
//! ([`handles`]), and only its first use per thread goes to the recorder.

pub mod catalogue;
mod handles;

use catalogue::{Kind, METRICS};
use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histograms, in milliseconds.
pub const BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

static METADATA: Metadata<'static> = Metadata::new("coupon", Level::INFO, None);

pub struct Metrics {
    /// Tells this instance's handles apart in the thread-local caches.
    id: u64,
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

impl Metrics {
    pub fn new() -> Metrics {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let mut builder = PrometheusBuilder::new();
        for (name, kind, _) in METRICS {
            if *kind == Kind::Histogram {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).to_owned()), &BUCKETS_MS)
                    .expect("fixed buckets are valid");
            }
        }
        let recorder = builder.build_recorder();
        for (name, kind, help) in METRICS {
            let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, None, help),
            }
        }
        let handle = recorder.handle();
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            recorder,
            handle,
        }
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        handles::counter(self.id, name, labels, || {
            self.recorder
                .register_counter(&key(name, labels), &METADATA)
        })
        .increment(n);
    }

    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        handles::gauge(self.id, name, labels, || {
            self.recorder.register_gauge(&key(name, labels), &METADATA)
        })
        .set(v);
    }

    pub fn observe_ms(&self, name: &'static str, labels: &[(&'static str, &str)], ms: f64) {
        handles::histogram(self.id, name, labels, || {
            self.recorder
                .register_histogram(&key(name, labels), &METADATA)
        })
        .record(ms);
    }

    /// The Prometheus text exposition of every series recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests;
