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
    tracing_subscriber::fmt()
        // Colour only on a terminal: in a log file the escape codes split
        // `region=us` apart, so a grep for a region, slot or campaign
        // finds nothing.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
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
