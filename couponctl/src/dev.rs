//! `couponctl dev …`: the local cluster (per region a real Postgres, Redis,
//! node and router; a three-member raft group) and dev tokens.

use crate::clusterfile::{ClusterFile, DIR, FILE};
use anyhow::{bail, Context};
use clap::Subcommand;
use coupon_testkit::cluster::{kept_ports, Bins, ClusterSpec, LocalCluster};
use coupon_testkit::issuer::{DEV_AUD, DEV_ISS};
use coupon_testkit::Issuer;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DevCmd {
    /// Start the local cluster and stay in the foreground until interrupted.
    Up {
        /// Regions to start, comma separated.
        #[arg(long, default_value = "us,eu,ap", value_delimiter = ',')]
        regions: Vec<String>,
        /// Claim engine of the nodes: `redis` (burst path) or `postgres`.
        #[arg(long, default_value = "redis")]
        claim_engine: String,
        /// Wipe `.coupon/data` first.
        #[arg(long)]
        fresh: bool,
        /// Delay cross-region links (one-way us–eu 32 ms, us–ap 33 ms,
        /// eu–ap 73 ms) through local TCP proxies.
        #[arg(long)]
        latency: bool,
        /// Node processes per region, on the region's one Postgres and
        /// Redis behind a local round-robin balancer (as a Service would).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
        nodes_per_region: u16,
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
        DevCmd::Up {
            regions,
            claim_engine,
            fresh,
            latency,
            nodes_per_region,
        } => {
            up(
                &regions,
                &claim_engine,
                fresh,
                latency,
                nodes_per_region.into(),
            )
            .await
        }
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

fn exe_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating couponctl")?;
    Ok(exe.parent().context("couponctl has no folder")?.to_owned())
}

async fn up(
    regions: &[String],
    claim_engine: &str,
    fresh: bool,
    latency: bool,
    nodes_per_region: usize,
) -> anyhow::Result<()> {
    let root = std::env::current_dir()?.join(DIR);
    let data = root.join("data");
    let layout = serde_json::json!({"regions": regions, "nodes_per_region": nodes_per_region, "latency": latency});
    if fresh {
        let _ = std::fs::remove_dir_all(&data);
    } else if let Some(why) = not_resumable(&data, &layout) {
        let aside = root.join(format!("data.old-{}", unix_secs()));
        std::fs::rename(&data, &aside).context("moving the old cluster data aside")?;
        println!(
            "the kept cluster cannot start again as asked ({why}); starting a new one, the old data is in {} (delete it when done)",
            aside.display()
        );
    }
    std::fs::create_dir_all(&root)?;
    let issuer = Issuer::load(&root.join("dev-issuer.pem"), DEV_ISS, DEV_AUD)
        .unwrap_or_else(|_| Issuer::generate(DEV_ISS, DEV_AUD));
    // Rewritten every time: a key left by an older version (PKCS#8 v2,
    // unreadable by OpenSSL) comes back as the same key in PKCS#8 v1.
    issuer.write(&root, "dev-issuer")?;
    let spec = ClusterSpec {
        root: root.clone(),
        regions: regions.to_vec(),
        bins: Bins::in_dir(&exe_dir()?)?,
        issuer_public_key: root.join("dev-issuer.pub.pem"),
        persistent: true,
        fsync: true,
        latency,
        faults: false,
        fast_raft: false,
        node_env: vec![("COUPON_CLAIM_ENGINE".into(), claim_engine.into())],
        router_env: vec![],
        nodes_per_region,
        standbys: true,
    };
    println!(
        "starting {} region(s) ({}) with {nodes_per_region} node(s) each and a 3-member raft group{}…",
        regions.len(),
        regions.join(", "),
        if latency {
            " with simulated inter-region latency"
        } else {
            ""
        }
    );
    let mut cluster = LocalCluster::start(spec)
        .await
        .context("starting the local cluster (logs under .coupon/data/<region>/)")?;
    let issuer_block = serde_json::json!({"alg": "EdDSA", "private_key_pem": format!("{DIR}/dev-issuer.pem"),
        "iss": issuer.iss, "aud": issuer.aud});
    let file: ClusterFile = serde_json::from_value(cluster.cluster_file(issuer_block.clone()))
        .context("cluster file shape")?;
    file.save(Path::new(FILE))?;
    std::fs::write(data.join(LAYOUT), layout.to_string())?;
    for (name, r) in &cluster.regions {
        let nodes: Vec<String> = r.nodes().map(|n| n.url()).collect();
        println!(
            "[{name}] router {}  node {} ({})",
            r.router.url(),
            r.node_url(),
            nodes.join(", ")
        );
    }
    println!("cluster up; wrote {FILE}. Ctrl-C stops every process started here.");
    let signal = wait_for_signal();
    tokio::pin!(signal);
    // A region taken over comes back as its new primary's standby by itself
    // (docs/failover.md §5): every few seconds, restart the lost region's
    // processes that hold no primary role and rebuild the copy of its
    // database that lost the primary role from a fresh base backup.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3));
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => {
                if let Err(e) = heal(&mut cluster).await {
                    eprintln!("rejoin: {e}");
                }
                let file: ClusterFile = serde_json::from_value(cluster.cluster_file(issuer_block.clone()))
                    .context("cluster file shape")?;
                file.save(Path::new(FILE))?;
            }
        }
    }
    println!("stopping…");
    let _ = std::fs::remove_file(FILE);
    cluster.stop();
    Ok(())
}

/// Revives and rejoins every region whose primary role moved.
async fn heal(cluster: &mut LocalCluster) -> anyhow::Result<()> {
    let map = cluster.raft_map().await?;
    let names: Vec<String> = cluster.regions.keys().cloned().collect();
    for r in names {
        let taken_over = map["failovers"].as_array().is_some_and(|fs| {
            fs.iter()
                .any(|f| f["region"] == r.as_str() && f["state"] == "completed")
        });
        if !taken_over {
            continue;
        }
        std::fs::write(cluster.root.join("data").join(ROLES_MOVED), &r)?;
        let revived = cluster.revive(&r).await?;
        if revived > 0 {
            println!("[{r}] {revived} process(es) of the lost region restarted");
        }
        if cluster.rejoin(&r).await? {
            println!("[{r}] the copy that lost the primary role was rebuilt as the new primary's synchronous standby");
        }
    }
    Ok(())
}

/// What the kept cluster was started as (regions, nodes per region).
const LAYOUT: &str = "layout.json";
/// Written once a region's primary role moved: the local cluster starts
/// every region's home database as its primary, which that layout breaks.
const ROLES_MOVED: &str = "primary-roles-moved";

/// Why the cluster kept in `data` cannot start again as `layout`: its map
/// names the old layout's processes, and a takeover's roles are not the
/// start-up ones.
fn not_resumable(data: &Path, layout: &serde_json::Value) -> Option<String> {
    if let Ok(r) = std::fs::read_to_string(data.join(ROLES_MOVED)) {
        return Some(format!("region {r} was taken over in an earlier run"));
    }
    if !data.exists() {
        return None;
    }
    let Some(kept) = std::fs::read_to_string(data.join(LAYOUT))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    else {
        return Some("it never came up, or an older couponctl kept it".into());
    };
    if kept != *layout {
        return Some(format!("it was started as {kept}"));
    }
    (!data.join(kept_ports::FILE).exists()).then(|| "its processes' ports were not kept".to_owned())
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
