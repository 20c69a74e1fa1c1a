//! `couponctl`: the operator CLI — local cluster, dev tokens, benchmarks.

mod bench;
mod clusterfile;
mod dev;
mod doctor;
mod drill;
mod reconcile;
mod region;
mod slot;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "couponctl", about = "Operate the coupon service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The local cluster.
    #[command(subcommand)]
    Dev(dev::DevCmd),
    /// Check every store and peer credential of a running cluster.
    Doctor(doctor::DoctorArgs),
    /// Reconcile a campaign's Redis state with Postgres now.
    Reconcile(reconcile::Args),
    /// Slot ownership drills.
    #[command(subcommand)]
    Slot(slot::SlotCmd),
    /// SRE drills ending with a report and an invariant verdict.
    #[command(subcommand)]
    Drill(drill::DrillCmd),
    /// A region's primary role: failover, degrade, strict, lease status.
    #[command(subcommand)]
    Region(region::RegionCmd),
    /// Benchmarks against a running local cluster.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Dev(cmd) => dev::run(cmd).await,
        Cmd::Doctor(args) => doctor::run(args).await,
        Cmd::Bench(cmd) => bench::run(cmd).await,
        Cmd::Slot(cmd) => slot::run(cmd).await,
        Cmd::Drill(cmd) => drill::run(cmd).await,
        Cmd::Reconcile(a) => reconcile::run(a).await,
        Cmd::Region(cmd) => region::run(cmd).await,
    }
}
