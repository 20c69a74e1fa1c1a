//! `bench regions`: the cost of crossing regions. Redeems on a campaign
//! homed in `--home`, sent (a) straight to its node, (b) through its own
//! region's router (local slot), (c) through `--via`'s router (forwarded to
//! the owner). Run against `couponctl dev up` and `dev up --latency`.

use crate::clusterfile::{ClusterFile, FILE};
use crate::stats::{ms, percentile, summary};
use anyhow::Context;
use coupon_core::Slot;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Redeems per path.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// In flight at once per path.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Region owning the campaign.
    #[arg(long, default_value = "eu")]
    home: String,
    /// Region whose router forwards.
    #[arg(long, default_value = "us")]
    via: String,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

/// A fresh vanity code whose slot `region` owns in `map`.
pub fn code_owned_by(map: &Value, region: &str, prefix: &str) -> anyhow::Result<String> {
    for _ in 0..10_000 {
        let code = format!("{prefix}{}", rand::random::<u32>());
        let slot = Slot::of_vanity(&code).get() as usize;
        if map["slots"][slot]["region"] == region {
            return Ok(code);
        }
    }
    anyhow::bail!("region {region} owns no slot in the map")
}

/// Creates an uncapped shared campaign (one use per user) with `code`
/// through `router`.
pub async fn unlimited_campaign(
    http: &reqwest::Client,
    router: &str,
    admin: &str,
    name: &str,
    code: &str,
) -> anyhow::Result<()> {
    let body = json!({"name": name, "kind": "shared", "code": code, "total_limit": null,
        "per_user_limit": 1, "discount": {"type": "percent", "percent": 10},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"});
    let resp = http
        .post(format!("{router}/v1/campaigns"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().as_u16() == 201,
        "create campaign: {}",
        resp.text().await?
    );
    Ok(())
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let issuer = cluster.issuer()?;
    let home = cluster
        .regions
        .get(&a.home)
        .context("no such --home region")?;
    let home_router = home.router.clone().context("home region has no router")?;
    let via_router = cluster.entry_url(&a.via)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let map: Value = http
        .get(format!("{via_router}/v1/cluster/map"))
        .send()
        .await?
        .json()
        .await?;
    let code = code_owned_by(&map, &a.home, "XREG")?;
    unlimited_campaign(&http, &home_router, &issuer.admin(), "bench regions", &code).await?;
    println!(
        "campaign {code} homed in {}; {} redeems per path, concurrency {}",
        a.home, a.requests, a.concurrency
    );
    let paths = [
        ("direct to node", home.node()?.to_owned()),
        ("local router", home_router.clone()),
        ("forwarded router", via_router.clone()),
    ];
    let mut p = Vec::new();
    for (i, (name, base)) in paths.iter().enumerate() {
        let lat = measure(
            &http,
            &issuer,
            base,
            &code,
            &format!("p{i}"),
            a.requests,
            a.concurrency,
        )
        .await?;
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        p.push((percentile(&sorted, 50.0), percentile(&sorted, 99.0)));
        println!("{name:>17} ({base}): {}", summary(lat));
    }
    let over = |x: Duration, y: Duration| ms(x.saturating_sub(y));
    println!(
        "router overhead (local − direct): p50 +{} / p99 +{}",
        over(p[1].0, p[0].0),
        over(p[1].1, p[0].1)
    );
    println!(
        "cross-region (forwarded − local): p50 +{} / p99 +{}",
        over(p[2].0, p[1].0),
        over(p[2].1, p[1].1)
    );
    Ok(())
}

async fn measure(
    http: &reqwest::Client,
    issuer: &coupon_testkit::Issuer,
    base: &str,
    code: &str,
    tag: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    let run = rand::random::<u32>();
    for i in 0..n + 20 {
        let permit = sem.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), format!("{base}/v1/coupons/redeem"));
        let token = issuer.user(&format!("bench-{run}-{tag}-{i}"));
        let body = json!({"code": code, "order_id": format!("o-{i}")});
        set.spawn(async move {
            let started = Instant::now();
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("k{i}"))
                .json(&body)
                .send()
                .await;
            drop(permit);
            let ok = r.map(|r| r.status().as_u16() == 201).unwrap_or(false);
            (i, ok, started.elapsed())
        });
    }
    let mut out = Vec::new();
    let mut failed = 0;
    while let Some(res) = set.join_next().await {
        let (i, ok, d) = res?;
        if !ok {
            failed += 1;
        } else if i >= 20 {
            out.push(d);
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} redeems via {base} did not answer 201"
    );
    Ok(out)
}
