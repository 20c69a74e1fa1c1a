//! `coupon-raft`: `serve` runs one member; `bench` measures a local 3-member group.

mod bench;

use anyhow::Context;
use clap::{Parser, Subcommand};
use coupon_raft::config::ServeConfig;
use coupon_raft::server::Member;

#[derive(Parser)]
#[command(
    name = "coupon-raft",
    version,
    about = "Raft group holding the slot ownership map"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one raft member.
    Serve(Box<ServeConfig>),
    /// Start a 3-member group on loopback and measure write and watch latency.
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coupon_core::logging::init("info,openraft=warn");
    match Cli::parse().cmd {
        Cmd::Serve(cfg) => {
            let member = Member::start(*cfg).await.context("starting the member")?;
            member.serve(shutdown_signal()).await.context("serving")?;
        }
        Cmd::Bench(args) => bench::run(args).await?,
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
