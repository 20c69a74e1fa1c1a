//! A real `redis-server` on loopback, no persistence: Redis is only an
//! accelerator and must always be rebuildable from Postgres.

use crate::{io, procs, KitError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    remove_on_drop: bool,
}

impl RedisServer {
    pub fn start_temp() -> Result<RedisServer, KitError> {
        let dir = crate::scratch_root().join(format!("redis-{}", crate::unique_tag()));
        let mut s = RedisServer::start_in(&dir)?;
        s.remove_on_drop = true;
        Ok(s)
    }

    pub fn start_in(dir: &Path) -> Result<RedisServer, KitError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut s = RedisServer {
            port: 0,
            dir: dir.to_owned(),
            child: None,
            remove_on_drop: false,
        };
        s.boot()?;
        Ok(s)
    }

    fn boot(&mut self) -> Result<(), KitError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = if self.port != 0 && !crate::ports::is_listening(self.port) {
                self.port
            } else {
                crate::ports::free_port()
            };
            let mut cmd = Command::new("redis-server");
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]);
            cmd.args([
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--maxclients",
                "10000",
            ]);
            cmd.arg("--dir")
                .arg(&self.dir)
                .arg("--logfile")
                .arg(self.dir.join("redis.log"));
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = procs::spawn_bound(cmd)
                .map_err(io("spawning redis-server (apt-get install redis-server)"))?;
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("redis-server exited ({status})");
                    break;
                }
                if ping(port) {
                    self.port = port;
                    self.child = Some(child);
                    return Ok(());
                }
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    return Err(KitError::Failed("redis-server not ready".into()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(KitError::Failed(last))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port (empty: nothing is persisted).
    pub fn restart(&mut self) -> Result<(), KitError> {
        self.kill();
        self.boot()
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            procs::signal(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
        if self.remove_on_drop {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
