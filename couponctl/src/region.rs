//! `couponctl region …`: a region's primary role (docs/failover.md).
//!
//! - `failover R` — unplanned takeover of a lost region by its standby:
//!   refused by the raft leader while R's lease may still be valid, unless
//!   `--force` (the operator fenced R by hand). Re-running it waits for a
//!   takeover already under way; it never starts a second one.
//! - `degrade R` / `strict R` — let R's primary commit without its
//!   synchronous standby (explicit, visible), or require it again.
//! - `status` — every lease as the raft leader judges it.

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::{bail, Context};
use coupon_raft::client::{AdminClient, ClientError};
use coupon_raft::model::FailoverState;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum RegionCmd {
    /// Unplanned takeover of lost region R by its standby.
    Failover {
        region: String,
        /// Skip the lease check (only after fencing R by hand: its nodes
        /// stopped, its primary unreachable by clients).
        #[arg(long)]
        force: bool,
        /// How long to wait for the takeover to complete.
        #[arg(long, default_value_t = 90)]
        wait_secs: u64,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
    /// Planned, lossless move of region R's primary role to its standby:
    /// the current primary stops (its lease lapses, it cannot renew), the
    /// standby promotes and serves at epoch + 1. Run it twice for a
    /// failback (after the lost primary rejoined as the standby).
    Switchover {
        region: String,
        #[arg(long, default_value_t = 90)]
        wait_secs: u64,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
    /// Let region R's primary commit without its synchronous standby
    /// (asynchronous: an acknowledged commit may be lost with the primary).
    Degrade {
        region: String,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
    /// Require region R's synchronous standby on every commit again.
    Strict {
        region: String,
        /// The standby's `application_name` (default `standby_<region>`).
        #[arg(long)]
        standby_name: Option<String>,
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
    /// Every region's lease as the raft leader judges it.
    Status {
        #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
        cluster_file: PathBuf,
    },
}

pub async fn run(cmd: RegionCmd) -> anyhow::Result<()> {
    match cmd {
        RegionCmd::Failover {
            region,
            force,
            wait_secs,
            json,
            cluster_file,
        } => {
            let how = if force { How::Forced } else { How::Lost };
            take_over(&cluster_file, &region, how, wait_secs, json).await
        }
        RegionCmd::Switchover {
            region,
            wait_secs,
            json,
            cluster_file,
        } => take_over(&cluster_file, &region, How::Planned, wait_secs, json).await,
        RegionCmd::Degrade {
            region,
            cluster_file,
        } => set_sync(&cluster_file, &region, "").await,
        RegionCmd::Strict {
            region,
            standby_name,
            cluster_file,
        } => {
            let name = standby_name.unwrap_or_else(|| format!("standby_{region}"));
            set_sync(&cluster_file, &region, &name).await
        }
        RegionCmd::Status { cluster_file } => {
            let v = leases(&cluster_file).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}

/// A takeover or switchover, its report printed as JSON on request.
async fn take_over(
    cluster_file: &Path,
    region: &str,
    how: How,
    wait_secs: u64,
    json: bool,
) -> anyhow::Result<()> {
    let report = failover(cluster_file, region, how, Duration::from_secs(wait_secs)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// `GET /v1/cluster/leases` from the first member that answers.
pub async fn leases(cluster_file: &Path) -> anyhow::Result<Value> {
    let cluster = ClusterFile::load(cluster_file)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut last = String::from("no raft member");
    for m in &cluster.raft {
        match http
            .get(format!("{}/v1/cluster/leases", m.url))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(r.json().await?),
            Ok(r) => last = format!("{}: {}", m.url, r.status()),
            Err(e) => last = format!("{}: {e}", m.url),
        }
    }
    bail!("no raft member answered: {last}")
}

/// What kind of takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The region is lost: only once raft judges its lease lapsed.
    Lost,
    /// The operator fenced the region by hand.
    Forced,
    /// Planned switchover of a healthy region.
    Planned,
}

/// Starts (or joins) a takeover of `region` and waits for it; returns a
/// report with its timeline.
pub async fn failover(
    cluster_file: &Path,
    region: &str,
    how: How,
    wait: Duration,
) -> anyhow::Result<Value> {
    let admin = ClusterFile::load(cluster_file)?.raft_admin()?;
    let started = Instant::now();
    let at = |what: &str| {
        let ms = started.elapsed().as_millis();
        eprintln!("{ms:>7} ms  {what}");
        json!({"at_ms": ms, "step": what})
    };
    let kind = if how == How::Planned {
        "switchover"
    } else {
        "takeover"
    };
    let mut timeline = vec![at(&format!("{kind} of {region} requested"))];
    let id = format!(
        "cli-{kind}-{region}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let body = json!({"request_id": id, "region": region,
        "force": how == How::Forced, "planned": how == How::Planned});
    let target = match admin
        .post::<_, Value>("/v1/cluster/failover/begin", &body)
        .await
    {
        Ok(_) => {
            timeline.push(at(match how {
                How::Planned => {
                    "raft: slots failing_over; the primary can no longer renew its lease"
                }
                _ => "raft: region marked failing_over (its lease lapsed)",
            }));
            id
        }
        Err(ClientError::Problem { code, detail, .. }) if code == "failover_in_progress" => {
            timeline.push(at(&format!("a takeover is already under way: {detail}")));
            record(&admin, region)
                .await
                .map(|r| r.id)
                .unwrap_or_default()
        }
        Err(ClientError::Problem { code, .. }) if code == "no_standby" && how != How::Planned => {
            match record(&admin, region).await {
                Some(r) if r.state == FailoverState::Completed => {
                    timeline.push(at("the takeover had already completed"));
                    r.id
                }
                _ => bail!("region {region} has no standby to take over"),
            }
        }
        Err(ClientError::Problem { code, detail, .. }) if code == "lease_valid" => {
            bail!("refused: {detail}")
        }
        Err(e) => return Err(e).context("starting the takeover"),
    };
    if how == How::Planned {
        eprintln!("        (the standby promotes once raft judges the primary's lease lapsed: L + margin)");
    }
    loop {
        if record(&admin, region)
            .await
            .is_some_and(|r| r.id == target && r.state == FailoverState::Completed)
        {
            timeline.push(at("raft: committed at epoch + 1; routers follow the map"));
            break;
        }
        if started.elapsed() > wait {
            bail!("the {kind} of {region} did not complete within {wait:?}: is the standby node of {region} running? (its log says which step failed)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let map = admin.map().await?;
    let rec = map.failovers.iter().find(|f| f.region.as_str() == region);
    let node = map
        .regions
        .iter()
        .find(|r| r.id.as_str() == region)
        .map(|r| r.node.clone());
    eprintln!(
        "region {region} now served by {} ({} slots at a new epoch)",
        node.clone().unwrap_or_default(),
        rec.map_or(0, |r| r.slots.len())
    );
    Ok(
        json!({"region": region, "kind": kind, "node": node, "slots": rec.map(|r| r.slots.len()),
        "forced": rec.map(|r| r.forced), "timeline": timeline}),
    )
}

async fn record(admin: &AdminClient, region: &str) -> Option<coupon_raft::model::FailoverRecord> {
    let m = admin.map().await.ok()?;
    m.failovers
        .into_iter()
        .find(|f| f.region.as_str() == region)
}

/// Sets `synchronous_standby_names` on `region`'s primary and reloads.
async fn set_sync(cluster_file: &Path, region: &str, names: &str) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(cluster_file)?;
    let r = cluster
        .regions
        .get(region)
        .with_context(|| format!("no region {region} in the cluster file"))?;
    let url = r
        .postgres
        .as_deref()
        .with_context(|| format!("region {region}'s Postgres is not in the cluster file"))?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("connecting to region {region}'s primary"))?;
    // ALTER SYSTEM takes no parameters: the value is quoted here.
    let quoted = names.replace('\'', "''");
    sqlx::query(&format!(
        "ALTER SYSTEM SET synchronous_standby_names = '{quoted}'"
    ))
    .execute(&db)
    .await?;
    sqlx::query("SELECT pg_reload_conf()").execute(&db).await?;
    if names.is_empty() {
        eprintln!("region {region} is DEGRADED: commits no longer wait for a standby (an acknowledged redemption can be lost with this primary). `couponctl region strict {region}` undoes it.");
    } else {
        eprintln!("region {region} is strict again: every commit waits for standby `{names}`.");
    }
    Ok(())
}
