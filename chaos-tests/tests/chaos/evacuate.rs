//! Guards the evacuation drill (docs/architecture.md §7, docs/runbook.md):
//! `couponctl drill evacuate us` moves every slot of `us` to `eu` and `ap`
//! (eight at a time) while a burst runs through all three routers on a
//! capped `us` campaign — the first run is SIGKILLed a few seconds in and
//! run again, which must finish the job — then `couponctl drill rebalance`
//! spreads the slots back. Both reports must pass their invariant verdict; the cap holds
//! exactly (every seat won once, never more), every 201 is in the owner's
//! Postgres (the checker, over the two moves of the campaign's slot), and
//! every other answer is `exhausted` or a bounded 503 with `Retry-After`.

use super::helpers::{attempts, check, tally, US_CODE, US_SLOT};
use coupon_chaos_tests::checker::Move;
use coupon_chaos_tests::moves::{cluster_file, couponctl, owner};
use coupon_chaos_tests::workload::{paced, retry_ambiguous, shared_campaign};
use coupon_chaos_tests::Harness;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const SEATS: i64 = 1_500;
/// Attempts per router in each wave of the load (waves run until both
/// drills ended, so the whole evacuation and rebalance are under load).
const WAVE: usize = 30;

/// Starts an evacuation and SIGKILLs it (an operator's Ctrl-C, a lost
/// shell) once `moved_some` says it got going: moves may be left mid-way.
async fn interrupted(h: &Harness, file: &std::path::Path, us_slots: usize) {
    let mut child = Command::new(couponctl())
        .args([
            "drill",
            "evacuate",
            "us",
            "--json",
            "--concurrency",
            "8",
            "--cluster-file",
        ])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the drill");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if us_slots - slots_of(h, "us").await >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("SIGKILL the drill");
    child.wait().expect("reap the drill");
}

async fn slots_of(h: &Harness, region: &str) -> usize {
    let map: Value = h
        .http
        .get(format!("{}/v1/cluster/map", h.cluster.raft[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    map["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["region"] == region)
        .count()
}

/// Runs a drill; returns its JSON report.
fn drill(file: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(couponctl())
        .arg("drill")
        .args(args)
        .args(["--json", "--concurrency", "8", "--cluster-file"])
        .arg(file)
        .output()
        .expect("run the drill");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "drill report ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "drill {args:?} failed: {report:#}");
    report
}

/// The campaign slot's move as the checker needs it (the slot may have been
/// moved by the interrupted run, so it is read from the map, not a report).
async fn the_move(
    h: &Harness,
    from: &str,
    began_at: chrono::DateTime<chrono::Utc>,
    epoch: i64,
) -> Move {
    Move {
        slot: US_SLOT,
        from: from.to_owned(),
        to: owner(h, US_SLOT).await,
        new_epoch: epoch,
        began_at,
        completed_at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evacuating_a_region_under_a_burst_and_rebalancing_keeps_caps_and_every_redemption() {
    let mut h = Harness::start("evacuate").await;
    shared_campaign(&h, "us", US_CODE, SEATS).await;
    let file = cluster_file(&h);
    let us_slots = slots_of(&h, "us").await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut waves = Vec::new();
    for i in 0..200 {
        waves.push(attempts(
            &mut h,
            &["us", "eu", "ap"],
            US_CODE,
            &format!("w{i}"),
            WAVE,
        ));
    }
    let load = async {
        let mut out = Vec::new();
        for wave in &waves {
            if done.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            out.extend(paced(&h, wave.clone(), 24, Duration::from_millis(12)).await);
        }
        out
    };
    let drills = async {
        h.when_in_flight(1).await;
        let began = chrono::Utc::now();
        let w = h.timeline.begin("drill evacuate us");
        interrupted(&h, &file, us_slots).await;
        let f = file.clone();
        let out = tokio::task::spawn_blocking(move || drill(&f, &["evacuate", "us"]))
            .await
            .unwrap();
        h.timeline.end(w);
        let first = the_move(&h, "us", began, 2).await;
        let began = chrono::Utc::now();
        let f = file.clone();
        let back = tokio::task::spawn_blocking(move || drill(&f, &["rebalance"]))
            .await
            .unwrap();
        let m2 = the_move(&h, &first.to, began, 3).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, first, back, m2)
    };
    let (first, (out, m1, back, m2)) = tokio::join!(load, drills);
    assert!(
        first.len() > SEATS as usize,
        "the load outlasted the seats: {} attempts",
        first.len()
    );
    eprintln!(
        "evacuate: {} slots in {:.1} s, freeze {}, errors {}; rebalance: {} slots in {:.1} s, freeze {}",
        out["slots_moved"], out["total_s"].as_f64().unwrap(), out["freeze"], out["errors"],
        back["slots_moved"], back["total_s"].as_f64().unwrap(), back["freeze"]
    );
    let planned = out["slots_planned"].as_u64().unwrap() as usize;
    assert!(
        planned > 0 && planned < us_slots,
        "the re-run planned only what the killed run left ({planned} of {us_slots})"
    );
    assert_eq!(
        out["invariants"]["checks"][0]["ok"], true,
        "{:#}",
        out["invariants"]
    );
    assert_eq!(
        out["invariants"]["verdict"], "pass",
        "{:#}",
        out["invariants"]
    );
    assert_eq!(
        back["invariants"]["verdict"], "pass",
        "{:#}",
        back["invariants"]
    );
    assert_eq!(
        owner(&h, US_SLOT).await,
        "us",
        "rebalance put the slot home"
    );
    for r in &first {
        let ok = r.status == 201
            || r.status == 0
            || (r.status == 410 && r.reason.as_deref() == Some("exhausted"))
            || (r.status == 503 && r.retry_after.is_some() && r.elapsed < Duration::from_secs(4));
        assert!(ok, "seed {}: {r:?}\n{:?}", h.seed, tally(&first));
    }
    let retried = retry_ambiguous(&h, &first, 8, 8).await;
    let all: Vec<_> = first
        .iter()
        .cloned()
        .chain(retried.iter().cloned())
        .collect();
    eprintln!(
        "evacuate load: first {:?}, retried {:?}",
        tally(&first),
        tally(&retried)
    );
    let summary = check(&h, &all, &[m1, m2]).await;
    assert_eq!(
        summary.active.values().sum::<i64>(),
        SEATS,
        "exactly the cap of winners (seed {})",
        h.seed
    );
}
