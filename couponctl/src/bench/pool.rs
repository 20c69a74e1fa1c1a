//! `bench pool`: pool claims per second at 0 % and 90 % used, our claim
//! (`coupon_node::redeem::pg::pop_code`) against the textbook
//! `FOR UPDATE SKIP LOCKED` over `NOT used ORDER BY seq`, in the same run on
//! the same table. Reports the first and last second so a slowdown shows.

use crate::clusterfile::{ClusterFile, FILE};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Codes in the pool.
    #[arg(long, default_value_t = 200_000)]
    codes: i64,
    /// Seconds each variant runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value = "us")]
    region: String,
    #[arg(long, env = "COUPONCTL_CONFIG", default_value = FILE)]
    cluster_file: PathBuf,
}

const TEXTBOOK: &str = "SELECT code FROM codes WHERE campaign_id = $1 AND NOT used \
                        ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED";

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(&a.cluster_file)?;
    let admin = cluster.issuer()?.admin();
    let base = cluster.entry_url(&a.region)?;
    let (id, _, _) =
        super::codegen::pool_with_codes(&base, &admin, &a.region, a.codes, false).await?;
    let pg = cluster.region(&a.region)?.postgres()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(a.concurrency as u32 + 2)
        .connect(pg)
        .await?;
    println!(
        "pool claims: {} codes, {} s per variant, concurrency {}",
        a.codes, a.seconds, a.concurrency
    );
    println!(
        "{:>6} {:>10} {:>12} {:>12} {:>12}",
        "used", "variant", "claims/s", "first 1 s", "last 1 s"
    );
    for pct in [0i64, 90] {
        for variant in ["ours", "textbook"] {
            reset(&pool, &id, variant, pct).await?;
            let (total, first, last) =
                measure(&pool, &id, variant, a.seconds, a.concurrency).await?;
            println!(
                "{:>5}% {:>10} {:>12.0} {:>12} {:>12}",
                pct, variant, total, first, last
            );
        }
    }
    Ok(())
}

/// Put the pool in the state each claim method leaves behind at `pct` %
/// used: the textbook query takes codes in `seq` order (a used prefix); ours
/// starts at random points (used codes scattered).
async fn reset(pool: &PgPool, id: &str, variant: &str, pct: i64) -> anyhow::Result<()> {
    let sql = if variant == "textbook" {
        "UPDATE codes SET used = (seq <= (SELECT max(seq) FROM codes WHERE campaign_id = $1) * $2 / 100) \
         WHERE campaign_id = $1"
    } else {
        "UPDATE codes SET used = (random() * 100 < $2) WHERE campaign_id = $1"
    };
    sqlx::query(sql).bind(id).bind(pct).execute(pool).await?;
    sqlx::query("VACUUM ANALYZE codes").execute(pool).await?;
    Ok(())
}

async fn measure(
    pool: &PgPool,
    id: &str,
    variant: &str,
    secs: u64,
    c: usize,
) -> anyhow::Result<(f64, u64, u64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let per_second = Arc::new(Mutex::new(vec![0u64; secs as usize + 1]));
    let started = Instant::now();
    let workers: Vec<_> = (0..c)
        .map(|_| {
            let (pool, id, stop, per_second, variant) = (
                pool.clone(),
                id.to_owned(),
                stop.clone(),
                per_second.clone(),
                variant.to_owned(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = pool.begin().await?;
                    let code = if variant == "ours" {
                        coupon_node::redeem::pg::pop_code(&mut tx, &id)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?
                    } else {
                        sqlx::query_scalar::<_, String>(TEXTBOOK)
                            .bind(&id)
                            .fetch_optional(&mut *tx)
                            .await?
                    };
                    let Some(code) = code else { break };
                    sqlx::query("UPDATE codes SET used = true WHERE code = $1")
                        .bind(&code)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    let s = started.elapsed().as_secs() as usize;
                    if let Some(slot) = per_second.lock().expect("lock").get_mut(s) {
                        *slot += 1;
                    }
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await??;
    }
    let counts = per_second.lock().expect("lock").clone();
    let total: u64 = counts[..secs as usize].iter().sum();
    Ok((
        total as f64 / secs as f64,
        counts[0],
        counts[secs as usize - 1],
    ))
}
