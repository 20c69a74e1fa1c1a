//! `couponctl reconcile <campaign>`: compare a campaign's Redis state with
//! Postgres in its owning region now, give back leaked claims older than the
//! grace period, rebuild on drift, and print the report.

use crate::clusterfile::{ClusterFile, FILE};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Campaign id (`cmp_…`); its id routes the call to the owning region.
    campaign: String,
    /// Region whose router takes the call.
    #[arg(long, default_value = "us")]
    via: String,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let base = cluster.entry_url(&a.via)?;
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/campaigns/{}/reconcile", a.campaign))
        .bearer_auth(cluster.admin_token()?)
        .json(&serde_json::json!({}))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    anyhow::ensure!(status.is_success(), "reconcile answered {status}");
    Ok(())
}
