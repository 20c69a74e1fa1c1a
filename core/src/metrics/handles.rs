//! Thread-local caches of metric handles, so that recording a sample takes
//! no lock and allocates nothing: a handle is an `Arc` around atomics, found
//! here by a hash of (instance, name, labels) and compared field by field.
//! Only the first use of a series on a thread asks the recorder (whose
//! registry locks). Each cache is bounded; when full it starts over.

use metrics::{Counter, Gauge, Histogram};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::thread::LocalKey;

/// Series cached per thread and handle type before the cache is cleared.
const MAX_CACHED: usize = 4096;

struct Entry<H> {
    id: u64,
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    handle: H,
}

type Cache<H> = RefCell<HashMap<u64, Vec<Entry<H>>>>;

thread_local! {
    static COUNTERS: Cache<Counter> = RefCell::default();
    static GAUGES: Cache<Gauge> = RefCell::default();
    static HISTOGRAMS: Cache<Histogram> = RefCell::default();
}

fn fingerprint(id: u64, name: &str, labels: &[(&'static str, &str)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, name, labels).hash(&mut h);
    h.finish()
}

fn same(e_labels: &[(&'static str, String)], labels: &[(&'static str, &str)]) -> bool {
    e_labels.len() == labels.len()
        && e_labels
            .iter()
            .zip(labels)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && v1 == v2)
}

fn lookup<H: Clone + 'static>(
    cache: &'static LocalKey<Cache<H>>,
    id: u64,
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce() -> H,
) -> H {
    let fp = fingerprint(id, name, labels);
    cache.with(|c| {
        let mut map = c.borrow_mut();
        if let Some(e) = map.get(&fp).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.id == id && e.name == name && same(&e.labels, labels))
        }) {
            return e.handle.clone();
        }
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        let handle = register();
        map.entry(fp).or_default().push(Entry {
            id,
            name,
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            handle: handle.clone(),
        });
        handle
    })
}

pub fn counter(
    id: u64,
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce() -> Counter,
) -> Counter {
    lookup(&COUNTERS, id, name, labels, register)
}

pub fn gauge(
    id: u64,
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce() -> Gauge,
) -> Gauge {
    lookup(&GAUGES, id, name, labels, register)
}

pub fn histogram(
    id: u64,
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce() -> Histogram,
) -> Histogram {
    lookup(&HISTOGRAMS, id, name, labels, register)
}
