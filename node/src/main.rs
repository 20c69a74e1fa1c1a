//! `coupon-node`: read config, open stores, serve until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use coupon_node::config::NodeConfig;
use coupon_node::start;

// glibc malloc (with its free-list consolidation) was about a fifth of the
// node's CPU in a burst: docs/benchmarks.md.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coupon_core::logging::init("info");
    // In-code failpoints from $FAILPOINTS (builds with the `failpoints`
    // feature only; chaos tests cut a takeover short with them).
    let _failpoints = fail::FailScenario::setup();
    let cfg = NodeConfig::parse();
    start::run(&cfg, shutdown_signal())
        .await
        .with_context(|| format!("node of region {} on {}", cfg.region, cfg.listen))?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
