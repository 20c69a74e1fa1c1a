//! Starts the chaos cluster: regions `us`, `eu`, `ap`, every link proxied,
//! raft with test timing, a dev issuer, and a seed that replays the run.

use crate::checker::Sampler;
use crate::timeline::{InFlight, Timeline};
use coupon_testkit::cluster::{Bins, ClusterSpec, LocalCluster};
use coupon_testkit::issuer::{DEV_AUD, DEV_ISS};
use coupon_testkit::Issuer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const REGIONS: [&str; 3] = ["us", "eu", "ap"];

pub struct Harness {
    pub cluster: LocalCluster,
    pub issuer: Issuer,
    pub seed: u64,
    pub rng: StdRng,
    pub http: reqwest::Client,
    /// Every fault the scenario injected, on the wall clock.
    pub timeline: Arc<Timeline>,
    /// Samples slot ownership in every region while the scenario runs.
    pub sampler: Sampler,
    /// Redeem requests of the workload in flight right now.
    pub in_flight: Arc<InFlight>,
    root: PathBuf,
}

/// The seed of this run: `CHAOS_SEED` to replay, else random. Printed.
pub fn seed() -> u64 {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("chaos seed: {seed} (replay with CHAOS_SEED={seed})");
    seed
}

/// `target/<profile>/`, where the workspace binaries are built.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_owned()
}

impl Harness {
    pub async fn start(name: &str) -> Harness {
        Harness::start_with(name, vec![]).await
    }

    /// `router_env`: extra environment of every router (timeouts, …).
    pub async fn start_with(name: &str, router_env: Vec<(String, String)>) -> Harness {
        Harness::start_full(name, router_env, 1, false).await
    }

    /// Every region with a synchronous standby (database, Redis, idle node)
    /// hosted in the next region (us→eu, eu→ap, ap→us): the region-loss
    /// scenarios.
    pub async fn start_with_standbys(name: &str) -> Harness {
        Harness::start_full(name, vec![], 1, true).await
    }

    /// Every region with `nodes` node processes on its one Postgres and
    /// Redis, behind a round-robin balancer (a Kubernetes Service locally);
    /// `router_env` as in [`Harness::start_with`].
    pub async fn start_scaled(
        name: &str,
        nodes: usize,
        router_env: Vec<(String, String)>,
    ) -> Harness {
        Harness::start_full(name, router_env, nodes, false).await
    }

    async fn start_full(
        name: &str,
        router_env: Vec<(String, String)>,
        nodes_per_region: usize,
        standbys: bool,
    ) -> Harness {
        let seed = seed();
        let root =
            coupon_testkit::scratch_root().join(format!("chaos-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("chaos root");
        let issuer = Issuer::generate(DEV_ISS, DEV_AUD);
        let (_, public) = issuer.write(&root, "issuer").expect("issuer keys");
        // Chaos defaults, unless the scenario sets its own.
        let mut router_env = router_env;
        for (k, v) in [
            ("COUPON_FORWARD_TIMEOUT_MS", "1500"),
            ("COUPON_PEER_CHECK_MS", "500"),
        ] {
            if !router_env.iter().any(|(name, _)| name == k) {
                router_env.push((k.into(), v.into()));
            }
        }
        let spec = ClusterSpec {
            root: root.clone(),
            regions: REGIONS.iter().map(|r| r.to_string()).collect(),
            bins: Bins::in_dir(&bin_dir())
                .expect("workspace binaries (cargo build --workspace --bins)"),
            issuer_public_key: public,
            persistent: false,
            fsync: false,
            latency: false,
            faults: true,
            fast_raft: true,
            node_env: vec![
                // Claims leaked by a stall or a crash go back after 3 s, so a
                // scenario can wait for the reconciler instead of 30 s.
                ("COUPON_RECONCILE_GRACE_MS".into(), "3000".into()),
                ("COUPON_USER_RATE".into(), "0".into()),
                ("RUST_LOG".into(), "info".into()),
            ],
            router_env,
            nodes_per_region,
            standbys,
        };
        let cluster = LocalCluster::start(spec).await.unwrap_or_else(|e| {
            panic!(
                "start chaos cluster (seed {seed}, logs in {}): {e}",
                root.display()
            )
        });
        let db_urls = cluster
            .regions
            .iter()
            .map(|(r, p)| (r.clone(), p.db_url()))
            .collect();
        Harness {
            sampler: Sampler::start(db_urls),
            in_flight: Arc::default(),
            timeline: Arc::default(),
            cluster,
            issuer,
            seed,
            rng: StdRng::seed_from_u64(seed),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("client"),
            root,
        }
    }

    /// Every region's Postgres URL.
    pub fn db_urls(&self) -> BTreeMap<String, String> {
        self.cluster
            .regions
            .iter()
            .map(|(r, p)| (r.clone(), p.db_url()))
            .collect()
    }

    /// A fault delay drawn from the seed, so a failing seed replays the same
    /// interleaving as far as the OS allows.
    pub fn jitter(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(self.rng.gen_range(min_ms..=max_ms))
    }

    /// Waits until at least `n` workload requests are in flight, so a fault
    /// injected next lands on requests, not between them.
    pub async fn when_in_flight(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.in_flight.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {n} requests in flight (seed {})",
                self.seed
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// Opens a fault window that must catch requests in flight, once at
    /// least `n` are: stamped while they are still in flight, so the
    /// window provably starts on them. Inject the fault right after.
    pub async fn begin_mid_flight(&self, n: usize, name: &str) -> usize {
        self.open_when_in_flight(n, name, false).await
    }

    /// Like [`begin_mid_flight`](Self::begin_mid_flight) for a fault that
    /// is a single instant (a SIGKILL).
    pub async fn instant_mid_flight(&self, n: usize, name: &str) -> usize {
        self.open_when_in_flight(n, name, true).await
    }

    async fn open_when_in_flight(&self, n: usize, name: &str, instant: bool) -> usize {
        loop {
            self.when_in_flight(n).await;
            if let Some(i) = self
                .timeline
                .begin_if_in_flight(&self.in_flight, n, name, instant)
            {
                return i;
            }
        }
    }

    pub fn router(&self, region: &str) -> String {
        self.cluster.region(region).router.url()
    }

    /// The region's node (its balancer when it runs several).
    pub fn node(&self, region: &str) -> String {
        self.cluster.region(region).node_url()
    }

    /// Where the processes' logs are.
    pub fn logs(&self) -> String {
        self.root.join("data").display().to_string()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cluster.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!(
                "chaos seed {} failed; logs kept in {}",
                self.seed,
                self.logs()
            );
        }
    }
}
