//! A member cut off in a minority (through the link proxies) cannot complete a write and
//! never answers a linearizable read with stale data; after healing it converges.

use crate::helpers::Cluster;
use crate::helpers::Opts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_in_a_minority_cannot_write_or_serve_a_stale_linearizable_read() {
    let c = Cluster::start(3, Opts::default()).await;
    c.init_map(1, 128).await;
    let cut = c.leader().await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != cut).collect();
    c.links.isolate(cut, &others);

    // The cut-off (old) leader cannot commit: the write is not acknowledged.
    let err = c
        .admin(cut)
        .begin_move("minority-write", 0, "eu")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            Some("write_timeout" | "no_leader" | "leader_unreachable")
        ),
        "unexpected answer to a minority write: {err}"
    );

    // The majority elects a leader and moves on.
    let new = c.leader_among(&others).await;
    assert_ne!(new, cut);
    let v = c.bump(others[0], "majority", 2).await;
    assert_eq!(v, 5);

    // The cut-off member refuses linearizable reads rather than serving version 1.
    for _ in 0..3 {
        match c.map(cut, "").await {
            Ok(m) => panic!(
                "cut-off member served a linearizable map (version {})",
                m.version
            ),
            Err((status, _)) => assert_eq!(status, 503),
        }
    }
    // Stale reads are allowed and say so by being old.
    assert_eq!(c.map(cut, "stale=ok").await.unwrap().version, 1);

    c.links.heal();
    let maps = c.converged(v).await;
    assert!(maps.iter().all(|m| m == &maps[0]));
    assert_eq!(c.leader().await, new);
    // The unacknowledged minority write did not survive; retrying its id applies it once.
    let out = c
        .admin(cut)
        .begin_move("minority-write", 0, "eu")
        .await
        .expect("retry");
    assert_eq!((out.version, out.replayed), (v + 1, false));
    let again = c
        .admin(others[1])
        .begin_move("minority-write", 0, "eu")
        .await
        .expect("replay");
    assert_eq!((again.version, again.replayed), (v + 1, true));
    c.converged(v + 1).await;
}
