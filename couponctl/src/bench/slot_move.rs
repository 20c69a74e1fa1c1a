//! `couponctl bench move`: how long a slot with many codes takes to move,
//! and how much memory the mover needs (docs/architecture.md §7: the copy
//! streams in bounded pages, so memory must not grow with the slot).
//!
//! For each size (a small baseline, then `--codes`), a pool campaign is
//! created in `--from` and its codes are bulk-inserted straight into that
//! region's Postgres (this measures the move, not generation), then its
//! slot is moved to `--to` by the mover running in this process. The
//! mover's peak memory is this process's `VmHWM` (from `/proc/self/status`).

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::Context;
use coupon_node::ownership::mover::{self, Options};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Codes in the big slot.
    #[arg(long, default_value_t = 2_000_000)]
    codes: i64,
    /// Codes in the baseline slot, moved first.
    #[arg(long, default_value_t = 1_000)]
    baseline: i64,
    #[arg(long, default_value = "us")]
    from: String,
    #[arg(long, default_value = "eu")]
    to: String,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

/// A line of `/proc/self/status` in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let router = cluster
        .region(&a.from)?
        .router
        .clone()
        .context("no router for the source region")?;
    let token = cluster.admin_token()?;
    let (admin, stores) = crate::slot::connect(&a.cluster_file).await?;
    let src = stores
        .0
        .get(&a.from)
        .context("no Postgres for the source region")?
        .clone();
    let http = reqwest::Client::new();
    println!(
        "{:>10}  {:>9}  {:>11}  {:>9}  {:>12}  {:>12}",
        "codes", "move s", "codes/s", "frozen s", "RSS before", "peak RSS"
    );
    for n in [a.baseline, a.codes] {
        let c: Value = http
            .post(format!("{router}/v1/campaigns"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("move bench {n}"), "kind": "pool",
                "per_user_limit": 1, "home_region": a.from,
                "discount": {"type": "percent", "percent": 5},
                "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = c["campaign_id"].as_str().context("campaign id")?.to_owned();
        let slot = coupon_core::CampaignId::parse(&id)?.slot().get();
        sqlx::query(
            "INSERT INTO codes (code, campaign_id, seq) \
             SELECT 'MB' || upper(substr(md5($1 || i), 1, 14)), $1, i \
             FROM generate_series(1, $2::bigint) i",
        )
        .bind(&id)
        .bind(n)
        .execute(&src)
        .await?;
        let before = status_kb("VmRSS:");
        let started = Instant::now();
        let r = mover::move_slot(&admin, &stores, slot, &a.to, &Options::default())
            .await?
            .context("the slot did not move")?;
        let secs = started.elapsed().as_secs_f64();
        let rows = r.tables.get("codes").map_or(0, |t| t.0);
        println!(
            "{:>10}  {:>9.2}  {:>11.0}  {:>9.2}  {:>9} kB  {:>9} kB",
            rows,
            secs,
            rows as f64 / secs,
            r.frozen_for.map_or(0.0, |f| f.as_secs_f64()),
            before,
            status_kb("VmHWM:")
        );
    }
    println!("(peak RSS is the process high-water mark: flat memory shows as the same peak for both sizes)");
    Ok(())
}
