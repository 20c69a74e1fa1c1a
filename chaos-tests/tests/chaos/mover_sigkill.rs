//! Guards docs/architecture.md §7's promise that a move ends with exactly
//! one owner whatever crashed when: the mover (`couponctl slot move`, a real
//! process) is SIGKILLed at each step of a move — after raft's begin, after
//! the target recorded the move, after the freeze, in the middle of the copy
//! (its transaction open), after the copy, after the activation, after
//! raft's complete — while redeem traffic runs through all three routers.
//! At each crash point at most one region's Postgres holds the slot active;
//! a re-run finishes the move (or, asked to `--abort` before activation,
//! rolls it back; asked after activation, completes it instead); the map
//! and the stores then agree on one owner, and the checker finds every
//! acknowledged redemption exactly once, written by the owner of its epoch.

use super::helpers::{attempts, check, tally, US_CODE, US_SLOT};
use coupon_chaos_tests::checker::Move;
use coupon_chaos_tests::moves::{active_owners, cluster_file, couponctl, owner};
use coupon_chaos_tests::workload::{paced, retry_ambiguous, shared_campaign};
use coupon_chaos_tests::Harness;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each step the mover is killed after, and whether the re-run asks to
/// abort (refused once the target is active: the move completes instead).
const KILLS: [(&str, bool); 8] = [
    ("begun", false),
    ("prepared", false),
    ("frozen", true),
    ("frozen", false),
    ("mid-copy", false),
    ("copied", false),
    ("activated", true),
    ("completed", false),
];

/// Runs the mover until it reports reaching `step`, then SIGKILLs it.
fn kill_after(file: &std::path::Path, to: &str, step: &str) {
    let mut child = Command::new(couponctl())
        .args(["slot", "move", "--slot", &US_SLOT.to_string(), "--to", to])
        .args(["--stop-after", step, "--cluster-file"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the mover");
    let out = child.stdout.take().expect("mover stdout");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = BufReader::new(out).lines();
    loop {
        let line = lines.next().expect("mover output").expect("mover line");
        if line.starts_with("mover stopped after") {
            break;
        }
        assert!(Instant::now() < deadline, "mover never reached {step}");
    }
    child.kill().expect("SIGKILL the mover");
    child.wait().expect("reap the mover");
}

/// Re-runs the mover to its end; returns its output.
fn rerun(file: &std::path::Path, to: &str, abort: bool) -> String {
    let mut cmd = Command::new(couponctl());
    cmd.args(["slot", "move", "--slot", &US_SLOT.to_string()]);
    if abort {
        cmd.arg("--abort");
    } else {
        cmd.args(["--to", to]);
    }
    let out = cmd
        .arg("--cluster-file")
        .arg(file)
        .output()
        .expect("re-run the mover");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "re-run failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mover_killed_at_any_step_and_run_again_leaves_one_owner_and_every_redemption() {
    let mut h = Harness::start("mover-sigkill").await;
    shared_campaign(&h, "us", US_CODE, 2_000).await;
    let file = cluster_file(&h);
    let plan = attempts(&mut h, &["us", "eu", "ap"], US_CODE, "k", 240);
    let load = paced(&h, plan.clone(), 10, Duration::from_millis(40));
    let kills = async {
        let mut moves = Vec::new();
        let mut epoch = 1;
        for (step, abort) in KILLS {
            h.when_in_flight(1).await;
            let from = owner(&h, US_SLOT).await;
            let to = if from == "us" { "eu" } else { "us" };
            let began_at = chrono::Utc::now();
            let w = h.timeline.begin(&format!("mover killed after {step}"));
            let f = file.clone();
            let (t, s) = (to.to_owned(), step.to_owned());
            tokio::task::spawn_blocking(move || kill_after(&f, &t, &s))
                .await
                .unwrap();
            let owners = active_owners(&h, US_SLOT).await;
            assert!(
                owners.len() <= 1,
                "two active owners after a kill at {step} (seed {}): {owners:?}",
                h.seed
            );
            let (f, t) = (file.clone(), to.to_owned());
            let text = tokio::task::spawn_blocking(move || rerun(&f, &t, abort))
                .await
                .unwrap();
            h.timeline.end(w);
            let completed_at = chrono::Utc::now();
            let rolled_back = text.contains("rolled back");
            // Only a kill before activation can be rolled back.
            assert_eq!(
                rolled_back,
                abort && step == "frozen",
                "after {step} (abort {abort}): {text}"
            );
            if !rolled_back {
                epoch += 1;
                moves.push(Move {
                    slot: US_SLOT,
                    from: from.clone(),
                    to: to.to_owned(),
                    new_epoch: epoch,
                    began_at,
                    completed_at,
                });
            }
            let want = if rolled_back { from.as_str() } else { to };
            assert_eq!(owner(&h, US_SLOT).await, want, "map after {step}: {text}");
            assert_eq!(
                active_owners(&h, US_SLOT).await,
                vec![(want.to_owned(), epoch)],
                "stores after {step} (seed {}): {text}",
                h.seed
            );
        }
        moves
    };
    let (first, moves) = tokio::join!(load, kills);
    for r in &first {
        let ok = r.status == 201
            || r.status == 0
            || (r.status == 503 && r.retry_after.is_some() && r.elapsed < Duration::from_secs(4));
        assert!(ok, "seed {}: {r:?}\n{:?}", h.seed, tally(&first));
    }
    let retried = retry_ambiguous(&h, &first, 8, 8).await;
    let all: Vec<_> = first
        .iter()
        .cloned()
        .chain(retried.iter().cloned())
        .collect();
    let summary = check(&h, &all, &moves).await;
    eprintln!(
        "mover kills: first {:?}, retried {:?}, {} moves",
        tally(&first),
        tally(&retried),
        moves.len()
    );
    assert_eq!(
        summary.active.values().sum::<i64>(),
        plan.len() as i64,
        "one redemption per user (seed {})",
        h.seed
    );
}
