//! `/livez`, `/readyz` and `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use openraft::ServerState;

use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Ready when a leader is known and no peer refused our credentials recently.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let leader = s.raft.metrics().borrow().current_leader;
    match (leader, s.counters.peer_credentials_failing()) {
        (_, true) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: a peer refused our member token\n".to_owned(),
        ),
        (None, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader\n".to_owned(),
        ),
        (Some(id), _) => (StatusCode::OK, format!("ready: leader {id}\n")),
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let m = s.raft.metrics().borrow().clone();
    let c = &s.counters;
    let gauges: [(&str, &str, i64); 9] = [
        (
            "coupon_raft_term",
            "Current raft term.",
            m.current_term as i64,
        ),
        (
            "coupon_raft_current_leader",
            "Id of the known leader, -1 if none.",
            m.current_leader.map_or(-1, |l| l as i64),
        ),
        (
            "coupon_raft_is_leader",
            "1 if this member is the leader.",
            i64::from(m.state == ServerState::Leader),
        ),
        (
            "coupon_raft_last_log_index",
            "Index of the last log entry.",
            m.last_log_index.map_or(-1, |i| i as i64),
        ),
        (
            "coupon_raft_last_applied_index",
            "Index of the last applied entry.",
            m.last_applied.map_or(-1, |l| l.index as i64),
        ),
        (
            "coupon_raft_snapshot_index",
            "Last log index in the latest snapshot.",
            m.snapshot.map_or(-1, |l| l.index as i64),
        ),
        (
            "coupon_raft_purged_index",
            "Last purged log index.",
            m.purged.map_or(-1, |l| l.index as i64),
        ),
        (
            "coupon_raft_map_version",
            "Version of the applied ownership map.",
            s.sm.current_map().version as i64,
        ),
        ("coupon_raft_node_id", "This member's id.", s.node_id as i64),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let _ = writeln!(out, "# HELP coupon_raft_auth_failures_total Requests refused for bad or missing credentials.\n# TYPE coupon_raft_auth_failures_total counter");
    for (kind, v) in [
        ("member", c.member_auth_failures.load(Ordering::Relaxed)),
        ("admin", c.admin_auth_failures.load(Ordering::Relaxed)),
        (
            "peer_rejected_ours",
            c.peer_auth_rejections.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "coupon_raft_auth_failures_total{{kind=\"{kind}\"}} {v}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
