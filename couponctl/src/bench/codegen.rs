//! `bench codegen`: generate and store a pool of codes through the API,
//! with progress, and print the time and rate.

use crate::clusterfile::{ClusterFile, FILE};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    count: i64,
    #[arg(long, default_value = "us")]
    region: String,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let admin = cluster.issuer()?.admin();
    let base = cluster.entry_url(&a.region)?;
    let (_, j, wall) = pool_with_codes(&base, &admin, &a.region, a.count, true).await?;
    println!(
        "generated and stored {} codes in {:.2} s ({:.0} codes/s)",
        a.count,
        wall.as_secs_f64(),
        a.count as f64 / wall.as_secs_f64()
    );
    println!("per-store report: {}", j["report"]);
    Ok(())
}

/// Create a pool campaign homed in `region`, generate `count` codes and wait
/// for the job: (campaign id, finished job, time from job start to done).
pub async fn pool_with_codes(
    base: &str,
    admin: &str,
    region: &str,
    count: i64,
    progress: bool,
) -> anyhow::Result<(String, Value, Duration)> {
    let http = reqwest::Client::new();
    let body = json!({"name": "bench pool", "kind": "pool", "per_user_limit": 1,
        "discount": {"type": "free_shipping"}, "home_region": region,
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"});
    let c: Value = http
        .post(format!("{base}/v1/campaigns"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    let id = c["campaign_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("create campaign: {c}"))?
        .to_owned();
    let started = Instant::now();
    let job: Value = http
        .post(format!("{base}/v1/campaigns/{id}/codes"))
        .bearer_auth(admin)
        .json(&json!({"count": count}))
        .send()
        .await?
        .json()
        .await?;
    let job_id = job["job_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("start job: {job}"))?;
    loop {
        let res = http
            .get(format!("{base}/v1/jobs/{job_id}"))
            .bearer_auth(admin)
            .send()
            .await?;
        let status = res.status();
        let j: Value = res.json().await?;
        if !status.is_success() {
            // A poll refused (a 503 while the region's lease renews late on
            // a saturated machine) says nothing about the job: say so, poll on.
            eprintln!("\npolling the job: {status} {j}");
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        if progress {
            eprint!("\r{} / {} codes", j["done"], j["total"]);
        }
        if j["state"] != "running" {
            if progress {
                eprintln!();
            }
            anyhow::ensure!(j["state"] == "done", "job failed: {j}");
            return Ok((id, j, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
