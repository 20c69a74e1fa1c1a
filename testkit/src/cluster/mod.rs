//! A whole multi-region cluster on loopback, as `couponctl dev up` and the
//! chaos tests run it: per region a Postgres, a Redis, a node and a router;
//! a three-member raft group; every link direct, through a fault proxy
//! (`faults`), or delayed when it crosses regions (`latency`).
//!
//! Link names (for [`FaultNet`]): `router:<r>->node:<r2>`, `node:<r>->pg:<r>`,
//! `node:<r>->redis:<r>`, `router:<r>->raft:<i>`, `node:<r>->raft:<i>`,
//! `raft:<i>->raft:<j>`. Nodes never call each other (no node→node link).
//!
//! With `nodes_per_region` > 1 a region runs several node processes on its
//! one Postgres and Redis behind a round-robin balancer (`balancer.rs`, the
//! local stand-in for a Kubernetes Service); the map names the balancer.

pub mod kept_ports;
pub mod keys;
pub mod links;
pub mod proc;
pub mod raft;
pub mod roles;

use crate::netproxy::FaultNet;
use crate::postgres::PgOptions;
use crate::{KitError, PgServer, RedisServer};
use links::Links;
use proc::Proc;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The binaries a cluster runs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub node: PathBuf,
    pub router: PathBuf,
    pub raft: PathBuf,
}

impl Bins {
    /// `coupon-node`, `coupon-router`, `coupon-raft` in `dir`.
    pub fn in_dir(dir: &Path) -> Result<Bins, KitError> {
        let b = Bins {
            node: dir.join("coupon-node"),
            router: dir.join("coupon-router"),
            raft: dir.join("coupon-raft"),
        };
        for p in [&b.node, &b.router, &b.raft] {
            if !p.exists() {
                return Err(KitError::Failed(format!(
                    "{} not found; build first: cargo build --workspace --bins",
                    p.display()
                )));
            }
        }
        Ok(b)
    }
}

pub struct ClusterSpec {
    /// Keys, secrets, logs and (when `persistent`) store data live here.
    pub root: PathBuf,
    pub regions: Vec<String>,
    pub bins: Bins,
    pub issuer_public_key: PathBuf,
    /// Reuse `root/data/<region>/…` across runs (dev); else throwaway stores.
    pub persistent: bool,
    pub fsync: bool,
    pub latency: bool,
    pub faults: bool,
    /// Raft test timing instead of cross-region timing.
    pub fast_raft: bool,
    /// Extra environment of every node / router.
    pub node_env: Vec<(String, String)>,
    pub router_env: Vec<(String, String)>,
    /// Node processes per region (0 counts as 1); more than one sit behind
    /// a round-robin balancer.
    pub nodes_per_region: usize,
    /// Give every region a synchronous standby (database, Redis, idle node)
    /// hosted in the next region of the list (us→eu, eu→ap, ap→us).
    pub standbys: bool,
}

/// A region's standby, hosted in another region.
pub struct StandbyProcs {
    /// The region that hosts it.
    pub host: String,
    pub pg: PgServer,
    pub redis: RedisServer,
    pub node: Proc,
    /// The URL the map names the standby node by.
    pub map_url: String,
}

pub struct RegionProcs {
    pub name: String,
    pub pg: PgServer,
    pub redis: RedisServer,
    /// The region's first node.
    pub node: Proc,
    /// Further nodes on the same stores (`nodes_per_region` > 1).
    pub more_nodes: Vec<Proc>,
    /// The balancer in front of every node, when there are several.
    pub node_service: Option<std::net::SocketAddr>,
    pub router: Proc,
    /// This region's standby (hosted elsewhere), when the cluster has them.
    pub standby: Option<StandbyProcs>,
}

impl RegionProcs {
    /// Direct (never proxied) Postgres URL of the region's `coupon` database.
    pub fn db_url(&self) -> String {
        self.pg.url("coupon")
    }

    /// Where the region's nodes are reached: the balancer, else the one node.
    pub fn node_url(&self) -> String {
        match self.node_service {
            Some(a) => format!("http://{a}"),
            None => self.node.url(),
        }
    }

    /// Every node process of the region, the first one first.
    pub fn nodes(&self) -> impl Iterator<Item = &Proc> {
        std::iter::once(&self.node).chain(self.more_nodes.iter())
    }
}

pub struct LocalCluster {
    pub net: std::sync::Arc<FaultNet>,
    pub regions: BTreeMap<String, RegionProcs>,
    pub raft: Vec<Proc>,
    pub admin_token: String,
    pub keys_dir: PathBuf,
    pub root: PathBuf,
    /// How links are made (for the links a rejoin adds).
    faults: bool,
    latency: bool,
    /// Rejoins so far (names their new links).
    rejoins: u64,
}

/// How long every process gets to become ready.
const READY: Duration = Duration::from_secs(90);

impl LocalCluster {
    pub async fn start(spec: ClusterSpec) -> Result<LocalCluster, KitError> {
        std::fs::create_dir_all(&spec.root).map_err(crate::io("creating cluster root"))?;
        let links = Links {
            net: FaultNet::new(),
            faults: spec.faults,
            latency: spec.latency,
        };
        let keys_dir = keys::service_keys(&spec.root, &spec.regions)?;
        let secret = keys::secret(&spec.root, "raft-secret")?;
        let admin = keys::secret(&spec.root, "raft-admin-token")?;
        let lease_token = keys::secret(&spec.root, "raft-lease-token")?;
        let data = spec.root.join("data");
        std::fs::create_dir_all(&data).map_err(crate::io("creating data dir"))?;
        let mut kept = kept_ports::KeptPorts::load(data.join(kept_ports::FILE), spec.persistent);
        let raft = raft::start(
            &raft::RaftOpts {
                root: &data,
                bin: &spec.bins.raft,
                regions: &spec.regions,
                secret: &secret,
                admin: &admin,
                lease_token: &lease_token,
                fast: spec.fast_raft,
                ports: (1..=raft::MEMBERS)
                    .map(|i| kept.port(&format!("raft/{i}")))
                    .collect(),
            },
            &links,
        )
        .await?;
        // Raft keeps its members' addresses even if the rest fails to start.
        kept.save();
        // Stores, in parallel (initdb copies and boots are slow).
        let mut stores = Vec::new();
        for r in &spec.regions {
            let (dir, persistent, fsync) = (data.join(r), spec.persistent, spec.fsync);
            stores.push(tokio::task::spawn_blocking(move || {
                start_stores(&dir, persistent, fsync)
            }));
        }
        let mut started = Vec::new();
        for (r, s) in spec.regions.iter().zip(stores) {
            let (pg, redis) = s.await.map_err(|e| KitError::Failed(e.to_string()))??;
            let node_ports: Vec<u16> = (0..spec.nodes_per_region.max(1))
                .map(|i| kept.port(&format!("{r}/node/{i}")))
                .collect();
            // Several nodes: the map (and every router) names the balancer.
            let service = if node_ports.len() > 1 {
                let ups = node_ports
                    .iter()
                    .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
                    .collect();
                Some(
                    crate::balancer::start_on(kept.port(&format!("{r}/balancer")), ups)
                        .await
                        .map_err(crate::io("starting the node balancer"))?,
                )
            } else {
                None
            };
            let service_port = service.map_or(node_ports[0], |a| a.port());
            started.push((
                r.clone(),
                pg,
                redis,
                (node_ports, service, service_port),
                kept.port(&format!("{r}/router")),
            ));
        }
        // Standby databases: a base backup of each primary, streaming
        // through the (proxied, delayed) link from the host region.
        let mut standby_dbs = BTreeMap::new();
        if spec.standbys {
            let mut jobs = Vec::new();
            for (r, pg, _, _, _) in &started {
                let Some(host) = standby_host(&spec.regions, r) else {
                    continue;
                };
                let addr = links
                    .link(&format!("sbpg:{host}->pg:{r}"), &host, r, pg.port)
                    .await;
                let dir = if spec.persistent {
                    data.join(&host).join(format!("standby-{r}"))
                } else {
                    crate::scratch_root().join(format!("sb-{}-{r}", crate::unique_tag()))
                };
                let (fsync, keep, r2) = (spec.fsync, spec.persistent, r.clone());
                jobs.push((
                    r.clone(),
                    host,
                    tokio::task::spawn_blocking(move || {
                        let pg = PgServer::start_standby(
                            addr.port(),
                            &dir.join("pg"),
                            &standby_name(&r2),
                            PgOptions {
                                fsync,
                                max_connections: 300,
                            },
                            keep,
                        )?;
                        let redis = RedisServer::start_temp()?;
                        Ok::<_, KitError>((pg, redis))
                    }),
                ));
            }
            for (r, host, job) in jobs {
                let (pg, redis) = job.await.map_err(|e| KitError::Failed(e.to_string()))??;
                let port = kept.port(&format!("{r}/standby-node"));
                standby_dbs.insert(r, (host, pg, redis, port));
            }
            for (r, pg, _, _, _) in &started {
                if standby_dbs.contains_key(r) {
                    pg.require_sync_standby(&standby_name(r))?;
                }
            }
        }
        let map_regions: Vec<Value> = started
            .iter()
            .map(|(r, _, _, (_, _, node), router)| {
                let mut v = json!({"id": r, "router": format!("http://127.0.0.1:{router}"),
                "node": format!("http://127.0.0.1:{node}"), "key_ids": [keys::kid(r)]});
                if let Some((host, _, _, port)) = standby_dbs.get(r) {
                    v["standby"] =
                        json!({"host": host, "node": format!("http://127.0.0.1:{port}")});
                }
                v
            })
            .collect();
        kept.save();
        raft::init_map(&raft[0].url(), &admin, &map_regions).await?;
        let mut regions = BTreeMap::new();
        for (r, pg, redis, (node_ports, node_service, service_port), router_port) in started {
            let raft_urls = |who: &str| {
                let links = &links;
                let raft = &raft;
                let spec = &spec;
                let r = r.clone();
                let who = who.to_owned();
                async move {
                    let mut urls = Vec::new();
                    for (i, m) in raft.iter().enumerate() {
                        let mr = raft::member_region(&spec.regions, i as u64 + 1);
                        let a = links
                            .link(&format!("{who}:{r}->raft:{}", i + 1), &r, &mr, m.port)
                            .await;
                        urls.push(format!("http://{a}"));
                    }
                    urls.join(",")
                }
            };
            let pg_addr = links
                .link(&format!("node:{r}->pg:{r}"), &r, &r, pg.port)
                .await;
            let redis_addr = links
                .link(&format!("node:{r}->redis:{r}"), &r, &r, redis.port)
                .await;
            let mut env = vec![
                ("COUPON_REGION".to_owned(), r.clone()),
                (
                    "COUPON_DATABASE_URL".to_owned(),
                    format!("postgres://postgres@{pg_addr}/coupon"),
                ),
                (
                    "COUPON_REDIS_URL".to_owned(),
                    format!("redis://{redis_addr}/"),
                ),
                (
                    "COUPON_ISSUER_PUBLIC_KEY".to_owned(),
                    spec.issuer_public_key.display().to_string(),
                ),
                ("COUPON_RAFT_URLS".to_owned(), raft_urls("node").await),
                (
                    "COUPON_SERVICE_KEYS_DIR".to_owned(),
                    keys_dir.display().to_string(),
                ),
                ("COUPON_RAFT_LEASE_TOKEN".to_owned(), lease_token.clone()),
                (
                    "COUPON_ADVERTISE_URL".to_owned(),
                    format!("http://127.0.0.1:{service_port}"),
                ),
            ];
            env.extend(spec.node_env.iter().cloned());
            // The standby node: same region, its own database and Redis,
            // every link from the host region.
            let standby = match standby_dbs.remove(&r) {
                None => None,
                Some((host, sb_pg, sb_redis, sb_port)) => {
                    let pg_addr = links
                        .link(
                            &format!("sbnode:{host}->sbpg:{host}"),
                            &host,
                            &host,
                            sb_pg.port,
                        )
                        .await;
                    let mut urls = Vec::new();
                    for (i, m) in raft.iter().enumerate() {
                        let mr = raft::member_region(&spec.regions, i as u64 + 1);
                        let a = links
                            .link(
                                &format!("sbnode:{host}->raft:{}", i + 1),
                                &host,
                                &mr,
                                m.port,
                            )
                            .await;
                        urls.push(format!("http://{a}"));
                    }
                    let map_url = format!("http://127.0.0.1:{sb_port}");
                    let mut env = env.clone();
                    for (k, v) in [
                        (
                            "COUPON_DATABASE_URL",
                            format!("postgres://postgres@{pg_addr}/coupon"),
                        ),
                        (
                            "COUPON_REDIS_URL",
                            format!("{}/", sb_redis.url().trim_end_matches('/')),
                        ),
                        ("COUPON_RAFT_URLS", urls.join(",")),
                        ("COUPON_ADVERTISE_URL", map_url.clone()),
                        ("COUPON_LISTEN", format!("127.0.0.1:{sb_port}")),
                    ] {
                        env.retain(|(name, _)| name != k);
                        env.push((k.to_owned(), v));
                    }
                    let dir = data.join(&host);
                    std::fs::create_dir_all(&dir).map_err(crate::io("creating host dir"))?;
                    let mut node = Proc::new(
                        &format!("standby-node-{r}"),
                        sb_port,
                        spec.bins.node.clone(),
                        vec![],
                        env,
                        dir.join(format!("standby-node-{r}.log")),
                    );
                    node.spawn()
                        .map_err(crate::io("spawning the standby node"))?;
                    Some(StandbyProcs {
                        host,
                        pg: sb_pg,
                        redis: sb_redis,
                        node,
                        map_url,
                    })
                }
            };
            let dir = data.join(&r);
            std::fs::create_dir_all(&dir).map_err(crate::io("creating region dir"))?;
            let mut nodes = Vec::new();
            for (i, port) in node_ports.iter().enumerate() {
                // The first node keeps the single-node names (logs, pids).
                let suffix = if i == 0 {
                    String::new()
                } else {
                    format!("-{}", i + 1)
                };
                let mut env = env.clone();
                env.push(("COUPON_LISTEN".to_owned(), format!("127.0.0.1:{port}")));
                let mut node = Proc::new(
                    &format!("node-{r}{suffix}"),
                    *port,
                    spec.bins.node.clone(),
                    vec![],
                    env,
                    dir.join(format!("node{suffix}.log")),
                );
                node.spawn().map_err(crate::io("spawning coupon-node"))?;
                nodes.push(node);
            }
            // Rewrites of the addresses the map names (not pins by region),
            // so a router follows a takeover to the standby node.
            let mut node_urls = Vec::new();
            for other in &spec.regions {
                let port = if *other == r {
                    service_port
                } else {
                    map_port(&map_regions, other)
                };
                let a = links
                    .link(&format!("router:{r}->node:{other}"), &r, other, port)
                    .await;
                node_urls.push(format!("http://127.0.0.1:{port}=http://{a}"));
                if let Some(sb) = map_regions
                    .iter()
                    .find(|v| v["id"] == other.as_str())
                    .and_then(|v| v["standby"].as_object())
                {
                    let host = sb["host"].as_str().unwrap_or_default();
                    let url = sb["node"].as_str().unwrap_or_default();
                    let port: u16 = url
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                    let a = links
                        .link(&format!("router:{r}->sbnode:{host}"), &r, host, port)
                        .await;
                    node_urls.push(format!("{url}=http://{a}"));
                }
            }
            let mut env = vec![
                ("COUPON_REGION".to_owned(), r.clone()),
                (
                    "COUPON_ROUTER_LISTEN".to_owned(),
                    format!("127.0.0.1:{router_port}"),
                ),
                ("COUPON_RAFT_URLS".to_owned(), raft_urls("router").await),
                (
                    "COUPON_SERVICE_KEY".to_owned(),
                    keys_dir
                        .join(format!("{}.pem", keys::kid(&r)))
                        .display()
                        .to_string(),
                ),
                ("COUPON_SERVICE_KID".to_owned(), keys::kid(&r)),
                ("COUPON_NODE_URLS".to_owned(), node_urls.join(",")),
            ];
            env.extend(spec.router_env.iter().cloned());
            let mut router = Proc::new(
                &format!("router-{r}"),
                router_port,
                spec.bins.router.clone(),
                vec![],
                env,
                dir.join("router.log"),
            );
            router
                .spawn()
                .map_err(crate::io("spawning coupon-router"))?;
            regions.insert(r.clone(), {
                let mut nodes = nodes.into_iter();
                RegionProcs {
                    name: r,
                    pg,
                    redis,
                    node: nodes.next().expect("at least one node"),
                    more_nodes: nodes.collect(),
                    node_service,
                    router,
                    standby,
                }
            });
        }
        let c = LocalCluster {
            faults: links.faults,
            latency: links.latency,
            rejoins: 0,
            net: links.net,
            regions,
            raft,
            admin_token: admin,
            keys_dir,
            root: spec.root,
        };
        c.wait_ready().await?;
        Ok(c)
    }

    /// Every node and router answers `/readyz` with 200.
    pub async fn wait_ready(&self) -> Result<(), KitError> {
        let http = reqwest::Client::new();
        for n in self.regions.values().flat_map(RegionProcs::nodes) {
            raft::wait_ok(&http, &format!("{}/readyz", n.url()), READY).await?;
        }
        for r in self.regions.values() {
            raft::wait_ok(&http, &format!("{}/readyz", r.router.url()), READY).await?;
        }
        // Standby nodes are alive but never ready until promoted.
        for sb in self.regions.values().filter_map(|r| r.standby.as_ref()) {
            raft::wait_ok(&http, &format!("{}/livez", sb.node.url()), READY).await?;
        }
        Ok(())
    }

    pub fn region(&self, r: &str) -> &RegionProcs {
        &self.regions[r]
    }

    pub fn region_mut(&mut self, r: &str) -> &mut RegionProcs {
        self.regions.get_mut(r).expect("region exists")
    }

    /// `.coupon/dev-cluster.json` in docs/api.md's shape (plus `service_keys`
    /// and `raft_admin_token_file`); `issuer` is the caller's block.
    pub fn cluster_file(&self, issuer: Value) -> Value {
        let regions: serde_json::Map<String, Value> = self
            .regions
            .values()
            .map(|r| {
                let mut pids = json!({"router": r.router.pid(), "node": r.node.pid(),
                    "postgres": r.pg.pid(), "redis": r.redis.pid()});
                for (i, n) in r.more_nodes.iter().enumerate() {
                    pids[format!("node-{}", i + 2)] = json!(n.pid());
                }
                // Every process that runs in this region: its raft member
                // and the standby it hosts for another region too, so that
                // killing them all is losing the region.
                let names: Vec<String> = self.regions.keys().cloned().collect();
                for (i, m) in self.raft.iter().enumerate() {
                    if raft::member_region(&names, i as u64 + 1) == r.name {
                        pids["raft"] = json!(m.pid());
                    }
                }
                for (other, o) in &self.regions {
                    if let Some(sb) = o.standby.as_ref().filter(|sb| sb.host == r.name) {
                        pids[format!("standby-postgres-{other}")] = json!(sb.pg.pid());
                        pids[format!("standby-redis-{other}")] = json!(sb.redis.pid());
                        pids[format!("standby-node-{other}")] = json!(sb.node.pid());
                    }
                }
                // A process killed by a scenario has no pid any more.
                if let Some(m) = pids.as_object_mut() {
                    m.retain(|_, v| !v.is_null());
                }
                let mut v = json!({"router": r.router.url(), "node": r.node_url(), "postgres": r.db_url(),
                    "redis": r.redis.url(), "pids": pids});
                if let Some(sb) = &r.standby {
                    v["standby"] = json!({"region": sb.host, "postgres": sb.pg.url("coupon"),
                        "node": sb.map_url, "redis": sb.redis.url()});
                }
                (r.name.clone(), v)
            })
            .collect();
        let raft: Vec<Value> = self
            .raft
            .iter()
            .map(|m| json!({"url": m.url(), "pid": m.pid()}))
            .collect();
        let kids: BTreeMap<&str, String> = self
            .regions
            .keys()
            .map(|r| (r.as_str(), keys::kid(r)))
            .collect();
        json!({"regions": regions, "raft": raft, "issuer": issuer,
            "service_keys": {"dir": self.keys_dir, "kids": kids},
            "raft_admin_token_file": self.root.join("raft-admin-token"),
            "raft_lease_token_file": self.root.join("raft-lease-token")})
    }

    /// Stops routers, nodes, then raft (stores stop when dropped).
    pub fn stop(&mut self) {
        for r in self.regions.values_mut() {
            r.router.stop();
        }
        for r in self.regions.values_mut() {
            r.node.stop();
            for n in &mut r.more_nodes {
                n.stop();
            }
            if let Some(sb) = &mut r.standby {
                sb.node.stop();
            }
        }
        for m in &mut self.raft {
            m.stop();
        }
    }
}

/// The region hosting `r`'s standby: the next one in the list.
pub fn standby_host(regions: &[String], r: &str) -> Option<String> {
    let i = regions.iter().position(|x| x == r)?;
    (regions.len() > 1).then(|| regions[(i + 1) % regions.len()].clone())
}

/// Application name of `r`'s standby (what `synchronous_standby_names` lists).
pub fn standby_name(r: &str) -> String {
    format!("standby_{r}")
}

fn map_port(map_regions: &[Value], region: &str) -> u16 {
    map_regions
        .iter()
        .find(|v| v["id"] == region)
        .and_then(|v| v["node"].as_str()?.rsplit(':').next()?.parse().ok())
        .expect("every region has a node port")
}

fn start_stores(
    dir: &Path,
    persistent: bool,
    fsync: bool,
) -> Result<(PgServer, RedisServer), KitError> {
    let opts = PgOptions {
        fsync,
        max_connections: 300,
    };
    let pg = if persistent {
        PgServer::start_in(&dir.join("pg"), opts)?
    } else {
        PgServer::start_temp(opts)?
    };
    if pg
        .psql(
            "postgres",
            "SELECT 1 FROM pg_database WHERE datname = 'coupon'",
        )?
        .is_empty()
    {
        pg.create_database("coupon")?;
    }
    let redis = if persistent {
        RedisServer::start_in(&dir.join("redis"))?
    } else {
        RedisServer::start_temp()?
    };
    Ok((pg, redis))
}
