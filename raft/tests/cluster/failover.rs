//! Leader loss: SIGKILL (crash, restart, catch up) and SIGSTOP (pause past the election
//! timeout, resume, step down) — no acknowledged write lost, no divergent linearizable read.

use std::time::Duration;

use tokio::time::{sleep, Instant};

use crate::helpers::{signal, Cluster, Opts, ELECTION_MAX_MS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_a_new_leader_and_the_restarted_member_catches_up() {
    let mut c = Cluster::start(3, Opts::default()).await;
    c.init_map(1, 128).await;
    let v0 = c.bump(1, "before", 2).await;
    let old = c.leader().await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != old).collect();

    let t = Instant::now();
    c.kill(old);
    let new = c.leader_among(&others).await;
    let took = t.elapsed();
    assert_ne!(new, old);
    assert!(
        took < Duration::from_millis(4 * ELECTION_MAX_MS),
        "election took {took:?}"
    );

    let v1 = c.bump(others[0], "after", 3).await;
    assert_eq!(v1, v0 + 6, "every acknowledged write applied exactly once");

    c.start_member(old).await;
    let maps = c.converged(v1).await;
    assert!(maps.iter().all(|m| m == &maps[0]));
    assert_eq!(
        c.leader().await,
        new,
        "the restarted member follows the new leader"
    );
    assert_eq!(
        c.map(old, "")
            .await
            .expect("linearizable read on the restarted member"),
        maps[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_steps_down_after_resume_and_no_write_is_lost() {
    let c = Cluster::start(3, Opts::default()).await;
    c.init_map(1, 128).await;
    let old = c.leader().await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != old).collect();

    signal(c.member(old).pid(), libc::SIGSTOP);
    sleep(Duration::from_millis(2 * ELECTION_MAX_MS)).await;
    let new = c.leader_among(&others).await;
    assert_ne!(new, old);
    let v = c.bump(new, "paused", 3).await;
    assert_eq!(v, 7);

    signal(c.member(old).pid(), libc::SIGCONT);
    // From the moment it resumes, every linearizable answer of the old leader is current.
    let until = Instant::now() + Duration::from_secs(4);
    let mut served = 0;
    while Instant::now() < until {
        match c.map(old, "").await {
            Ok(m) => {
                assert!(
                    m.version >= v,
                    "old leader served version {} < {v}",
                    m.version
                );
                served += 1;
            }
            Err((status, body)) => assert_eq!(status, 503, "unexpected answer: {body}"),
        }
        sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served > 0,
        "the resumed member never answered a linearizable read"
    );
    assert_eq!(c.leader().await, new, "the resumed member stepped down");
    let maps = c.converged(v).await;
    assert!(maps.iter().all(|m| m == &maps[0]));
}
