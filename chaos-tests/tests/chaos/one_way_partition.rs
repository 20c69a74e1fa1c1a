//! Region-loss scenario 7 (docs/failover.md): a one-way partition. `eu`
//! hears raft and the other regions, but nothing it sends arrives (its
//! renewals, its raft member's answers). Its lease lapses although it still
//! receives the leader's heartbeats; it must stop serving before its
//! standby takes over (see `cut_off`).

use coupon_chaos_tests::faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_raft_cannot_hear_stops_serving_before_its_standby_takes_over() {
    super::cut_off::run("one-way-partition", "eu heard but not hearing back", |h| {
        assert!(faults::mute(&h.cluster.net, "eu") > 0);
    })
    .await;
}
