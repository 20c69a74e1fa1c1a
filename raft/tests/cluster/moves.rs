//! Slot moves through the real group, watched by the client library: complete bumps the
//! epoch by exactly one, abort restores the slot, a replayed request id changes nothing.

use std::time::Duration;

use coupon_raft::client::{MapClient, MapClientOptions};
use coupon_raft::model::SlotState;
use tokio::time::timeout;

use crate::helpers::{Cluster, Opts};

async fn seen(
    rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<coupon_raft::map_view::MapView>>,
    v: u64,
) {
    timeout(Duration::from_secs(10), rx.wait_for(|m| m.version >= v))
        .await
        .expect("watcher saw the new version in time")
        .expect("watch open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_move_bumps_the_epoch_by_one_an_abort_restores_and_replays_change_nothing() {
    let c = Cluster::start(3, Opts::default()).await;
    c.init_map(1, 16).await;
    let urls: Vec<String> = c.members.iter().map(|m| m.url()).collect();
    let opts = MapClientOptions {
        poll_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let client = MapClient::connect(urls, opts)
        .await
        .expect("connect map client");
    let mut rx = client.subscribe();
    let before = client.owner_of(5).unwrap();
    assert_eq!((before.region.as_str(), before.epoch), ("ap", 1));
    let admin = c.admin(2);

    let begin = admin.begin_move("mv-5-begin", 5, "us").await.unwrap();
    seen(&mut rx, begin.version).await;
    assert_eq!(client.owner_of(5).unwrap().state, SlotState::Moving);
    assert_eq!(client.current().moves.len(), 1);

    let done = admin.complete_move("mv-5-complete", 5).await.unwrap();
    seen(&mut rx, done.version).await;
    let after = client.owner_of(5).unwrap();
    assert_eq!(after.region.as_str(), "us");
    assert_eq!(after.epoch, before.epoch + 1, "epoch bumps by exactly one");
    assert_eq!(after.state, SlotState::Active);

    let replay = c.admin(3).complete_move("mv-5-complete", 5).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.version, done.version);
    let replay = admin.begin_move("mv-5-begin", 5, "us").await.unwrap();
    assert!(replay.replayed);
    let map = c.map(1, "").await.unwrap();
    assert_eq!(map.version, done.version, "replays did not change the map");
    assert_eq!(map.slot(5).unwrap().epoch, 2);

    let slot6 = client.owner_of(6).unwrap();
    let b = admin.begin_move("mv-6-begin", 6, "eu").await.unwrap();
    seen(&mut rx, b.version).await;
    let a = admin.abort_move("mv-6-abort", 6).await.unwrap();
    seen(&mut rx, a.version).await;
    assert_eq!(
        client.owner_of(6).unwrap(),
        slot6,
        "abort restores owner, epoch and state"
    );
    assert!(client.current().moves.is_empty());
    let again = admin.abort_move("mv-6-abort", 6).await.unwrap();
    assert!(again.replayed);
    let err = admin.complete_move("mv-6-complete", 6).await.unwrap_err();
    assert_eq!(err.code(), Some("slot_not_moving"));
    assert_eq!(c.map(2, "").await.unwrap().version, a.version);
}
