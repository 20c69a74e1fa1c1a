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
/// The first call in a process sweeps it of dead processes' folders
/// ([`sweep_dead`]).
pub fn scratch_root() -> std::path::PathBuf {
    let root: std::path::PathBuf = match std::env::var("COUPON_TEST_DIR") {
        Ok(d) => d.into(),
        Err(_) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/testkit"),
    };
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_dead(&root));
    root
}

/// Removes the folders under `root` whose name carries the tag
/// ([`unique_tag`]) of a process that is no longer running. A test
/// process's shared servers live in statics, which are never dropped, so
/// every test process left its Postgres, Redis and key folders behind:
/// 1,511 Postgres folders, 62 GB, had filled this machine's disk. A name
/// without a tag, or with the pid of a live process, is left alone.
pub fn sweep_dead(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(tagged_pid) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The pid of a [`unique_tag`] in a folder name (`pg-4242_0_1a2b`,
/// `sb-4242_3_1a2b-us`, `keys-t4242_1_1a2b`): the first `<digits>_<digits>_<hex>`.
/// Other names (`chaos-<scenario>-<pid>`, whose logs a failed run keeps)
/// carry none.
fn tagged_pid(name: &str) -> Option<u32> {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let hex = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_hexdigit()).len();
    (0..name.len())
        .filter(|&i| name.is_char_boundary(i))
        .find_map(|i| {
            let rest = &name[i..];
            let p = digits(rest);
            let after = rest[p..].strip_prefix('_')?;
            let n = digits(after);
            let tail = after[n..].strip_prefix('_')?;
            (p > 0 && n > 0 && hex(tail) > 0).then(|| rest[..p].parse().ok())?
        })
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
