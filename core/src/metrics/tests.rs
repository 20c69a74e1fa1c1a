//! The exposition is standard Prometheus text: HELP and TYPE for every
//! series, label values escaped, histograms with buckets, sum and count.

use super::catalogue::{self, METRICS};
use super::Metrics;

#[test]
fn the_exposition_has_help_and_type_lines_and_escapes_label_values() {
    let m = Metrics::new();
    m.inc(
        "coupon_http_requests_total",
        &[("route", "a\"b\\c\nd"), ("status", "200"), ("reason", "ok")],
    );
    m.set_gauge("coupon_router_map_version", &[], 7.0);
    m.observe_ms("coupon_http_request_ms", &[("route", "/x")], 3.0);
    let text = m.render();
    for (name, kind) in [
        ("coupon_http_requests_total", "counter"),
        ("coupon_router_map_version", "gauge"),
        ("coupon_http_request_ms", "histogram"),
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "HELP of {name}:\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "TYPE of {name}:\n{text}"
        );
    }
    // `"` → `\"`, `\` → `\\`, newline → `\n` (the text format's escapes).
    assert!(
        text.contains(r#"route="a\"b\\c\nd""#),
        "label value escaped:\n{text}"
    );
    assert!(
        text.contains("coupon_http_request_ms_bucket{route=\"/x\",le=\"5\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("coupon_http_request_ms_count{route=\"/x\"} 1"),
        "{text}"
    );
    assert!(text.contains("coupon_router_map_version 7"), "{text}");
}

#[test]
fn counts_add_up_per_series_and_instances_are_separate() {
    let (a, b) = (Metrics::new(), Metrics::new());
    for _ in 0..3 {
        a.inc("coupon_claims_total", &[("result", "claimed")]);
    }
    a.add("coupon_claims_total", &[("result", "given_back")], 2);
    b.inc("coupon_claims_total", &[("result", "claimed")]);
    let text = a.render();
    assert!(
        text.contains("coupon_claims_total{result=\"claimed\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("coupon_claims_total{result=\"given_back\"} 2"),
        "{text}"
    );
    assert!(b
        .render()
        .contains("coupon_claims_total{result=\"claimed\"} 1"));
}

/// Every `"coupon_…"` metric name in the node's and router's sources is in
/// the catalogue (so it has HELP text and a stable, listed name).
#[test]
fn every_metric_name_used_in_the_code_is_catalogued() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names = Vec::new();
    for dir in ["node/src", "router/src", "core/src"] {
        collect(&root.join(dir), &mut names);
    }
    assert!(names.len() > 10, "found the metric names: {names:?}");
    for n in names {
        assert!(
            catalogue::find(&n).is_some(),
            "metric `{n}` is not in catalogue::METRICS"
        );
    }
    assert_eq!(
        METRICS.len(),
        METRICS
            .iter()
            .map(|m| m.0)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        "catalogue names are unique"
    );
}

fn collect(dir: &std::path::Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("read source dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("catalogue.rs") {
            let text = std::fs::read_to_string(&p).expect("read source");
            for part in text.split("\"coupon_").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && part[name.len()..].starts_with('"') {
                    out.push(format!("coupon_{name}"));
                }
            }
        }
    }
}
