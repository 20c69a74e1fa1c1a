//! Chaos harness (docs/architecture.md §8): a whole multi-region cluster on loopback
//! with every link through a fault proxy this process controls, process
//! faults (SIGKILL, SIGSTOP/SIGCONT, restart), a workload recorder and the
//! invariant checker of §3. Scenarios live in `tests/chaos/`, one per file.

pub mod checker;
pub mod faults;
pub mod harness;
pub mod moves;
pub mod region;
pub mod timeline;
pub mod workload;

pub use harness::Harness;
