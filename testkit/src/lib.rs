//! Real Postgres and Redis processes on loopback for tests and the local
//! cluster (docs/architecture.md §6), plus a dev token issuer. No mocks.

pub mod balancer;
pub mod cluster;
pub mod idp;
pub mod issuer;
pub mod netproxy;
pub mod ports;
pub mod postgres;
pub mod procs;
pub mod redis;
pub mod spans;

pub use issuer::Issuer;
pub use postgres::PgServer;
pub use redis::RedisServer;

/// Errors starting or driving a store process.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KitError {
    let what = what.into();
    move |source| KitError::Io { what, source }
}

/// Folder for test data: `$COUPON_TEST_DIR`, else `<workspace>/target/testkit`.
pub fn scratch_root() -> std::path::PathBuf {
    if let Ok(d) = std::env::var("COUPON_TEST_DIR") {
        return d.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testkit")
}

/// A name part no other process on this machine has used: the pid alone
/// repeats once pids wrap (a long test run starts thousands of processes),
/// and a database or a kept scratch folder of an earlier process with the
/// same pid would then be picked up again.
pub fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}_{}_{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos & 0xffff_ffff_ffff
    )
}
