//! Guards "one owner per slot" across planned moves under load: while
//! continuous redeem traffic runs through all three routers on `SAVE20`
//! (slot 762), the slot moves `us` → `eu` and then back `eu` → `us`. Every
//! answer is a 201, or a bounded 503 with `Retry-After` while the slot is
//! frozen (or an answer lost with the move: retried with its key after).
//! The checker judges every row against the two-move history (an old owner
//! that kept writing, or a copy that missed a row, is a violation) and the
//! sampler watches that the slot is never active in two regions at once.

use super::helpers::{attempts, check, tally, US_CODE, US_SLOT};
use coupon_chaos_tests::moves::move_slot;
use coupon_chaos_tests::timeline::require_load_over_every_fault;
use coupon_chaos_tests::workload::{paced, retry_ambiguous, shared_campaign};
use coupon_chaos_tests::Harness;
use std::collections::BTreeSet;
use std::time::Duration;

/// More seats than users: every user ends with exactly one redemption.
const SEATS: i64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_a_slot_there_and_back_under_load_keeps_one_owner_and_every_redemption() {
    let mut h = Harness::start("move-under-load").await;
    shared_campaign(&h, "us", US_CODE, SEATS).await;
    let plan = attempts(&mut h, &["us", "eu", "ap"], US_CODE, "m", 60);
    let (first_after, second_after) = (h.jitter(400, 800), h.jitter(800, 1500));
    let load = paced(&h, plan.clone(), 10, Duration::from_millis(30));
    let moves = async {
        tokio::time::sleep(first_after).await;
        h.when_in_flight(1).await;
        let w = h.timeline.begin("move slot 762 us -> eu");
        let there = move_slot(&h, US_SLOT, "eu").await.expect("move us -> eu");
        h.timeline.end(w);
        tokio::time::sleep(second_after).await;
        h.when_in_flight(1).await;
        let w = h.timeline.begin("move slot 762 eu -> us");
        let back = move_slot(&h, US_SLOT, "us").await.expect("move eu -> us");
        h.timeline.end(w);
        vec![there, back]
    };
    let (first, moves) = tokio::join!(load, moves);
    require_load_over_every_fault(&h.timeline, &first, h.seed);
    assert_eq!(
        (moves[0].new_epoch, moves[1].new_epoch),
        (2, 3),
        "{moves:?}"
    );
    for r in &first {
        let ok = r.status == 201
            || r.status == 0
            || (r.status == 503 && r.retry_after.is_some() && r.elapsed < Duration::from_secs(4));
        assert!(ok, "seed {}: {r:?}\n{:?}", h.seed, tally(&first));
    }
    let served: BTreeSet<_> = first.iter().filter_map(|r| r.region.clone()).collect();
    let retried = retry_ambiguous(&h, &first, 8, 5).await;
    let all: Vec<_> = first
        .iter()
        .cloned()
        .chain(retried.iter().cloned())
        .collect();
    let summary = check(&h, &all, &moves).await;
    eprintln!(
        "move under load: first {:?}, retried {:?}, served by {served:?}, moves {moves:?}",
        tally(&first),
        tally(&retried)
    );
    assert_eq!(
        summary.active.values().sum::<i64>(),
        plan.len() as i64,
        "one redemption per user (seed {})",
        h.seed
    );
    assert!(
        served.contains("eu") && served.contains("us"),
        "the load was served by both owners in turn: {served:?} (seed {})",
        h.seed
    );
}
