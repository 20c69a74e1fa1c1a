//! `couponctl bench …`: benchmarks that print figures and compare against a
//! baseline in the same run. Tests assert correctness; these measure.

mod burst;
mod codegen;
mod commit;
mod cpu;
mod fire;
mod pool;
pub mod regions;
mod slot_move;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Fire N redeem attempts at a campaign with S seats at concurrency C.
    Burst(burst::Args),
    /// Time generating and storing a pool of codes.
    Codegen(codegen::Args),
    /// Pool claims per second with 0 % and 90 % of codes used, vs the textbook query.
    Pool(pool::Args),
    /// Redeem latency: direct to the node, local router, forwarded from another region.
    Regions(regions::Args),
    /// Commit latency with and without the synchronous standby (same run).
    Commit(commit::Args),
    /// Move a slot holding many codes: time and the mover's peak memory.
    Move(slot_move::Args),
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Burst(a) => burst::run(a).await,
        BenchCmd::Codegen(a) => codegen::run(a).await,
        BenchCmd::Pool(a) => pool::run(a).await,
        BenchCmd::Regions(a) => regions::run(a).await,
        BenchCmd::Move(a) => slot_move::run(a).await,
        BenchCmd::Commit(a) => commit::run(a).await,
    }
}
