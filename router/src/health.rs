//! Peer credential checks: every few seconds the router calls each region's
//! `GET /v1/service/ping` with a service token minted for it. A 401 means
//! that region rejects our credentials: `/readyz` names it and
//! `coupon_router_peer_auth_rejected_total{peer}` counts it (docs/architecture.md §3.7).

use crate::state::{AppState, PeerStatus};
use axum::http::StatusCode;
use coupon_core::service_token::SERVICE_TOKEN_HEADER;
use std::time::{Duration, Instant};

/// Timeout of one ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(state.cfg.peer_check_ms));
    loop {
        tick.tick().await;
        check_all(&state).await;
    }
}

/// Pings every region of the map once, concurrently.
pub async fn check_all(state: &AppState) {
    let Some(maps) = state.maps() else { return };
    let map = maps.current();
    state
        .metrics
        .set_gauge("coupon_router_map_version", &[], map.version as f64);
    let mut set = tokio::task::JoinSet::new();
    for r in &map.regions {
        // Alerted counters start at 0 for every peer, so `increase()` sees
        // the first failure (a series born at its first increment has no
        // earlier sample to compare with).
        let peer = r.id.as_str();
        state.metrics.add(
            "coupon_router_peer_auth_rejected_total",
            &[("peer", peer)],
            0,
        );
        state
            .metrics
            .add("coupon_router_misdirected_total", &[("region", peer)], 0);
        for why in ["timeout", "connect", "transport", "in_flight_cap"] {
            state.metrics.add(
                "coupon_router_owner_unreachable_total",
                &[("region", peer), ("why", why)],
                0,
            );
        }
        let (st, region) = (state.clone(), r.id.to_string());
        set.spawn(async move {
            let status = ping(&st, &region).await;
            (region, status)
        });
    }
    while let Some(Ok((region, status))) = set.join_next().await {
        let ok = matches!(status, PeerStatus::Ok);
        if let PeerStatus::Rejected(why) = &status {
            tracing::error!(region = %state.region(), peer = %region, %why, "peer rejects our service credentials");
            state.metrics.inc(
                "coupon_router_peer_auth_rejected_total",
                &[("peer", &region)],
            );
        }
        state.metrics.set_gauge(
            "coupon_router_peer_ok",
            &[("peer", &region)],
            f64::from(u8::from(ok)),
        );
        state
            .peers
            .lock()
            .expect("peers lock")
            .insert(region, (Instant::now(), status));
    }
}

async fn ping(state: &AppState, region: &str) -> PeerStatus {
    let Some(node) = state.node_url(region) else {
        return PeerStatus::Unreachable("no node URL".into());
    };
    let res = state
        .http
        .get(format!("{node}/v1/service/ping"))
        .header(SERVICE_TOKEN_HEADER, state.signer.token(region))
        .timeout(PING_TIMEOUT)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => PeerStatus::Ok,
        Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
            PeerStatus::Rejected(r.text().await.unwrap_or_default())
        }
        Ok(r) => PeerStatus::Unreachable(format!("answered {}", r.status())),
        Err(e) => PeerStatus::Unreachable(e.to_string()),
    }
}

/// What keeps the router from being ready, by name; with `traffic`, peers
/// that are only unreachable do not count (see `/readyz?scope=traffic`).
pub fn problems(state: &AppState, traffic: bool) -> Vec<String> {
    let Some(maps) = state.maps() else {
        return vec!["ownership map: not loaded (raft unreachable)".into()];
    };
    let map = maps.current();
    let peers = state.peers.lock().expect("peers lock");
    let mut out = Vec::new();
    for r in &map.regions {
        match peers.get(r.id.as_str()) {
            None => out.push(format!("peer {}: not checked yet", r.id)),
            Some((_, PeerStatus::Ok)) => {}
            Some((_, PeerStatus::Rejected(_))) => {
                out.push(format!("peer {}: rejects our service credentials", r.id))
            }
            Some((_, PeerStatus::Unreachable(_))) if traffic => {}
            Some((_, PeerStatus::Unreachable(why))) => {
                out.push(format!("peer {}: unreachable ({why})", r.id))
            }
        }
    }
    out
}
