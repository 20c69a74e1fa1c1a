//! A fault-injecting TCP proxy for the local cluster and the chaos tests
//! (docs/architecture.md §8): every link (a name like `router:us->node:eu`) can be cut,
//! blackholed, delayed or reset, each direction on its own.
//!
//! *Cut* closes connections with a reset and refuses new ones (fast failure).
//! *Blackhole* stops moving bytes in that direction (the peer sees silence,
//! like dropped packets; held bytes flow again on heal, as TCP would resend).
//! *Delay* holds every chunk for a fixed one-way latency, keeping order.
//! *Reset* kills the current connections once; new ones work.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// What happens to bytes in one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    Pass,
    Cut,
    Blackhole,
    Delay(Duration),
}

/// Both directions of a link: `fwd` is client → server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    pub fwd: Fault,
    pub back: Fault,
    /// Bumped by [`FaultNet::reset`]; connections of an older generation die.
    pub generation: u64,
}

/// The links of one cluster and their faults.
#[derive(Default)]
pub struct FaultNet {
    links: Mutex<HashMap<String, watch::Sender<LinkState>>>,
}

enum End {
    Eof,
    Kill,
}

impl FaultNet {
    pub fn new() -> Arc<FaultNet> {
        Arc::new(FaultNet::default())
    }

    fn sender(&self, name: &str) -> watch::Sender<LinkState> {
        let mut links = self.links.lock().expect("links lock");
        links
            .entry(name.to_owned())
            .or_insert_with(|| watch::channel(LinkState::default()).0)
            .clone()
    }

    /// Every link name seen so far.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.links.lock().expect("links").keys().cloned().collect();
        v.sort();
        v
    }

    /// Sets both directions of every link `pick` selects; returns how many.
    pub fn set(&self, pick: impl Fn(&str) -> bool, fwd: Fault, back: Fault) -> usize {
        let links = self.links.lock().expect("links lock");
        let mut n = 0;
        for (name, tx) in links.iter() {
            if pick(name) {
                tx.send_modify(|s| {
                    s.fwd = fwd;
                    s.back = back;
                });
                n += 1;
            }
        }
        n
    }

    pub fn set_link(&self, name: &str, fwd: Fault, back: Fault) {
        self.sender(name).send_modify(|s| {
            s.fwd = fwd;
            s.back = back;
        });
    }

    /// Kills the current connections of the selected links once.
    pub fn reset(&self, pick: impl Fn(&str) -> bool) {
        for (name, tx) in self.links.lock().expect("links lock").iter() {
            if pick(name) {
                tx.send_modify(|s| s.generation += 1);
            }
        }
    }

    /// Every link back to normal.
    pub fn heal_all(&self) {
        self.set(|_| true, Fault::Pass, Fault::Pass);
    }

    /// A listener for the link `name`, forwarding to `upstream`.
    pub async fn listen(
        self: &Arc<Self>,
        name: &str,
        upstream: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        let name = name.to_owned();
        drop(self.sender(&name)); // known (and settable) before its first connection
        self.listen_classified(move |_| name.clone(), upstream)
            .await
    }

    /// A listener whose link name depends on the client's source address
    /// (members that bind their outbound connections to distinct IPs).
    pub async fn listen_classified(
        self: &Arc<Self>,
        classify: impl Fn(IpAddr) -> String + Send + Sync + 'static,
        upstream: SocketAddr,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let net = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let rx = net.sender(&classify(peer.ip())).subscribe();
                tokio::spawn(serve(client, upstream, rx));
            }
        });
        Ok(addr)
    }
}

fn kill(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, rx: watch::Receiver<LinkState>) {
    let st = *rx.borrow();
    if st.fwd == Fault::Cut || st.back == Fault::Cut {
        kill(&client);
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        kill(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        tokio::select! {
            e = pump(cr, sw, rx.clone(), true, st.generation) => e,
            e = pump(sr, cw, rx.clone(), false, st.generation) => e,
        }
    };
    if matches!(end, End::Kill) {
        kill(&client);
        kill(&server);
    }
}

async fn pump(
    mut r: impl AsyncRead + Unpin,
    mut w: impl AsyncWrite + Unpin,
    mut rx: watch::Receiver<LinkState>,
    fwd: bool,
    generation: u64,
) -> End {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    loop {
        let st = *rx.borrow_and_update();
        let fault = if fwd { st.fwd } else { st.back };
        if fault == Fault::Cut || st.generation != generation {
            return End::Kill;
        }
        if eof && queue.is_empty() {
            return End::Eof;
        }
        let moving = fault != Fault::Blackhole;
        let next = queue.front().map(|(t, _)| *t);
        tokio::select! {
            res = r.read(&mut buf), if moving && !eof => match res {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    let delay = match fault { Fault::Delay(d) => d, _ => Duration::ZERO };
                    if delay.is_zero() && queue.is_empty() {
                        if w.write_all(&buf[..n]).await.is_err() { return End::Eof; }
                    } else {
                        queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
                    }
                }
            },
            _ = sleep_until(next.unwrap_or_else(Instant::now)), if moving && next.is_some() => {
                let (_, bytes) = queue.pop_front().expect("front exists");
                if w.write_all(&bytes).await.is_err() { return End::Eof; }
            },
            changed = rx.changed() => if changed.is_err() { return End::Kill; },
        }
    }
}
