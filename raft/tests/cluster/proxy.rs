//! In-test TCP proxy in front of each member: members address each other through it, and a
//! test can cut the link between any two members (both ways) by dropping their connections.
//!
//! Member `i` binds its outbound connections to 127.0.0.(10+i), so the proxy of member `t`
//! knows which member a connection comes from.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Source IP member `id` uses for member-to-member traffic.
pub fn source_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

fn member_of(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[3] >= 10 => Some(u64::from(v4.octets()[3] - 10)),
        _ => None,
    }
}

/// The set of blocked (from, to) member pairs, shared by every proxy of a cluster.
#[derive(Clone)]
pub struct Links {
    blocked: Arc<watch::Sender<BTreeSet<(u64, u64)>>>,
}

impl Links {
    pub fn new() -> Self {
        Self {
            blocked: Arc::new(watch::channel(BTreeSet::new()).0),
        }
    }

    /// Cuts every link between `id` and `others`, both ways.
    pub fn isolate(&self, id: u64, others: &[u64]) {
        self.blocked.send_modify(|b| {
            for &o in others {
                b.insert((id, o));
                b.insert((o, id));
            }
        });
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.blocked.send_modify(|b| b.clear());
    }

    /// Starts a proxy for member `target` listening on a free port; returns the port.
    pub async fn proxy(&self, target: u64, target_port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let blocked = self.blocked.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, peer)) = listener.accept().await else {
                    continue;
                };
                let src = member_of(peer.ip()).unwrap_or(u64::MAX);
                let mut rx = blocked.subscribe();
                if rx.borrow().contains(&(src, target)) {
                    continue; // dropped: the connection closes
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|b| b.contains(&(src, target))) => {}
                    }
                });
            }
        });
        port
    }
}
