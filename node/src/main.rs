//! `coupon-node`: read config, open stores, serve until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use coupon_node::config::NodeConfig;
use coupon_node::start;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = NodeConfig::parse();
    let state = start::build_state(&cfg)
        .await
        .context("starting the node")?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(region = %cfg.region, addr = %cfg.listen, "node listening");
    start::serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
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
