//! Region-loss scenario 2 (docs/failover.md): `eu` stays alive but is cut
//! off from raft and the other regions in both directions, its local
//! clients still reaching it. It must stop serving before the takeover by
//! its standby starts: no slot served by two regions at any moment, judged
//! from the clients' own records (see `cut_off`).

use coupon_chaos_tests::faults;
use coupon_testkit::netproxy::Fault;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_cut_off_both_ways_stops_serving_before_its_standby_takes_over() {
    super::cut_off::run("region-partitioned", "eu cut off both ways", |h| {
        assert!(faults::partition(&h.cluster.net, "eu", Fault::Cut) > 0);
    })
    .await;
}
