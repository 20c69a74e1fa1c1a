//! `bench burst`: N redeem attempts on an S-seat campaign at concurrency C,
//! through the cluster's HTTP API; `--baseline` runs the same workload
//! against a naive `SELECT … FOR UPDATE` counter in the same Postgres.

use super::fire::Sample;
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
    /// Before the clock starts, send one validate with each attempt's token,
    /// as a shopper validates at checkout: the timed redeems then find their
    /// tokens already verified (the node's token cache), instead of paying
    /// an Ed25519 verification each. Keep attempts under the cache's
    /// capacity (100,000 by default). The validates are timed on their
    /// own clock and reported (validates/s, CPU per validate).
    #[arg(long)]
    warm_tokens: bool,
    /// Do not fire: create the campaign and write one request per line
    /// (`authorization<TAB>idempotency-key<TAB>body`) to this file for an
    /// external generator (`deploy/bench/wrk-burst.lua`), then exit.
    #[arg(long)]
    write_requests: Option<PathBuf>,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
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
    let status = resp.status().as_u16();
    let created: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status == 201, "create campaign: {created}");
    // Everything a request needs is built before the clock starts: the
    // generator's own CPU must go into sending, not into signing tokens or
    // serializing bodies (it shares the two cores with the servers).
    let url = format!("{base}/v1/coupons/redeem");
    let requests: Arc<Vec<(String, String, Vec<u8>)>> = Arc::new(
        (0..a.attempts)
            .map(|i| {
                let token = format!("Bearer {}", issuer.user(&format!("bench-{run}-{i}")));
                let body = json!({"code": code, "order_id": format!("ord-{i}")});
                (
                    token,
                    format!("bench-{run}-{i}"),
                    body.to_string().into_bytes(),
                )
            })
            .collect(),
    );
    let campaign_id = created["campaign_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(file) = &a.write_requests {
        let mut text = String::new();
        for (token, key, body) in requests.iter() {
            text.push_str(&format!(
                "{token}\t{key}\t{}\n",
                String::from_utf8_lossy(body)
            ));
        }
        std::fs::write(file, text)?;
        println!(
            "wrote {} requests for campaign {campaign_id} ({} seats) to {}; e.g.\n  \
             REQUESTS={} wrk -t2 -c200 -d10s -s deploy/bench/wrk-burst.lua {url}",
            a.attempts,
            a.seats,
            file.display(),
            file.display()
        );
        return Ok(());
    }
    println!(
        "burst: {} attempts, {} seats, concurrency {}, via {base}",
        a.attempts, a.seats, a.concurrency
    );
    // One keep-alive connection per concurrency slot, opened before the
    // clock starts.
    let target = Arc::new(super::fire::Target::parse(&url)?);
    let mut senders = Vec::with_capacity(a.concurrency);
    for _ in 0..a.concurrency {
        senders.push(super::fire::connect(&target).await?);
    }
    let prepared: Arc<Vec<super::fire::Prepared>> = Arc::new(
        requests
            .iter()
            .map(|(token, key, body)| {
                Ok(super::fire::Prepared {
                    authorization: token.parse()?,
                    key: key.parse()?,
                    body: bytes::Bytes::from(body.clone()),
                })
            })
            .collect::<anyhow::Result<_>>()?,
    );
    if a.warm_tokens {
        let procs = server_procs(&cluster, &a.region);
        warm_tokens(&base, &code, a.concurrency, &prepared, procs).await?;
    }
    let meter = super::cpu::Meter::start(server_procs(&cluster, &a.region));
    let started = Instant::now();
    let samples = super::fire::fire(target, senders, prepared).await?;
    let wall = started.elapsed();
    let spent = meter.spent();
    let rate = a.attempts as f64 / wall.as_secs_f64();
    report(&samples, wall, rate);
    println!("CPU per attempt (utime+stime from /proc, over the timed run):");
    for (who, cpu) in &spent {
        println!(
            "  {who:<16} {:>7.1} µs/attempt  ({:.0} % of one core)",
            cpu.as_secs_f64() * 1e6 / a.attempts as f64,
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
        );
    }
    let owner_db = cluster.region(&a.region)?.postgres()?.to_owned();
    let db = sqlx::PgPool::connect(&owner_db).await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM redemptions WHERE campaign_id = $1 AND released_at IS NULL",
    )
    .bind(&campaign_id)
    .fetch_one(&db)
    .await?;
    db.close().await;
    let expected = a.seats.min(a.attempts as i64);
    println!(
        "exactness: {active} active redemptions in Postgres, expected {expected}: {}",
        if active == expected { "exact" } else { "WRONG" }
    );
    anyhow::ensure!(
        active == expected,
        "the burst did not end with exactly the cap of winners"
    );
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
    println!(
        "winners: {winners} ({:.0} winners/s)",
        winners as f64 / wall.as_secs_f64()
    );
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

/// The region's server processes from the cluster file's `pids`: node(s),
/// router, Redis, and Postgres with its backends.
fn server_procs(cluster: &ClusterFile, region: &str) -> Vec<(String, u32, bool)> {
    let Ok(r) = cluster.region(region) else {
        return Vec::new();
    };
    r.pids
        .iter()
        .filter(|(k, _)| {
            k.starts_with("node") || ["router", "redis", "postgres"].contains(&k.as_str())
        })
        .map(|(k, pid)| (format!("{region} {k}"), *pid, k == "postgres"))
        .collect()
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

/// One validate per attempt's token before the burst's clock (see
/// `--warm-tokens`). Measured on its own clock, as a validate benchmark:
/// validates per second and each process' CPU per validate.
async fn warm_tokens(
    base: &str,
    code: &str,
    concurrency: usize,
    prepared: &[super::fire::Prepared],
    procs: Vec<(String, u32, bool)>,
) -> anyhow::Result<()> {
    let target = Arc::new(super::fire::Target::parse(&format!(
        "{base}/v1/coupons/validate"
    ))?);
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(super::fire::connect(&target).await?);
    }
    let body = bytes::Bytes::from(json!({ "code": code }).to_string());
    let validates: Vec<super::fire::Prepared> = prepared
        .iter()
        .map(|p| super::fire::Prepared {
            authorization: p.authorization.clone(),
            key: p.key.clone(),
            body: body.clone(),
        })
        .collect();
    let meter = super::cpu::Meter::start(procs);
    let started = Instant::now();
    let answers = super::fire::fire(target, senders, Arc::new(validates)).await?;
    let wall = started.elapsed();
    let spent = meter.spent();
    let n = answers.len().max(1) as f64;
    println!(
        "validates (one per token): {} in {}, {:.0} validates/s; CPU per validate:",
        answers.len(),
        ms(wall),
        n / wall.as_secs_f64()
    );
    for (who, cpu) in &spent {
        println!(
            "  {who:<16} {:>7.1} µs/validate",
            cpu.as_secs_f64() * 1e6 / n
        );
    }
    let ok = answers
        .iter()
        .filter(|s| s.outcome.starts_with("200"))
        .count();
    println!(
        "tokens verified by one validate each before the clock: {ok} of {} answered 200",
        answers.len()
    );
    anyhow::ensure!(ok == answers.len(), "some validates failed");
    Ok(())
}
