//! A real Postgres server (Debian's `postgresql`), run as the `postgres`
//! user when we are root, listening on loopback only.

use crate::{io, procs, KitError};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Off in tests for speed; on for the dev cluster and benchmarks.
    pub fsync: bool,
    pub max_connections: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            fsync: false,
            max_connections: 300,
        }
    }
}

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    opts: PgOptions,
    child: Option<Child>,
    remove_on_drop: bool,
}

/// `/usr/lib/postgresql/<newest>/bin`, or `$COUPON_PG_BIN`.
pub fn bin_dir() -> Result<PathBuf, KitError> {
    if let Ok(d) = std::env::var("COUPON_PG_BIN") {
        return Ok(d.into());
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(io(
            "looking for /usr/lib/postgresql (apt-get install postgresql)",
        ))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions
        .last()
        .ok_or_else(|| KitError::Failed("no postgresql version installed".into()))?;
    Ok(PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
}

fn as_postgres_user(cmd: &mut Command) -> Result<(), KitError> {
    if procs::is_root() {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = procs::user_ids("postgres").ok_or_else(|| {
            KitError::Failed("running as root but there is no `postgres` user".into())
        })?;
        cmd.uid(uid).gid(gid);
    }
    Ok(())
}

fn chown_to_postgres(path: &Path) -> Result<(), KitError> {
    if procs::is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            return Err(KitError::Failed(format!(
                "chown postgres {}",
                path.display()
            )));
        }
    }
    Ok(())
}

/// A pristine data directory made once by `initdb`, copied for each server.
fn template(root: &Path) -> Result<PathBuf, KitError> {
    let bin = bin_dir()?;
    let tag = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pg")
        .to_owned();
    let dir = root.join(format!("pg-template-{tag}"));
    std::fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
    let lock = std::fs::File::create(root.join("pg-template.lock")).map_err(io("template lock"))?;
    // SAFETY: flock on an open fd; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if dir.join("PG_VERSION").exists() {
        return Ok(dir);
    }
    let tmp = root.join(format!("pg-template-{tag}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("creating template dir"))?;
    chown_to_postgres(&tmp)?;
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(&tmp)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
    cmd.args(["--locale=C.UTF-8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_postgres_user(&mut cmd)?;
    let out = cmd.output().map_err(io("running initdb"))?;
    if !out.status.success() {
        return Err(KitError::Failed(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    std::fs::rename(&tmp, &dir).map_err(io("publishing template"))?;
    Ok(dir)
}

/// `pg_basebackup` of the primary at `primary_port` into `dir` (replaced),
/// streaming through a physical replication slot named after `app_name`,
/// configured to follow that primary as `app_name`.
fn base_backup(primary_port: u16, dir: &Path, app_name: &str) -> Result<(), KitError> {
    let _ = std::fs::remove_dir_all(dir);
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(io("creating standby parent"))?;
    chown_to_postgres(parent)?;
    let slot = app_name.replace('-', "_");
    psql_at(
        primary_port,
        "postgres",
        &format!(
            "SELECT pg_create_physical_replication_slot('{slot}') \
             WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
        ),
    )?;
    let mut cmd = Command::new(bin_dir()?.join("pg_basebackup"));
    cmd.args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream", "-R"])
        .args(["-p", &primary_port.to_string()])
        .args(["--no-sync", "-c", "fast", "-S", &slot])
        .arg("-D")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    as_postgres_user(&mut cmd)?;
    let out = cmd.output().map_err(io("running pg_basebackup"))?;
    if !out.status.success() {
        return Err(KitError::Failed(format!(
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    follow_primary(dir, primary_port, app_name)
}

/// Points the standby in `dir` at the primary on `primary_port` (again, on
/// every start: a kept standby of the local cluster reaches its primary
/// through a link whose port changes from run to run).
fn follow_primary(dir: &Path, primary_port: u16, app_name: &str) -> Result<(), KitError> {
    let slot = app_name.replace('-', "_");
    // Later lines win: name the standby, and never inherit the primary's
    // synchronous_standby_names (a promoted standby runs alone at first).
    let conf = format!(
        "\nprimary_conninfo = 'host=127.0.0.1 port={primary_port} user=postgres application_name={app_name}'\nprimary_slot_name = '{slot}'\nsynchronous_standby_names = ''\n"
    );
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("postgresql.auto.conf"))
        .map_err(io("postgresql.auto.conf"))?;
    f.write_all(conf.as_bytes()).map_err(io("writing conninfo"))
}

/// SQL as the superuser through psql against the server on `port`.
fn psql_at(port: u16, db: &str, sql: &str) -> Result<String, KitError> {
    let out = Command::new(bin_dir()?.join("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &port.to_string(), "-d", db, "-c", sql])
        .output()
        .map_err(io("running psql"))?;
    if !out.status.success() {
        return Err(KitError::Failed(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The scratch root, or the system temp dir when the `postgres` user could
/// not reach the scratch root (a checkout under /root, say).
fn reachable_root() -> PathBuf {
    let root = crate::scratch_root();
    if !procs::is_root() {
        return root;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut p = root.as_path();
    while let Some(parent) = p.parent() {
        if let Ok(meta) = std::fs::metadata(parent) {
            if meta.permissions().mode() & 0o001 == 0 {
                return std::env::temp_dir().join("coupon-testkit");
            }
        }
        p = parent;
    }
    root
}

impl PgServer {
    /// A throwaway server in a fresh data directory, removed on drop.
    pub fn start_temp(opts: PgOptions) -> Result<PgServer, KitError> {
        let dir = reachable_root().join(format!("pg-{}", crate::unique_tag()));
        let mut s = PgServer::start_in(&dir, opts)?;
        s.remove_on_drop = true;
        Ok(s)
    }

    /// A server whose data lives in `dir` (created from the template if new).
    pub fn start_in(dir: &Path, opts: PgOptions) -> Result<PgServer, KitError> {
        if !dir.join("PG_VERSION").exists() {
            let tpl = template(&reachable_root())?;
            let _ = std::fs::remove_dir_all(dir);
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(io("creating data parent"))?;
            }
            let ok = Command::new("cp").arg("-a").arg(&tpl).arg(dir).status();
            if !matches!(ok, Ok(s) if s.success()) {
                return Err(KitError::Failed(format!(
                    "copying template to {}",
                    dir.display()
                )));
            }
        }
        let mut s = PgServer {
            port: 0,
            dir: dir.to_owned(),
            opts,
            child: None,
            remove_on_drop: false,
        };
        s.boot()?;
        Ok(s)
    }

    /// A streaming standby of the primary at `primary_port` (often a proxy
    /// in front of it), made by `pg_basebackup` into `dir` unless `dir`
    /// already holds one, named `app_name` (what the primary's
    /// `synchronous_standby_names` lists). Removed on drop unless `keep`.
    pub fn start_standby(
        primary_port: u16,
        dir: &Path,
        app_name: &str,
        opts: PgOptions,
        keep: bool,
    ) -> Result<PgServer, KitError> {
        if !dir.join("PG_VERSION").exists() {
            base_backup(primary_port, dir, app_name)?;
        } else if dir.join("standby.signal").exists() {
            follow_primary(dir, primary_port, app_name)?;
        }
        let mut s = PgServer {
            port: 0,
            dir: dir.to_owned(),
            opts,
            child: None,
            remove_on_drop: !keep,
        };
        s.boot()?;
        Ok(s)
    }

    /// Throws this server's data away and makes it a streaming standby of
    /// the primary at `primary_port` from a fresh base backup (a lost
    /// primary rejoining as the new primary's standby: nothing it held
    /// alone survives). Keeps its port when it can.
    pub fn rebuild_as_standby(
        &mut self,
        primary_port: u16,
        app_name: &str,
    ) -> Result<(), KitError> {
        self.stop();
        base_backup(primary_port, &self.dir, app_name)?;
        self.boot()
    }

    /// Makes this primary wait for the standby `app_name` on every commit
    /// (strict: without it, commits block), and waits until it streams.
    pub fn require_sync_standby(&self, app_name: &str) -> Result<(), KitError> {
        self.psql(
            "postgres",
            &format!("ALTER SYSTEM SET synchronous_standby_names = '{app_name}'"),
        )?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        let started = Instant::now();
        loop {
            let n = self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            )?;
            if n == "1" {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(KitError::Failed(format!(
                    "standby {app_name} never became synchronous"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn boot(&mut self) -> Result<(), KitError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = if self.port != 0 && !crate::ports::is_listening(self.port) {
                self.port
            } else {
                crate::ports::free_port()
            };
            let _ = std::fs::remove_file(self.dir.join("postmaster.pid"));
            let log =
                std::fs::File::create(self.dir.join("server.log")).map_err(io("server.log"))?;
            let mut cmd = Command::new(bin_dir()?.join("postgres"));
            cmd.arg("-D")
                .arg(&self.dir)
                .arg("-p")
                .arg(port.to_string())
                .args(["-h", "127.0.0.1", "-k", ""]);
            for (k, v) in [
                ("fsync", if self.opts.fsync { "on" } else { "off" }),
                ("synchronous_commit", "on"),
                (
                    "full_page_writes",
                    if self.opts.fsync { "on" } else { "off" },
                ),
                ("max_connections", &self.opts.max_connections.to_string()),
                ("shared_buffers", "128MB"),
                ("log_min_messages", "warning"),
            ] {
                cmd.arg("-c").arg(format!("{k}={v}"));
            }
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().map_err(io("log"))?)
                .stderr(log);
            as_postgres_user(&mut cmd)?;
            chown_to_postgres(&self.dir)?;
            let mut child = procs::spawn_bound(cmd).map_err(io("spawning postgres"))?;
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("postgres exited ({status}): {}", self.log_tail());
                    break;
                }
                if self.ping(port) {
                    self.port = port;
                    self.child = Some(child);
                    return Ok(());
                }
                if started.elapsed() > READY_TIMEOUT {
                    let _ = child.kill();
                    return Err(KitError::Failed(format!(
                        "postgres not ready: {}",
                        self.log_tail()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(KitError::Failed(last))
    }

    fn ping(&self, port: u16) -> bool {
        let bin = match bin_dir() {
            Ok(b) => b,
            Err(_) => return false,
        };
        Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Run SQL as the superuser through psql.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, KitError> {
        psql_at(self.port, db, sql)
    }

    /// A new empty database; returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, KitError> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// SIGSTOP the server and every backend it forked: a paused Postgres
    /// keeps its sockets open and answers nothing, like a host gone silent.
    /// [`resume`](Self::resume) undoes it.
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            // The postmaster first, so it forks nothing new meanwhile.
            procs::signal(pid, libc::SIGSTOP);
            for child in procs::children(pid) {
                procs::signal(child, libc::SIGSTOP);
            }
        }
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            for child in procs::children(pid) {
                procs::signal(child, libc::SIGCONT);
            }
            procs::signal(pid, libc::SIGCONT);
        }
    }

    /// Fast shutdown (SIGINT), waiting for the process to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            procs::signal(c.id(), libc::SIGINT);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port after [`stop`](Self::stop).
    pub fn restart(&mut self) -> Result<(), KitError> {
        self.stop();
        self.boot()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
