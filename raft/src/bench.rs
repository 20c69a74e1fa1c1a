//! `coupon-raft bench`: starts a 3-member group on loopback (child processes of this binary),
//! then measures map-write latency (admin write → acknowledged) and watch-notification delay
//! (write sent → a `MapClient` watching a follower sees a map that includes it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use coupon_raft::client::{AdminClient, MapClient, MapClientOptions};
use coupon_raft::model::{Region, RegionId};

const SECRET: &str = "bench-cluster-secret-0123456789";
const ADMIN: &str = "bench-admin-token-0123456789";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of map writes (alternating begin/abort of a move on slot 0).
    #[arg(long, default_value_t = 500)]
    writes: u32,
    /// Send writes to a follower (forwarded to the leader) instead of the leader.
    #[arg(long)]
    via_follower: bool,
    /// Heartbeat interval of the members, ms (production default).
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
}

/// The bench's members; killed on drop.
struct Group {
    children: Vec<Child>,
    urls: Vec<String>,
    dir: PathBuf,
}

impl Drop for Group {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_group(args: &BenchArgs) -> anyhow::Result<Group> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let dir = std::env::temp_dir().join(format!("coupon-raft-bench-{}", std::process::id()));
    let mut g = Group {
        children: vec![],
        urls: vec![],
        dir,
    };
    for id in 1..=3u64 {
        let port = free_port()?;
        let child = Command::new(&exe)
            .args(["serve", "--node-id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(g.dir.join(format!("m{id}")))
            .args(["--heartbeat-ms", &args.heartbeat_ms.to_string()])
            .env("COUPON_RAFT_SECRET", SECRET)
            .env("COUPON_RAFT_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning a member")?;
        g.children.push(child);
        g.urls.push(format!("http://127.0.0.1:{port}"));
    }
    Ok(g)
}

async fn wait_leader(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/v1/cluster/members")).send().await {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            if let Some(l) = v["leader"].as_u64() {
                return Ok(l);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no leader within 20 s")
}

fn region(id: &str) -> anyhow::Result<Region> {
    Ok(Region {
        id: RegionId::parse(id).map_err(anyhow::Error::msg)?,
        router: format!("http://{id}.router.bench"),
        node: format!("http://{id}.node.bench"),
        key_ids: vec![],
        standby: None,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn report(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        xs.len(),
        ms(percentile(&xs, 0.50)),
        ms(percentile(&xs, 0.99)),
        ms(*xs.last().unwrap_or(&Duration::ZERO)),
    );
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.writes == 0 {
        bail!("--writes must be at least 1");
    }
    let group = start_group(&args)?;
    let http = reqwest::Client::new();
    let admin0 = AdminClient::new(&group.urls[0], ADMIN)?;
    let live = Instant::now() + Duration::from_secs(10);
    while http
        .get(format!("{}/livez", group.urls[2]))
        .send()
        .await
        .is_err()
    {
        if Instant::now() > live {
            bail!("members did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let members: Vec<(u64, String)> = group
        .urls
        .iter()
        .enumerate()
        .map(|(i, u)| (i as u64 + 1, u.clone()))
        .collect();
    admin0.initialize_raft(&members).await?;
    let leader = wait_leader(&http, &group.urls[0]).await?;
    let leader_url = &group.urls[leader as usize - 1];
    let follower_url = &group.urls[leader as usize % 3];
    let target = if args.via_follower {
        follower_url
    } else {
        leader_url
    };
    let admin = AdminClient::new(target, ADMIN)?;
    let regions = [region("us")?, region("eu")?, region("ap")?];
    admin.init("bench-init", &regions, Some(1024)).await?;

    let opts = MapClientOptions {
        poll_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let watcher = MapClient::connect(vec![follower_url.clone()], opts).await?;
    let seen: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let mut rx = watcher.subscribe();
    let seen_w = seen.clone();
    let watch_task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let v = rx.borrow_and_update().version;
            seen_w
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(v, Instant::now());
        }
    });

    println!(
        "coupon-raft bench: 3 members on loopback, {} writes via {}, heartbeat {} ms",
        args.writes,
        if args.via_follower {
            "a follower"
        } else {
            "the leader"
        },
        args.heartbeat_ms
    );
    let mut write_lat = Vec::new();
    let mut sent_at: BTreeMap<u64, Instant> = BTreeMap::new();
    for i in 0..args.writes {
        let t = Instant::now();
        let out = if i % 2 == 0 {
            admin.begin_move(&format!("bench-{i}"), 0, "eu").await?
        } else {
            admin.abort_move(&format!("bench-{i}"), 0).await?
        };
        write_lat.push(t.elapsed());
        sent_at.insert(out.version, t);
    }
    let last = *sent_at.keys().last().unwrap_or(&0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while watcher.current().version < last && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watch_task.abort();
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // A watcher may skip versions; version v counts as seen when any version >= v was seen.
    let mut watch_delay = Vec::new();
    for (v, sent) in &sent_at {
        if let Some((_, at)) = seen.range(v..).next() {
            watch_delay.push(at.saturating_duration_since(*sent));
        }
    }
    report("map write latency (send -> ack)", write_lat);
    report(
        "watch notification delay (send -> follower watcher sees it)",
        watch_delay,
    );
    Ok(())
}
