//! The links of a local cluster: direct, or through the [`FaultNet`] when
//! the cluster runs with faults (every link) or simulated latency
//! (cross-region links, one-way delays like CockroachDB's local demo).

use crate::netproxy::{Fault, FaultNet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// One-way latency between two regions when latency is simulated.
pub fn one_way(a: &str, b: &str) -> Duration {
    let ms = match (a.min(b), a.max(b)) {
        (x, y) if x == y => 0,
        ("eu", "us") => 32,
        ("ap", "us") => 33,
        ("ap", "eu") => 73,
        _ => 50,
    };
    Duration::from_millis(ms)
}

/// Source IP raft member `id` binds its outbound connections to, so the
/// proxy in front of another member can tell which link a connection is.
pub fn raft_source_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

pub struct Links {
    pub net: Arc<FaultNet>,
    pub faults: bool,
    pub latency: bool,
}

impl Links {
    fn delay(&self, a: &str, b: &str) -> Option<Fault> {
        let d = one_way(a, b);
        (self.latency && !d.is_zero()).then_some(Fault::Delay(d))
    }

    /// Address for the link `name` from region `from` to `port` in region
    /// `to`: the port itself, or a proxy in front of it.
    pub async fn link(&self, name: &str, from: &str, to: &str, port: u16) -> SocketAddr {
        let upstream = SocketAddr::from(([127, 0, 0, 1], port));
        let delay = self.delay(from, to);
        if !self.faults && delay.is_none() {
            return upstream;
        }
        let addr = self
            .net
            .listen(name, upstream)
            .await
            .expect("proxy listener");
        if let Some(d) = delay {
            self.net.set_link(name, d, d);
        }
        addr
    }

    /// Whether raft members talk through per-member proxies.
    pub fn raft_proxied(&self) -> bool {
        self.faults || self.latency
    }

    /// A proxy in front of raft member `to` (in `to_region`): the link of a
    /// connection is named from its source IP (`raft:<from>-><to>`).
    pub async fn raft_member(
        &self,
        to: u64,
        to_region: &str,
        member_regions: Vec<String>,
        port: u16,
    ) -> SocketAddr {
        let upstream = SocketAddr::from(([127, 0, 0, 1], port));
        let classify = move |ip: IpAddr| match ip {
            IpAddr::V4(v4) if v4.octets()[3] > 10 => {
                format!("raft:{}->raft:{to}", v4.octets()[3] - 10)
            }
            _ => format!("other->raft:{to}"),
        };
        let addr = self
            .net
            .listen_classified(classify, upstream)
            .await
            .expect("raft proxy listener");
        for (i, r) in member_regions.iter().enumerate() {
            let from = i as u64 + 1;
            if from == to {
                continue;
            }
            let name = format!("raft:{from}->raft:{to}");
            match self.delay(r, to_region) {
                Some(d) => self.net.set_link(&name, d, d),
                None => self.net.set_link(&name, Fault::Pass, Fault::Pass),
            }
        }
        addr
    }
}
