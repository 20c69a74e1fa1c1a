//! Shared harness: real `coupon-raft` processes on loopback, each behind a [`Links`] proxy,
//! with temp data dirs; helpers to wait, signal and read maps.

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coupon_raft::client::AdminClient;
use coupon_raft::model::{Region, RegionId};
use tempfile::TempDir;
use tokio::time::{sleep, Instant};

use crate::proxy::{source_ip, Links};

pub const SECRET: &str = "test-cluster-secret-0123456789";
pub const ADMIN: &str = "test-admin-token-0123456789";
/// Test timing: shorter than production (500 ms / 1.5–3 s) so the suite stays fast on 2 cores.
pub const HEARTBEAT_MS: u64 = 150;
pub const ELECTION_MIN_MS: u64 = 750;
pub const ELECTION_MAX_MS: u64 = 1500;

/// Knobs a test may change before start.
#[derive(Clone)]
pub struct Opts {
    pub snapshot_logs: u64,
    pub keep_logs: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            snapshot_logs: 1000,
            keep_logs: 1000,
        }
    }
}

pub struct Member {
    pub id: u64,
    pub port: u16,
    pub proxy_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Cluster secret this member runs with (tests may give it a wrong one).
    pub secret: String,
    child: Option<Child>,
}

impl Member {
    /// URL the test talks to directly (never cut).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// URL members use to reach this one (through its proxy).
    pub fn member_addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("member running").id() as i32
    }
}

pub struct Cluster {
    pub members: Vec<Member>,
    pub links: Links,
    pub opts: Opts,
    pub http: reqwest::Client,
    _dir: TempDir,
    dir: PathBuf,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn region(id: &str) -> Region {
    Region {
        id: RegionId::parse(id).unwrap(),
        router: format!("http://{id}.router.test"),
        node: format!("http://{id}.node.test"),
        key_ids: vec![format!("{id}-key-1")],
        standby: None,
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: plain kill(2) on a child pid this test spawned.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

impl Cluster {
    /// Starts `n` members (ids 1..=n), bootstraps raft with all of them and waits for a leader.
    pub async fn start(n: u64, opts: Opts) -> Cluster {
        let dir = TempDir::new().unwrap();
        let mut c = Cluster {
            members: vec![],
            links: Links::new(),
            opts,
            http: reqwest::Client::new(),
            dir: dir.path().to_owned(),
            _dir: dir,
        };
        for id in 1..=n {
            c.add_member_process(id, SECRET).await;
        }
        let members: Vec<(u64, String)> =
            c.members.iter().map(|m| (m.id, m.member_addr())).collect();
        c.admin(1)
            .initialize_raft(&members)
            .await
            .expect("initialize raft");
        c.leader().await;
        c
    }

    /// Spawns a new member process `id` (not yet part of the group) and waits for /livez.
    pub async fn add_member_process(&mut self, id: u64, secret: &str) {
        let port = free_port();
        let proxy_port = self.links.proxy(id, port).await;
        let m = Member {
            id,
            port,
            proxy_port,
            data_dir: self.dir.join(format!("m{id}")),
            log: self.dir.join(format!("m{id}.log")),
            secret: secret.to_owned(),
            child: None,
        };
        self.members.push(m);
        self.start_member(id).await;
    }

    pub fn member(&self, id: u64) -> &Member {
        self.members.iter().find(|m| m.id == id).expect("member id")
    }

    fn member_mut(&mut self, id: u64) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .expect("member id")
    }

    pub fn admin(&self, id: u64) -> AdminClient {
        AdminClient::new(&self.member(id).url(), ADMIN).unwrap()
    }

    /// (Re)starts the process of member `id` on its port and data dir.
    pub async fn start_member(&mut self, id: u64) {
        let opts = self.opts.clone();
        let m = self.member_mut(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_coupon-raft"))
            .arg("serve")
            .args(["--node-id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{}", m.port)])
            .args(["--advertise", &m.member_addr()])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--source-ip", &source_ip(id).to_string()])
            .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--election-min-ms", &ELECTION_MIN_MS.to_string()])
            .args(["--election-max-ms", &ELECTION_MAX_MS.to_string()])
            .args(["--snapshot-logs", &opts.snapshot_logs.to_string()])
            .args(["--keep-logs", &opts.keep_logs.to_string()])
            .args(["--write-timeout-ms", "3000", "--read-deadline-ms", "2000"])
            .env("COUPON_RAFT_SECRET", &m.secret)
            .env("COUPON_RAFT_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "info,openraft=info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn coupon-raft");
        m.child = Some(child);
        let url = format!("{}/livez", m.url());
        let http = self.http.clone();
        self.eventually("member answers /livez", Duration::from_secs(10), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
    }

    /// SIGKILLs member `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        let m = self.member_mut(id);
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Polls `f` every 100 ms until it yields `Some`, or fails the test with member logs.
    pub async fn eventually<T, F, Fut>(&self, what: &str, within: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() >= deadline {
                self.dump_logs();
                panic!("timed out after {within:?} waiting until {what}");
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn dump_logs(&self) {
        for m in &self.members {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("----- member {} log tail -----", m.id);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    /// Initializes the map with regions us/eu/ap and `slots` slots through member `via`.
    pub async fn init_map(&self, via: u64, slots: u32) {
        let regions = [region("us"), region("eu"), region("ap")];
        let out = self
            .admin(via)
            .init("init-1", &regions, Some(slots))
            .await
            .expect("init map");
        assert_eq!(out.version, 1);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
