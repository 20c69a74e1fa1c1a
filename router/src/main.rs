//! `coupon-router`: read config, connect to the map, serve until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use coupon_router::config::RouterConfig;
use coupon_router::state::AppState;

// glibc malloc was about a sixth of the router's samples in a routed burst,
// with its free-list consolidation among them: docs/benchmarks.md.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coupon_core::logging::init("info");
    let cfg = RouterConfig::parse();
    let listen = cfg.listen;
    let region = cfg.region.clone();
    let state = AppState::start(cfg).context("starting the router")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%region, addr = %listen, "router listening");
    let app =
        coupon_router::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
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
