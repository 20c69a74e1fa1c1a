//! Log setup shared by node, router and raft members: `tracing` to standard
//! error, filtered by `RUST_LOG` (else `default`), coloured only on a
//! terminal. In a log file the escape codes split `region=us` apart, so a
//! grep for a region, slot or campaign found nothing.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default: &str) {
    tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()))
        .init();
}
