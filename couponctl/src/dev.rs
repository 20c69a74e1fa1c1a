//! `couponctl dev …`: the local cluster (real Postgres, Redis and node
//! processes per region) and dev tokens.

use crate::clusterfile::{ClusterFile, IssuerEntry, RegionEntry, DIR, FILE};
use anyhow::{bail, Context};
use clap::Subcommand;
use coupon_testkit::issuer::{DEV_AUD, DEV_ISS};
use coupon_testkit::postgres::PgOptions;
use coupon_testkit::{Issuer, PgServer, RedisServer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum DevCmd {
    /// Start the local cluster and stay in the foreground until interrupted.
    Up {
        /// Regions to start, comma separated.
        #[arg(long, default_value = "us", value_delimiter = ',')]
        regions: Vec<String>,
        /// Claim engine of the nodes: `redis` (burst path) or `postgres`.
        #[arg(long, default_value = "redis")]
        claim_engine: String,
        /// Wipe `.coupon/data` first.
        #[arg(long)]
        fresh: bool,
    },
    /// Print tokens signed by the dev issuer, one per line.
    Token {
        /// A user token for each --user, in order.
        #[arg(long)]
        user: Vec<String>,
        /// An admin token.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

pub async fn run(cmd: DevCmd) -> anyhow::Result<()> {
    match cmd {
        DevCmd::Up { regions, claim_engine, fresh } => up(&regions, &claim_engine, fresh).await,
        DevCmd::Token { user, admin, ttl } => token(&user, admin, ttl),
    }
}

fn token(users: &[String], admin: bool, ttl: u64) -> anyhow::Result<()> {
    if users.is_empty() && !admin {
        bail!("say --user <id> (repeatable) or --admin");
    }
    let issuer = ClusterFile::load(Path::new(FILE))?.issuer()?;
    for u in users {
        println!("{}", issuer.token(u, "user", ttl));
    }
    if admin {
        println!("{}", issuer.token("admin", "admin", ttl));
    }
    Ok(())
}

struct Region {
    _pg: PgServer,
    _redis: RedisServer,
    node: Child,
}

fn sibling(bin: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating couponctl")?;
    let path = exe.with_file_name(bin);
    if !path.exists() {
        bail!("{} not found next to couponctl; build the workspace first", path.display());
    }
    Ok(path)
}

async fn up(regions: &[String], claim_engine: &str, fresh: bool) -> anyhow::Result<()> {
    let root = std::env::current_dir()?.join(DIR);
    if fresh {
        let _ = std::fs::remove_dir_all(root.join("data"));
    }
    std::fs::create_dir_all(&root)?;
    let issuer = match Issuer::load(&root.join("dev-issuer.pem"), DEV_ISS, DEV_AUD) {
        Ok(i) => i,
        Err(_) => {
            let i = Issuer::generate(DEV_ISS, DEV_AUD);
            i.write(&root, "dev-issuer")?;
            i
        }
    };
    let node_bin = sibling("coupon-node")?;
    let mut started = Vec::new();
    let mut entries = BTreeMap::new();
    for region in regions {
        let data = root.join("data").join(region);
        println!("[{region}] starting postgres and redis…");
        let pg = PgServer::start_in(&data.join("pg"), PgOptions { fsync: true, max_connections: 300 })?;
        let exists = pg.psql("postgres", "SELECT 1 FROM pg_database WHERE datname = 'coupon'")?;
        if exists.is_empty() {
            pg.create_database("coupon")?;
        }
        let redis = RedisServer::start_in(&data.join("redis"))?;
        let port = coupon_testkit::ports::free_port();
        let log = std::fs::File::create(data.join("node.log"))?;
        let mut cmd = Command::new(&node_bin);
        cmd.env("COUPON_REGION", region)
            .env("COUPON_LISTEN", format!("127.0.0.1:{port}"))
            .env("COUPON_DATABASE_URL", pg.url("coupon"))
            .env("COUPON_REDIS_URL", redis.url())
            .env("COUPON_ISSUER_PUBLIC_KEY", root.join("dev-issuer.pub.pem"))
            .env("COUPON_CLAIM_ENGINE", claim_engine)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let node = coupon_testkit::procs::spawn_bound(cmd).context("starting coupon-node")?;
        let url = format!("http://127.0.0.1:{port}");
        let mut pids = BTreeMap::new();
        pids.insert("node".to_owned(), node.id());
        pids.insert("postgres".to_owned(), pg.pid().unwrap_or(0));
        pids.insert("redis".to_owned(), redis.pid().unwrap_or(0));
        entries.insert(
            region.clone(),
            RegionEntry { router: None, node: url.clone(), postgres: pg.url("coupon"), redis: redis.url(), pids },
        );
        started.push((region.clone(), url, Region { _pg: pg, _redis: redis, node }));
    }
    for (region, url, _) in &started {
        wait_ready(url).await.with_context(|| format!("node of {region} (see .coupon/data/{region}/node.log)"))?;
        println!("[{region}] node ready at {url}");
    }
    let file = ClusterFile {
        regions: entries,
        raft: Vec::new(),
        issuer: IssuerEntry {
            alg: "EdDSA".into(),
            private_key_pem: format!("{DIR}/dev-issuer.pem"),
            iss: issuer.iss.clone(),
            aud: issuer.aud.clone(),
        },
    };
    file.save(Path::new(FILE))?;
    println!("cluster up; wrote {FILE}. Ctrl-C stops every process started here.");
    wait_for_signal().await;
    println!("stopping…");
    let _ = std::fs::remove_file(FILE);
    for (_, _, mut r) in started {
        coupon_testkit::procs::signal(r.node.id(), libc::SIGTERM);
        let _ = r.node.wait();
    }
    Ok(())
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("not ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
