//! The checker must see each violation it claims to: every rule is fed a
//! fabricated store that breaks it (split brain after a move, a copy that
//! missed a row, a code used twice, a retry refused, a silent write…) and
//! must name it, and the healthy version of the same store must pass.

use super::rows::{Row, Stores};
use super::{judge, History, Move};
use crate::workload::Record;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashMap;

/// `SAVE20`'s slot: owned by `us` at epoch 1 in the initial spread.
const SLOT: i32 = 762;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn row(user: &str, epoch: i64, at: i64) -> Row {
    Row {
        campaign: "cmp_a".into(),
        slot: SLOT,
        epoch,
        user: user.into(),
        order: format!("ord-{user}"),
        key: format!("key-{user}"),
        code: "SAVE20".into(),
        pool_code: None,
        seat_no: None,
        use_no: 1,
        discount: "{}".into(),
        redeemed_at: t(at),
        active: true,
    }
}

fn record(user: &str, status: u16, id: Option<&str>, start: i64, end: i64) -> Record {
    Record {
        via: "us".into(),
        user: user.into(),
        key: format!("key-{user}"),
        code: "SAVE20".into(),
        status,
        reason: match status {
            410 => Some("exhausted".into()),
            409 => Some("idempotency_in_flight".into()),
            _ => None,
        },
        region: Some("us".into()),
        redemption_id: id.map(str::to_owned),
        retry_after: None,
        replayed: status == 200,
        started_at: t(start),
        finished_at: t(end),
        elapsed: std::time::Duration::ZERO,
    }
}

fn stores(regions: &[(&str, Vec<(&str, Row)>)]) -> Stores {
    let mut s = Stores::default();
    for (region, rows) in regions {
        let m: HashMap<String, Row> = rows
            .iter()
            .map(|(id, r)| (id.to_string(), r.clone()))
            .collect();
        s.rows.insert(region.to_string(), m);
    }
    s.limits.insert("cmp_a".into(), (Some(10), 1));
    s
}

/// `SLOT` moved us → eu at t=100 (epoch 2).
fn moved() -> History {
    History::new(&[Move {
        slot: SLOT as u16,
        from: "us".into(),
        to: "eu".into(),
        new_epoch: 2,
        began_at: t(99),
        completed_at: t(100),
    }])
}

fn findings(s: &Stores, h: &History, recs: &[Record]) -> String {
    judge(s, h, recs).0.join("\n")
}

#[test]
fn a_healthy_move_passes() {
    let before = row("a", 1, 10);
    let after = row("b", 2, 200);
    let s = stores(&[
        ("us", vec![("r1", before.clone())]),
        ("eu", vec![("r1", before), ("r2", after)]),
    ]);
    let recs = [
        record("a", 201, Some("r1"), 9, 11),
        record("b", 201, Some("r2"), 199, 201),
    ];
    assert_eq!(findings(&s, &moved(), &recs), "");
}

#[test]
fn an_old_owner_writing_at_its_old_epoch_after_the_move_is_split_brain() {
    let before = row("a", 1, 10);
    let late = row("c", 1, 150);
    let s = stores(&[
        ("us", vec![("r1", before.clone()), ("r3", late)]),
        ("eu", vec![("r1", before)]),
    ]);
    let recs = [
        record("a", 201, Some("r1"), 9, 11),
        record("c", 201, Some("r3"), 149, 151),
    ];
    let f = findings(&s, &moved(), &recs);
    assert!(f.contains("after that epoch ended"), "{f}");
    assert!(f.contains("the slot's owner eu lacks it"), "{f}");
}

#[test]
fn a_row_the_copy_missed_is_found_even_if_written_in_time() {
    let missed = row("a", 1, 10);
    let s = stores(&[("us", vec![("r1", missed)]), ("eu", vec![])]);
    let f = findings(&s, &moved(), &[record("a", 201, Some("r1"), 9, 11)]);
    assert!(f.contains("eu lacks it"), "{f}");
}

#[test]
fn a_copy_that_differs_or_an_unknown_epoch_is_found() {
    let mut changed = row("a", 1, 10);
    changed.order = "tampered".into();
    let s = stores(&[
        ("us", vec![("r1", row("a", 1, 10))]),
        ("eu", vec![("r1", changed)]),
    ]);
    let f = findings(&s, &moved(), &[record("a", 201, Some("r1"), 9, 11)]);
    assert!(f.contains("differs"), "{f}");
    let s = stores(&[("us", vec![("r1", row("a", 5, 10))])]);
    let f = findings(
        &s,
        &History::default(),
        &[record("a", 201, Some("r1"), 9, 11)],
    );
    assert!(f.contains("an epoch no move created"), "{f}");
}

#[test]
fn a_pool_code_used_twice_and_caps_are_found() {
    let mut a = row("a", 1, 10);
    let mut b = row("b", 1, 11);
    a.pool_code = Some("CODE".into());
    b.pool_code = Some("CODE".into());
    let mut s = stores(&[("us", vec![("r1", a), ("r2", b)])]);
    s.limits.insert("cmp_a".into(), (Some(1), 1));
    let recs = [
        record("a", 201, Some("r1"), 9, 12),
        record("b", 201, Some("r2"), 9, 12),
    ];
    let f = findings(&s, &History::default(), &recs);
    assert!(f.contains("code CODE used 2 times"), "{f}");
    assert!(f.contains("over total_limit 1"), "{f}");
    s.limits.clear();
    let f = findings(&s, &History::default(), &recs);
    assert!(f.contains("no campaign row in any region"), "{f}");
}

#[test]
fn a_user_over_the_per_user_limit_is_found() {
    let mut second = row("a", 1, 12);
    second.key = "key-a2".into();
    let s = stores(&[("us", vec![("r1", row("a", 1, 10)), ("r2", second)])]);
    let mut r2 = record("a", 201, Some("r2"), 11, 13);
    r2.key = "key-a2".into();
    let f = findings(
        &s,
        &History::default(),
        &[record("a", 201, Some("r1"), 9, 11), r2],
    );
    assert!(f.contains("holds 2 uses"), "{f}");
}

#[test]
fn a_retry_of_a_committed_key_must_replay_not_refuse() {
    let s = stores(&[("us", vec![("r1", row("a", 1, 10))])]);
    let lost = record("a", 0, None, 9, 30);
    let refused = record("a", 410, None, 31, 32);
    let f = findings(&s, &History::default(), &[lost.clone(), refused]);
    assert!(f.contains("instead of a replay"), "{f}");
    let replay = record("a", 200, Some("r1"), 31, 32);
    assert_eq!(findings(&s, &History::default(), &[lost, replay]), "");
}

#[test]
fn a_row_whose_request_was_refused_or_never_made_is_found() {
    let s = stores(&[("us", vec![("r1", row("a", 1, 10))])]);
    let f = findings(&s, &History::default(), &[record("a", 410, None, 9, 11)]);
    assert!(f.contains("never acknowledged"), "{f}");
    let f = findings(&s, &History::default(), &[]);
    assert!(f.contains("never acknowledged"), "{f}");
}

#[test]
fn an_acknowledgement_without_its_row_is_found() {
    let s = stores(&[("us", vec![])]);
    let f = findings(
        &s,
        &History::default(),
        &[record("a", 201, Some("r9"), 9, 11)],
    );
    assert!(f.contains("has no row"), "{f}");
}

#[test]
fn a_slot_active_in_two_regions_at_the_end_is_found() {
    let mut s = stores(&[("us", vec![]), ("eu", vec![])]);
    s.active_slots.insert(SLOT, vec!["us".into(), "eu".into()]);
    let f = findings(&s, &History::default(), &[]);
    assert!(f.contains("active in"), "{f}");
    let _ = Duration::zero();
}
