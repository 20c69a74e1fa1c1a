//! Every metric name that `deploy/monitoring/` (alert rules and the Grafana
//! dashboard) uses is exported by a running node, router or raft member: an
//! alert on a name nobody exports never fires, silently.

use coupon_chaos_tests::workload::{burst, shared_campaign};
use coupon_chaos_tests::Harness;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

/// Every `coupon_…` token in the text: metric names (our metrics all carry
/// the prefix; label values and rule names do not start with it).
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("coupon_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.insert(tail[..len].to_owned());
        }
        rest = &tail[len..];
    }
    out
}

/// Series names in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_the_alerts_and_dashboard_use_is_exported() {
    let mut used = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(monitoring_dir()).expect("deploy/monitoring") {
        let path = entry.expect("entry").path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") {
            files += 1;
            used.extend(metric_tokens(
                &std::fs::read_to_string(&path).expect("read"),
            ));
        }
    }
    assert!(files >= 2 && used.len() >= 10, "{files} files, {used:?}");

    let h = Harness::start("metric-names").await;
    // Traffic, so request counters and histograms have series: a redeem
    // forwarded across regions, and a forged service token at a node.
    let c = shared_campaign(&h, "eu", "BLACKFRI100", 5).await;
    let campaign = c["campaign_id"].as_str().expect("campaign id").to_owned();
    let plan = ["us", "eu", "ap"]
        .map(|via| (via.to_owned(), format!("m-{via}"), "BLACKFRI100".to_owned()))
        .to_vec();
    let records = burst(&h, plan, 3).await;
    assert!(records.iter().any(|r| r.status == 201), "{records:?}");
    // The drift gauge is set by a reconcile pass (periodic, or on demand).
    let rec = h
        .http
        .post(format!(
            "{}/v1/campaigns/{campaign}/reconcile",
            h.router("us")
        ))
        .bearer_auth(h.issuer.admin())
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("reconcile");
    assert_eq!(rec.status(), 200, "{:?}", rec.text().await);
    let forged = h
        .http
        .get(format!("{}/v1/service/ping", h.node("eu")))
        .header(
            coupon_core::service_token::SERVICE_TOKEN_HEADER,
            "not-a-token",
        )
        .send()
        .await
        .expect("ping");
    assert_eq!(forged.status(), 401);

    let mut have = BTreeSet::new();
    for r in h.cluster.regions.values() {
        have.extend(exported(&scrape(&h.http, &r.node_url()).await));
        have.extend(exported(&scrape(&h.http, &r.router.url()).await));
    }
    for m in &h.cluster.raft {
        have.extend(exported(&scrape(&h.http, &m.url()).await));
    }
    let missing: Vec<_> = used.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "deploy/monitoring uses metrics nobody exports: {missing:?}\nexported: {have:?}"
    );
}

#[test]
fn metric_tokens_finds_names_and_skips_longer_words() {
    let t = metric_tokens(
        r#"rate(coupon_http_requests_total{x="y"}[5m]) my_coupon_x coupon_raft_term"#,
    );
    let want: BTreeSet<String> = ["coupon_http_requests_total", "coupon_raft_term"]
        .map(String::from)
        .into();
    assert_eq!(t, want);
}
