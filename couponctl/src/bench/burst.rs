//! `bench burst`: N redeem attempts on an S-seat campaign at concurrency C,
//! through the cluster's HTTP API; `--baseline` runs the same workload
//! against a naive `SELECT … FOR UPDATE` counter in the same Postgres.

use crate::clusterfile::{ClusterFile, FILE};
use crate::stats::{ms, summary};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 10_000)]
    attempts: usize,
    #[arg(long, default_value_t = 1_000)]
    seats: i64,
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Region whose router (or node) receives the traffic.
    #[arg(long, default_value = "us")]
    region: String,
    /// Send straight to the owning node instead of a router.
    #[arg(long)]
    direct: bool,
    /// Also run the naive Postgres counter and print the ratio.
    #[arg(long)]
    baseline: bool,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

struct Sample {
    outcome: String,
    latency: Duration,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let issuer = cluster.issuer()?;
    let router = cluster.entry_url(&a.region)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    // A code whose slot this region owns, so --direct can skip the router.
    let map: Value = http
        .get(format!("{router}/v1/cluster/map?stale=ok"))
        .send()
        .await?
        .json()
        .await?;
    let code = super::regions::code_owned_by(&map, &a.region, "BURST")?;
    // Users and keys are fresh per run: keys are scoped to their user, and a
    // reused (user, key) pair would rightly answer 422.
    let run: u32 = rand::random();
    let base = if a.direct {
        cluster.region(&a.region)?.node()?.to_owned()
    } else {
        router
    };
    let body = json!({"name": "bench burst", "kind": "shared", "code": code, "total_limit": a.seats,
        "per_user_limit": 1, "discount": {"type": "percent", "percent": 10},
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"});
    let resp = http
        .post(format!("{base}/v1/campaigns"))
        .bearer_auth(issuer.admin())
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().as_u16() == 201,
        "create campaign: {}",
        resp.text().await?
    );
    let tokens: Vec<String> = (0..a.attempts)
        .map(|i| issuer.user(&format!("bench-{run}-{i}")))
        .collect();
    println!(
        "burst: {} attempts, {} seats, concurrency {}, via {base}",
        a.attempts, a.seats, a.concurrency
    );
    let gate = Arc::new(Semaphore::new(a.concurrency));
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (http, gate, url, code) = (
                http.clone(),
                gate.clone(),
                format!("{base}/v1/coupons/redeem"),
                code.clone(),
            );
            tokio::spawn(async move {
                let _p = gate.acquire_owned().await.expect("semaphore");
                let t = Instant::now();
                let r = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", format!("bench-{run}-{i}"))
                    .json(&json!({"code": code, "order_id": format!("ord-{i}")}))
                    .send()
                    .await;
                let outcome = match r {
                    Ok(r) if r.status().as_u16() == 201 => "201".to_owned(),
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        format!("{s} {}", v["code"].as_str().unwrap_or("?"))
                    }
                    Err(e) => format!("transport error: {e}"),
                };
                Sample {
                    outcome,
                    latency: t.elapsed(),
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(a.attempts);
    for t in tasks {
        samples.push(t.await?);
    }
    let wall = started.elapsed();
    let rate = a.attempts as f64 / wall.as_secs_f64();
    report(&samples, wall, rate);
    if a.baseline {
        let url = cluster.region(&a.region)?.postgres()?;
        let (b_wall, b_rate, winners) = baseline(url, a.attempts, a.seats, a.concurrency).await?;
        println!("baseline (naive SELECT … FOR UPDATE counter, direct SQL, no HTTP):");
        println!(
            "  winners {winners}, wall {}, {:.0} attempts/s",
            ms(b_wall),
            b_rate
        );
        println!(
            "ratio: burst path / baseline = {:.1}x attempts/s",
            rate / b_rate
        );
    }
    Ok(())
}

fn report(samples: &[Sample], wall: Duration, rate: f64) {
    let mut by: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for s in samples {
        by.entry(s.outcome.as_str()).or_default().push(s.latency);
    }
    let winners = by.get("201").map_or(0, Vec::len);
    println!("winners: {winners}");
    for (k, v) in &by {
        if *k != "201" {
            println!("losers {k}: {}", v.len());
        }
    }
    let win_lat: Vec<Duration> = samples
        .iter()
        .filter(|s| s.outcome == "201")
        .map(|s| s.latency)
        .collect();
    let lose_lat: Vec<Duration> = samples
        .iter()
        .filter(|s| s.outcome != "201")
        .map(|s| s.latency)
        .collect();
    println!("winners latency: {}", summary(win_lat));
    println!("losers latency:  {}", summary(lose_lat));
    println!("wall {}, {:.0} attempts/s", ms(wall), rate);
}

/// The textbook hot-row counter: every attempt locks the same row.
async fn baseline(
    url: &str,
    n: usize,
    seats: i64,
    c: usize,
) -> anyhow::Result<(Duration, f64, usize)> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(url)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, remaining bigint NOT NULL)",
    )
    .execute(&pool)
    .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_winners (id bigserial PRIMARY KEY, user_id text NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query("TRUNCATE bench_winners").execute(&pool).await?;
    sqlx::query(
        "INSERT INTO bench_counter VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET remaining = $1",
    )
    .bind(seats)
    .execute(&pool)
    .await?;
    let gate = Arc::new(Semaphore::new(c));
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (pool, gate) = (pool.clone(), gate.clone());
            tokio::spawn(async move {
                let _p = gate.acquire_owned().await.expect("semaphore");
                let mut tx = pool.begin().await?;
                let left: i64 = sqlx::query_scalar(
                    "SELECT remaining FROM bench_counter WHERE id = 1 FOR UPDATE",
                )
                .fetch_one(&mut *tx)
                .await?;
                let won = left > 0;
                if won {
                    sqlx::query("UPDATE bench_counter SET remaining = remaining - 1 WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("INSERT INTO bench_winners (user_id) VALUES ($1)")
                        .bind(format!("u{i}"))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<bool, sqlx::Error>(won)
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await?? {
            winners += 1;
        }
    }
    let wall = started.elapsed();
    Ok((wall, n as f64 / wall.as_secs_f64(), winners))
}
