//! Unit tests of the pure apply logic.

use super::*;

fn region(id: &str) -> Region {
    Region {
        id: RegionId::parse(id).unwrap(),
        router: format!("http://{id}-router"),
        node: format!("http://{id}-node"),
        key_ids: vec![format!("{id}-k1")],
        standby: None,
    }
}

fn req(id: &str, command: Command) -> Request {
    Request {
        request_id: id.into(),
        command,
    }
}

fn initialized(slot_count: u32) -> MapState {
    let mut s = MapState::default();
    let regions = vec![region("us"), region("eu"), region("ap")];
    s.apply(&req(
        "init",
        Command::Init {
            regions,
            slot_count,
        },
    ))
    .0
    .unwrap();
    s
}

fn rid(s: &str) -> RegionId {
    RegionId::parse(s).unwrap()
}

#[test]
fn init_spreads_slots_round_robin_at_epoch_one() {
    let s = initialized(1024);
    assert_eq!(s.map.version, 1);
    assert_eq!(s.map.slots.len(), 1024);
    for (i, e) in s.map.slots.iter().enumerate() {
        assert_eq!(e.region, rid(["us", "eu", "ap"][i % 3]));
        assert_eq!(e.epoch, 1);
        assert_eq!(e.state, SlotState::Active);
    }
}

#[test]
fn second_init_is_refused_and_changes_nothing() {
    let mut s = initialized(8);
    let before = s.map.clone();
    let cmd = Command::Init {
        regions: vec![region("xx")],
        slot_count: 4,
    };
    let err = s.apply(&req("init-2", cmd)).0.unwrap_err();
    assert_eq!(err.code, RejectCode::AlreadyInitialized);
    assert_eq!(s.map, before);
}

#[test]
fn begin_then_complete_bumps_epoch_by_exactly_one() {
    let mut s = initialized(8);
    let (r, _) = s.apply(&req(
        "b",
        Command::BeginMove {
            slot: 0,
            to: rid("eu"),
        },
    ));
    assert_eq!(r.unwrap().slot.unwrap().state, SlotState::Moving);
    assert_eq!(s.map.moves[&0].from, rid("us"));
    let (r, _) = s.apply(&req("c", Command::CompleteMove { slot: 0 }));
    let slot = r.unwrap().slot.unwrap();
    assert_eq!(
        (slot.region, slot.epoch, slot.state),
        (rid("eu"), 2, SlotState::Active)
    );
    assert!(s.map.moves.is_empty());
    assert_eq!(s.map.move_history[0].state, MoveState::Completed);
    assert_eq!(s.map.version, 3);
}

#[test]
fn abort_restores_owner_and_epoch() {
    let mut s = initialized(8);
    let before = s.map.slots[1].clone();
    s.apply(&req(
        "b",
        Command::BeginMove {
            slot: 1,
            to: rid("ap"),
        },
    ))
    .0
    .unwrap();
    s.apply(&req("a", Command::AbortMove { slot: 1 }))
        .0
        .unwrap();
    assert_eq!(s.map.slots[1], before);
    assert_eq!(s.map.move_history[0].state, MoveState::Aborted);
}

#[test]
fn replaying_a_request_id_returns_the_original_result_and_changes_nothing() {
    let mut s = initialized(8);
    let begin = req(
        "b",
        Command::BeginMove {
            slot: 0,
            to: rid("eu"),
        },
    );
    let (first, replayed) = s.apply(&begin);
    assert!(!replayed);
    s.apply(&req("c", Command::CompleteMove { slot: 0 }))
        .0
        .unwrap();
    let after = s.map.clone();
    let (again, replayed) = s.apply(&begin);
    assert!(replayed);
    assert_eq!(again, first);
    assert_eq!(s.map, after);
    let (again, _) = s.apply(&req("c", Command::CompleteMove { slot: 0 }));
    assert_eq!(again.unwrap().slot.unwrap().epoch, 2);
    assert_eq!(s.map, after);
}

#[test]
fn moves_are_validated() {
    let mut s = MapState::default();
    let e = s
        .apply(&req("x", Command::CompleteMove { slot: 0 }))
        .0
        .unwrap_err();
    assert_eq!(e.code, RejectCode::NotInitialized);
    let mut s = initialized(8);
    let cases = [
        (
            Command::BeginMove {
                slot: 8,
                to: rid("eu"),
            },
            RejectCode::SlotOutOfRange,
        ),
        (
            Command::BeginMove {
                slot: 0,
                to: rid("zz"),
            },
            RejectCode::UnknownRegion,
        ),
        (
            Command::BeginMove {
                slot: 0,
                to: rid("us"),
            },
            RejectCode::SameRegion,
        ),
        (Command::CompleteMove { slot: 0 }, RejectCode::SlotNotMoving),
        (Command::AbortMove { slot: 0 }, RejectCode::SlotNotMoving),
    ];
    for (i, (cmd, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            s.apply(&req(&format!("r{i}"), cmd)).0.unwrap_err().code,
            code
        );
    }
    s.apply(&req(
        "b",
        Command::BeginMove {
            slot: 0,
            to: rid("eu"),
        },
    ))
    .0
    .unwrap();
    let e = s
        .apply(&req(
            "b2",
            Command::BeginMove {
                slot: 0,
                to: rid("ap"),
            },
        ))
        .0
        .unwrap_err();
    assert_eq!(e.code, RejectCode::SlotNotActive);
    assert_eq!(s.map.version, 2, "rejections do not bump the version");
}

#[test]
fn add_region_refuses_duplicates() {
    let mut s = initialized(4);
    s.apply(&req(
        "a",
        Command::AddRegion {
            region: region("sa"),
        },
    ))
    .0
    .unwrap();
    let e = s
        .apply(&req(
            "a2",
            Command::AddRegion {
                region: region("sa"),
            },
        ))
        .0
        .unwrap_err();
    assert_eq!(e.code, RejectCode::RegionExists);
    assert_eq!(s.map.regions.len(), 4);
}

#[test]
fn dedup_table_is_bounded() {
    let mut s = initialized(4);
    for i in 0..DEDUP_CAPACITY + 5 {
        let _ = s.apply(&req(&format!("x{i}"), Command::AbortMove { slot: 0 }));
    }
    assert_eq!(s.applied.len(), DEDUP_CAPACITY);
    assert!(!s.applied.contains_key("init"));
}

#[test]
fn region_ids_are_parsed() {
    assert!(RegionId::parse("us-east-1").is_ok());
    for bad in ["", "US", "1us", "u s", &"a".repeat(33)] {
        assert!(RegionId::parse(bad).is_err(), "{bad:?}");
    }
}

fn with_standbys() -> MapState {
    let mut s = MapState::default();
    let mut regions = vec![region("us"), region("eu"), region("ap")];
    for (r, host) in regions.iter_mut().zip(["eu", "ap", "us"]) {
        r.standby = Some(crate::model::Standby {
            host: rid(host),
            node: format!("http://{}-standby", r.id),
        });
    }
    s.apply(&req(
        "init",
        Command::Init {
            regions,
            slot_count: 6,
        },
    ))
    .0
    .unwrap();
    s
}

fn renew(s: &mut MapState, r: &str, timeline: u64, lsn: u64) -> CommandResult {
    s.apply(&req(
        "renew",
        Command::RenewLease {
            region: rid(r),
            timeline,
            acked_lsn: lsn,
            degraded: false,
        },
    ))
    .0
}

#[test]
fn renewals_bump_the_lease_not_the_map_version_and_are_not_deduplicated() {
    let mut s = with_standbys();
    let v = s.map.version;
    renew(&mut s, "eu", 1, 100).unwrap();
    renew(&mut s, "eu", 1, 90).unwrap();
    let l = &s.map.leases[&rid("eu")];
    assert_eq!((l.seq, l.timeline, l.acked_lsn), (2, 1, 100));
    assert_eq!(s.map.version, v);
}

#[test]
fn a_takeover_is_refused_if_the_lease_was_renewed_since_it_was_judged() {
    let mut s = with_standbys();
    renew(&mut s, "eu", 1, 100).unwrap();
    renew(&mut s, "eu", 1, 100).unwrap();
    let begin = |seq| Command::BeginFailover {
        region: rid("eu"),
        lease_seq: Some(seq),
        planned: false,
    };
    let err = s.apply(&req("f1", begin(1))).0.unwrap_err();
    assert_eq!(err.code, RejectCode::LeaseRenewed);
    s.apply(&req("f2", begin(2))).0.unwrap();
    // eu's slots (1 and 4 of 6) are failing over; others untouched.
    let states: Vec<_> = s.map.slots.iter().map(|e| e.state).collect();
    assert_eq!(states[1], SlotState::FailingOver);
    assert_eq!(states[4], SlotState::FailingOver);
    assert_eq!(states[0], SlotState::Active);
    // The old primary can no longer renew; a second takeover is refused.
    assert_eq!(
        renew(&mut s, "eu", 1, 100).unwrap_err().code,
        RejectCode::FailoverInProgress
    );
    let err = s.apply(&req("f3", begin(2))).0.unwrap_err();
    assert_eq!(err.code, RejectCode::FailoverInProgress);
}

#[test]
fn completing_a_takeover_bumps_epochs_moves_the_endpoint_and_fences_the_old_timeline() {
    let mut s = with_standbys();
    renew(&mut s, "eu", 1, 100).unwrap();
    let begin = Command::BeginFailover {
        region: rid("eu"),
        lease_seq: Some(1),
        planned: false,
    };
    s.apply(&req("f", begin)).0.unwrap();
    let complete = |t| Command::CompleteFailover {
        region: rid("eu"),
        timeline: t,
    };
    // The promoted database must be on a newer timeline.
    let err = s.apply(&req("c1", complete(1))).0.unwrap_err();
    assert_eq!(err.code, RejectCode::StaleTimeline);
    s.apply(&req("c2", complete(2))).0.unwrap();
    assert_eq!(s.map.slots[1].epoch, 2);
    assert_eq!(s.map.slots[1].state, SlotState::Active);
    assert_eq!(s.map.slots[0].epoch, 1);
    let eu = s.map.region(&rid("eu")).unwrap();
    assert_eq!(eu.node, "http://eu-standby");
    assert!(eu.standby.is_none());
    assert_eq!(
        renew(&mut s, "eu", 1, 100).unwrap_err().code,
        RejectCode::StaleTimeline
    );
    renew(&mut s, "eu", 2, 0).unwrap();
    // Completing again is a no-op refusal, never a second epoch bump.
    let err = s.apply(&req("c3", complete(2))).0.unwrap_err();
    assert_eq!(err.code, RejectCode::NoFailover);
    assert_eq!(s.map.slots[1].epoch, 2);
}

#[test]
fn a_region_without_a_standby_cannot_be_taken_over() {
    let mut s = initialized(6);
    let err = s
        .apply(&req(
            "f",
            Command::BeginFailover {
                region: rid("eu"),
                lease_seq: None,
                planned: false,
            },
        ))
        .0
        .unwrap_err();
    assert_eq!(err.code, RejectCode::NoStandby);
}
