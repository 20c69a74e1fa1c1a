//! The processes' logs are plain text an operator can grep: no terminal
//! colour codes when they write to a file. With the codes, `region=us` is
//! written as `ESC[3mregion ESC[0m ESC[2m= ESC[0m us`, so
//! `grep 'region=us'` (or `slot=…`, `campaign=…`, as the runbook says)
//! finds nothing in a node's log.

use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use std::path::Path;

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).expect("read log")).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_router_and_raft_logs_are_plain_greppable_text() {
    let h = Harness::start("log-files").await;
    // A redeem forwarded across regions, so every kind of process has
    // written something while serving.
    shared_campaign(&h, "eu", "PLAINLOGS", 5).await;
    let records = burst(
        &h,
        vec![("us".into(), "log-u".into(), "PLAINLOGS".into())],
        1,
    )
    .await;
    assert!(records.iter().any(|r| r.status == 201), "{records:?}");

    let mut logs = Vec::new();
    for (name, r) in &h.cluster.regions {
        logs.push((format!("{name} node"), read(&r.node.log)));
        logs.push((format!("{name} router"), read(&r.router.log)));
    }
    for (i, m) in h.cluster.raft.iter().enumerate() {
        logs.push((format!("raft member {i}"), read(&m.log)));
    }
    for (who, text) in &logs {
        assert!(!text.trim().is_empty(), "the {who} wrote no log");
        if let Some(line) = text.lines().find(|l| l.contains('\u{1b}')) {
            panic!("the {who}'s log holds terminal escape codes: {line:?}");
        }
    }
    for name in h.cluster.regions.keys() {
        let (_, node) = logs
            .iter()
            .find(|(who, _)| *who == format!("{name} node"))
            .expect("node log");
        assert!(
            node.contains(&format!("region={name}")),
            "`grep region={name}` finds nothing in the {name} node's log"
        );
    }
}
