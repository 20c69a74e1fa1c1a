//! A round-robin TCP balancer in front of a region's nodes, as a Kubernetes
//! Service is in production: each new connection goes to the next upstream;
//! an upstream that refuses the connection is skipped (as readiness removes
//! a dead pod from a Service's endpoints), so killing one node leaves the
//! region served by the others.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long one upstream connect may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Listens on a free loopback port and spreads connections over `upstreams`.
/// Returns the address clients use; the balancer lives as long as the runtime.
pub async fn start(upstreams: Vec<SocketAddr>) -> std::io::Result<SocketAddr> {
    start_on(0, upstreams).await
}

/// As [`start`], on `port` (0: any free one).
pub async fn start_on(port: u16, upstreams: Vec<SocketAddr>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let upstreams = Arc::new(upstreams);
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let first = next.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(serve(client, upstreams.clone(), first));
        }
    });
    Ok(addr)
}

/// Connects to the first upstream (from `first`, round robin) that accepts.
async fn serve(mut client: TcpStream, upstreams: Arc<Vec<SocketAddr>>, first: usize) {
    for i in 0..upstreams.len() {
        let up = upstreams[(first + i) % upstreams.len()];
        let Ok(Ok(mut server)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(up)).await
        else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    // No upstream accepted: close, as a Service without ready endpoints does.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Every connection reaches the live upstream, whichever the rotation
    /// starts at: a dead one is skipped, as a Service skips an unready pod.
    #[tokio::test]
    async fn connections_skip_an_upstream_that_refuses_them() {
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = live.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(b"live").await;
                });
            }
        });
        let dead = SocketAddr::from(([127, 0, 0, 1], crate::ports::free_port()));
        let lb = start(vec![dead, live_addr]).await.unwrap();
        for i in 0..4 {
            let mut c = TcpStream::connect(lb).await.unwrap();
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf).await;
            assert_eq!(
                buf, b"live",
                "connection {i} did not reach the live upstream"
            );
        }
    }
}
