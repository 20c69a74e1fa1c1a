//! `couponctl slot move`: one planned move of a slot (docs/architecture.md
//! §7). Re-running it after any crash finishes the move that was under way
//! (forward, or back if it had not activated); `--abort` rolls an
//! unfinished move back instead.

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::{bail, Context};
use coupon_core::Code;
use coupon_node::ownership::mover::{self, MoveError, MoveReport, Options, Outcome, Step, Stores};
use coupon_raft::client::AdminClient;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum SlotCmd {
    /// Move a slot (given directly, or as the slot of a code) to a region.
    /// An unfinished move of the slot is finished first.
    Move {
        #[arg(long, conflicts_with = "code")]
        slot: Option<u16>,
        /// Move the slot this code (or campaign id) lives in.
        #[arg(long)]
        code: Option<String>,
        /// Target region (omit with --abort or --resume).
        #[arg(long, required_unless_present_any = ["abort", "resume"])]
        to: Option<String>,
        /// Only finish an unfinished move of the slot (forward).
        #[arg(long, conflicts_with = "abort")]
        resume: bool,
        /// Roll an unfinished move back (refused once the target is active:
        /// such a move is completed instead).
        #[arg(long)]
        abort: bool,
        /// Test hook: stop (and hang, to be killed) after this step.
        #[arg(long, hide = true, env = "COUPON_MOVER_STOP_AFTER")]
        stop_after: Option<Step>,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
}

/// The raft admin client (every member, so a dead leader is survived) and
/// every region's Postgres, from the cluster file.
pub async fn connect(cluster_file: &Path) -> anyhow::Result<(AdminClient, Stores)> {
    let cluster = ClusterFile::load(cluster_file)?;
    let admin = cluster.raft_admin()?;
    let mut stores = Stores::default();
    for (name, r) in &cluster.regions {
        let url = r
            .postgres
            .as_deref()
            .with_context(|| format!("moving slots needs region {name}'s Postgres"))?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_lazy(url)?;
        stores.0.insert(name.clone(), pool);
    }
    Ok((admin, stores))
}

pub fn parse_slot(slot: Option<u16>, code: Option<String>) -> anyhow::Result<u16> {
    Ok(match (slot, code) {
        (Some(s), _) => s,
        (None, Some(c)) => match coupon_core::CampaignId::parse(&c) {
            Ok(id) => id.slot().get(),
            Err(_) => Code::parse(&c)
                .context("not a code or campaign id")?
                .slot()
                .get(),
        },
        (None, None) => bail!("say --slot N or --code CODE"),
    })
}

pub async fn run(cmd: SlotCmd) -> anyhow::Result<()> {
    let SlotCmd::Move {
        slot,
        code,
        to,
        resume,
        abort,
        stop_after,
        cluster_file,
    } = cmd;
    let slot = parse_slot(slot, code)?;
    let (admin, stores) = connect(&cluster_file).await?;
    let opts = Options { stop_after };
    let started = Instant::now();
    let result = match (&to, resume || abort) {
        (_, true) => mover::resume(&admin, &stores, slot, abort, &opts).await,
        (Some(to), false) => {
            println!("moving slot {slot} to {to}");
            mover::move_slot(&admin, &stores, slot, to, &opts).await
        }
        (None, false) => bail!("say --to REGION"),
    };
    match result {
        Ok(Some(r)) => print_report(&r, started),
        Ok(None) if resume || abort => println!("slot {slot} has no unfinished move"),
        Ok(None) => println!("slot {slot} is already owned by {}", to.unwrap_or_default()),
        Err(MoveError::Stopped(step)) => {
            // Test hook: announce, then wait to be killed like a crash.
            println!("mover stopped after {step:?}");
            std::future::pending::<()>().await;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn print_report(r: &MoveReport, started: Instant) {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let resumed = if r.resumed { " (resumed)" } else { "" };
    match r.outcome {
        Outcome::Completed => println!(
            "moved in {ms:.0} ms{resumed}; {} owns slot {} at epoch {}",
            r.to, r.slot, r.new_epoch
        ),
        Outcome::RolledBack => println!(
            "move {} rolled back in {ms:.0} ms{resumed}; {} owns slot {} at epoch {} ({})",
            r.move_id,
            r.from,
            r.slot,
            r.new_epoch,
            r.error.as_deref().unwrap_or("")
        ),
    }
    if let Some(f) = r.frozen_for {
        println!("  frozen for {:.0} ms", f.as_secs_f64() * 1e3);
    }
    for (table, (rows, checksum)) in &r.tables {
        println!("  {table:<12} {rows:>8} rows  checksum {checksum}");
    }
}
