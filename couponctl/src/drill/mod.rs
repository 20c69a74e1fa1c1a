//! `couponctl drill …`: SRE drills that end with a report (docs/api.md
//! "Drills"): a timeline, errors by class, and an invariant verdict; the
//! exit code is 0 only when the verdict is pass.

mod evacuate;
mod plan;
mod region_loss;
mod report;
mod verdict;

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DrillCmd {
    /// Move every slot of region R to the other regions, several at a time,
    /// under live traffic; resumable (a re-run finishes the job). With
    /// `--undo`, spread the slots evenly over every region again.
    Evacuate(evacuate::Args),
    /// Lose region R whole under load (local cluster): kill every process
    /// of R, wait for its standby's takeover, check every invariant against
    /// the surviving databases, report RTO and RPO.
    RegionLoss(region_loss::Args),
    /// Spread the slots evenly over every region (same as `evacuate R --undo`).
    Rebalance {
        /// Slots moved at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = crate::clusterfile::FILE)]
        cluster_file: PathBuf,
    },
}

pub async fn run(cmd: DrillCmd) -> anyhow::Result<()> {
    let report = match cmd {
        DrillCmd::RegionLoss(a) => {
            if !region_loss::run(a).await? {
                std::process::exit(1);
            }
            return Ok(());
        }
        DrillCmd::Evacuate(a) => evacuate::run(a).await?,
        DrillCmd::Rebalance {
            concurrency,
            json,
            cluster_file,
        } => {
            evacuate::run(evacuate::Args {
                region: None,
                undo: true,
                concurrency,
                json,
                cluster_file,
            })
            .await?
        }
    };
    if !report.pass() {
        std::process::exit(1);
    }
    Ok(())
}
