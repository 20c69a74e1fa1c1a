//! Free loopback ports.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports handed out below the kernel's ephemeral range (32768–60999 by
/// default). A port taken from that range with `bind(0)` can be handed by
/// the kernel to any outgoing connection (proxies, Postgres clients, raft)
/// before our process binds it again, which showed up as "address already
/// in use" under load; below it only explicit binds compete.
const RANGE: std::ops::Range<u16> = 20000..32768;

static HANDED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port the OS considered free a moment ago, never handed out twice by
/// this process. Callers retry on a clash.
pub fn free_port() -> u16 {
    let mut handed = HANDED.lock().expect("ports lock");
    let handed = handed.get_or_insert_with(HashSet::new);
    for _ in 0..2000 {
        let port = rand::random::<u16>() % (RANGE.end - RANGE.start) + RANGE.start;
        if handed.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Marks `port` as taken (reused from an earlier run) so this process
/// never hands it out again.
pub fn claim(port: u16) {
    HANDED
        .lock()
        .expect("ports lock")
        .get_or_insert_with(HashSet::new)
        .insert(port);
}

/// True once something accepts TCP connections on `port`.
pub fn is_listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        std::time::Duration::from_millis(200),
    )
    .is_ok()
}
