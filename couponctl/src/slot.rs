//! `couponctl slot move`: a planned move of one slot to another region, the
//! SRE drill of docs/architecture.md §7 in one command (freeze, copy and verify, activate
//! at epoch+1, commit in raft; routers follow the map watch).

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::{bail, Context};
use coupon_core::Code;
use coupon_node::ownership::mover::move_slot;
use coupon_raft::client::AdminClient;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum SlotCmd {
    /// Move a slot (given directly, or as the slot of a code) to a region.
    Move {
        #[arg(long, conflicts_with = "code")]
        slot: Option<u16>,
        /// Move the slot this code (or campaign id) lives in.
        #[arg(long)]
        code: Option<String>,
        /// Target region.
        #[arg(long)]
        to: String,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
}

pub async fn run(cmd: SlotCmd) -> anyhow::Result<()> {
    let SlotCmd::Move {
        slot,
        code,
        to,
        cluster_file,
    } = cmd;
    let slot = match (slot, code) {
        (Some(s), _) => s,
        (None, Some(c)) => match coupon_core::CampaignId::parse(&c) {
            Ok(id) => id.slot().get(),
            Err(_) => Code::parse(&c)
                .context("not a code or campaign id")?
                .slot()
                .get(),
        },
        (None, None) => bail!("say --slot N or --code CODE"),
    };
    let cluster = ClusterFile::load(&cluster_file)?;
    let token = cluster.raft_admin_token()?;
    let raft = cluster
        .raft
        .first()
        .context("cluster file lists no raft member")?;
    let admin = AdminClient::new(&raft.url, token.trim())?;
    let map: Value = reqwest::get(format!("{}/v1/cluster/map", raft.url))
        .await?
        .json()
        .await?;
    let from = map["slots"][slot as usize]["region"]
        .as_str()
        .context("slot not in the map")?
        .to_owned();
    if from == to {
        bail!("slot {slot} is already owned by {to}");
    }
    let db = |r: &str| -> anyhow::Result<String> {
        Ok(cluster
            .region(r)?
            .postgres()
            .with_context(|| format!("moving needs {r}'s Postgres"))?
            .to_owned())
    };
    let from_db = sqlx::PgPool::connect(&db(&from)?).await?;
    let to_db = sqlx::PgPool::connect(&db(&to)?).await?;
    println!(
        "moving slot {slot}: {from} → {to} (epoch {})",
        map["slots"][slot as usize]["epoch"]
    );
    let started = Instant::now();
    let report = move_slot(&admin, &from_db, &to_db, slot, &to).await?;
    println!(
        "moved in {:.0} ms; {to} owns slot {slot} at epoch {}",
        started.elapsed().as_secs_f64() * 1e3,
        report.new_epoch
    );
    for (table, (rows, checksum)) in &report.tables {
        println!("  {table:<12} {rows:>8} rows  md5 {checksum}");
    }
    Ok(())
}
