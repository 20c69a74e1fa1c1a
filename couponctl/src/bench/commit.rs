//! `couponctl bench commit`: what synchronous replication costs a commit.
//! On one region's primary, N sequential one-row inserts into a scratch
//! table of the `postgres` database (never the service's own), timed
//! strict, then degraded (asynchronous), in the same run; the table is
//! dropped and the region left strict. (A transaction that writes no WAL
//! but its commit record — say one that only takes a transaction id — does
//! not wait for the standby at all: Postgres commits it asynchronously.) Run it on `dev up` and on
//! `dev up --latency` (the standby's link then carries the simulated
//! inter-region delay).

use crate::clusterfile::{ClusterFile, FILE};
use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The region whose primary is measured.
    #[arg(long, default_value = "us")]
    region: String,
    /// Transactions per mode.
    #[arg(long, default_value_t = 300)]
    n: usize,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let url = cluster
        .region(&a.region)?
        .postgres
        .clone()
        .context("the region's Postgres")?;
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts.database("postgres"))
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS coupon_bench_commit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .execute(&db)
        .await?;
    let names: String = sqlx::query_scalar("SELECT current_setting('synchronous_standby_names')")
        .fetch_one(&db)
        .await?;
    anyhow::ensure!(
        !names.is_empty(),
        "region {} is degraded already: nothing to compare",
        a.region
    );
    let mut rows = Vec::new();
    for (mode, setting) in [("sync (strict)", names.as_str()), ("async (degraded)", "")] {
        set(&db, setting).await?;
        let mut ms = Vec::with_capacity(a.n);
        for _ in 0..a.n {
            let t = Instant::now();
            sqlx::query("INSERT INTO coupon_bench_commit DEFAULT VALUES")
                .execute(&db)
                .await?;
            ms.push(t.elapsed());
        }
        ms.sort();
        let p = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        let total: Duration = ms.iter().sum();
        rows.push((mode, p(0.5), p(0.99), a.n as f64 / total.as_secs_f64()));
    }
    set(&db, &names).await?;
    sqlx::query("DROP TABLE coupon_bench_commit")
        .execute(&db)
        .await?;
    println!(
        "commit latency on {}'s primary ({} sequential write transactions per mode):",
        a.region, a.n
    );
    println!(
        "{:<18} {:>9} {:>9} {:>10}",
        "mode", "p50 ms", "p99 ms", "commits/s"
    );
    for (mode, p50, p99, rate) in &rows {
        println!(
            "{mode:<18} {:>9.2} {:>9.2} {rate:>10.0}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    let cost = rows[0].1.saturating_sub(rows[1].1);
    println!(
        "synchronous replication costs {:.2} ms per commit at p50 (left strict).",
        cost.as_secs_f64() * 1e3
    );
    Ok(())
}

async fn set(db: &sqlx::PgPool, names: &str) -> anyhow::Result<()> {
    let quoted = names.replace('\'', "''");
    sqlx::query(&format!(
        "ALTER SYSTEM SET synchronous_standby_names = '{quoted}'"
    ))
    .execute(db)
    .await?;
    sqlx::query("SELECT pg_reload_conf()").execute(db).await?;
    // The reload reaches the backends at their next command.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}
