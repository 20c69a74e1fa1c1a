//! Guards docs/architecture.md §3.7 "bad inter-region credentials → readiness fails and
//! a metric counts it": `ap`'s service key is replaced with a wrong one; its
//! router's forwards fail (401 at the node → 503 to the client, never a
//! redemption), its `/readyz` names the peers that reject it, the nodes count
//! `coupon_service_auth_failures_total{peer="ap"}`, `couponctl doctor` reports
//! it; other routers keep working and nothing is redeemed twice.

use super::helpers::{attempts, check, eventually, get_json, metrics, EU_CODE};
use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use coupon_testkit::cluster::keys;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_with_a_wrong_service_key_fails_closed_and_is_reported() {
    let mut h = Harness::start("bad-key").await;
    shared_campaign(&h, "eu", EU_CODE, 50).await;
    let plan = attempts(&mut h, &["ap"], EU_CODE, "good", 3);
    let good = burst(&h, plan, 3).await;
    assert!(good.iter().all(|r| r.status == 201), "{good:?}");

    let wrong = keys::wrong_key(&h.cluster.root, "ap").unwrap();
    let published = h.cluster.keys_dir.join(format!("{}.pem", keys::kid("ap")));
    std::fs::copy(&wrong, &published).unwrap();
    let router = &mut h.cluster.region_mut("ap").router;
    router.restart().unwrap();
    let ap = h.router("ap");
    let http = h.http.clone();
    eventually(
        Duration::from_secs(20),
        "ap router names the rejecting peer",
        || {
            let (http, ap) = (http.clone(), ap.clone());
            async move {
                let (status, body) = get_json(&http, &format!("{ap}/readyz")).await;
                status == 503
                    && body
                        .to_string()
                        .contains("peer eu: rejects our service credentials")
            }
        },
    )
    .await;

    // A rejected key is our own fault: not ready for traffic either, so a
    // rollout with a wrong key stalls instead of taking traffic.
    let (status, body) = get_json(&h.http, &format!("{ap}/readyz?scope=traffic")).await;
    assert_eq!(status, 503, "wrong key, yet ready for traffic: {body}");

    let plan = attempts(&mut h, &["ap"], EU_CODE, "bad", 5);
    let bad = burst(&h, plan, 5).await;
    for r in &bad {
        assert!(
            matches!(r.status, 401 | 503),
            "seed {}: forwarded with a wrong key {r:?}",
            h.seed
        );
    }
    let m = metrics(&h.http, &h.node("eu")).await;
    assert!(
        m.contains("coupon_service_auth_failures_total{peer=\"ap\"}"),
        "eu node metrics:\n{m}"
    );
    let m = metrics(&h.http, &ap).await;
    assert!(
        m.contains("coupon_router_peer_auth_rejected_total{peer=\"eu\"}"),
        "ap router metrics:\n{m}"
    );

    let file = h.cluster.root.join("dev-cluster.json");
    let issuer = serde_json::json!({"alg": "EdDSA", "private_key_pem": h.cluster.root.join("issuer.pem"),
        "iss": h.issuer.iss, "aud": h.issuer.aud});
    std::fs::write(&file, h.cluster.cluster_file(issuer).to_string()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let ctl = exe.parent().unwrap().parent().unwrap().join("couponctl");
    let out = std::process::Command::new(ctl)
        .arg("doctor")
        .arg("--cluster-file")
        .arg(&file)
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "doctor passed a wrong key:\n{text}");
    assert!(
        text.contains("FAIL  ap credentials at eu's node"),
        "doctor output:\n{text}"
    );
    assert!(text.contains("FAIL  ap router"), "doctor output:\n{text}");

    let plan = attempts(&mut h, &["us", "eu"], EU_CODE, "other", 4);
    let others = burst(&h, plan, 4).await;
    assert!(others.iter().all(|r| r.status == 201), "{others:?}");
    let all: Vec<_> = good.into_iter().chain(bad).chain(others).collect();
    let summary = check(&h, &all, &[]).await;
    assert_eq!(summary.active.values().sum::<i64>(), 3 + 8);
}
