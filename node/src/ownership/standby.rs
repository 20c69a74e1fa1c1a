//! A node whose database is a standby in recovery (docs/failover.md §1): it
//! answers 503 `unavailable` to everything (not ready, alive) and watches
//! the raft map. When its region is `failing_over` to it, it runs the
//! takeover ([`super::takeover`]); it starts serving only once the map names
//! it as the region's node, so a database promoted by hand outside a
//! takeover never gives the region two serving nodes.

use super::{replication, takeover, RegionsConfig};
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use coupon_raft::client::{MapClient, MapClientOptions};
use coupon_raft::model::FailoverState;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(200);

fn idle_app(region: String) -> Router {
    let busy = move || {
        let region = region.clone();
        async move {
            let body = json!({"type": "about:blank", "title": "Service Unavailable", "status": 503,
                "code": "unavailable",
                "detail": format!("this is region {region}'s standby node: it serves only after a takeover promotes it")});
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, "application/problem+json"),
                    (header::RETRY_AFTER, "1"),
                ],
                Json(body),
            )
        }
    };
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"ready": false, "standby": true, "failing": ["standby (not promoted)"]})),
                )
            }),
        )
        .route("/metrics", get(|| async { "coupon_standby_node 1\n" }))
        .fallback(busy)
}

/// Serves the idle app on `listener` until this node is the region's
/// primary node (takeover committed in raft). Returns at once when the
/// database is a primary: an old primary restarted after a takeover is
/// fenced by its lease instead (its timeline was replaced).
pub async fn idle_until_primary(
    listener: &std::net::TcpListener,
    region: &str,
    cfg: &RegionsConfig,
    db: &PgPool,
) -> std::io::Result<()> {
    if cfg.raft_urls.is_empty() {
        return Ok(());
    }
    if !replication::in_recovery(db).await.unwrap_or(false) {
        // A primary: idle only to finish a takeover of ours that was cut
        // short after the promotion (the map says failing_over, to us).
        let connect = MapClient::connect(cfg.raft_urls.clone(), MapClientOptions::default());
        let Ok(Ok(maps)) = tokio::time::timeout(Duration::from_secs(5), connect).await else {
            return Ok(());
        };
        let unfinished = maps.current().failovers.iter().any(|f| {
            f.region.as_str() == region
                && f.state == FailoverState::FailingOver
                && is_me(cfg, &f.node)
        });
        if !unfinished {
            return Ok(());
        }
        tracing::warn!(
            region,
            "this database was promoted by a takeover that did not finish: finishing it"
        );
    }
    let maps = loop {
        match MapClient::connect(cfg.raft_urls.clone(), MapClientOptions::default()).await {
            Ok(m) => break m,
            Err(e) => {
                tracing::warn!(region, error = %e, "ownership map not reachable yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    tracing::warn!(
        region,
        "standby node: idle (503) until a takeover promotes this database"
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let l = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
    let app = idle_app(region.to_owned());
    let server = tokio::spawn(async move {
        axum::serve(l, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let token = cfg
        .lease_token
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    loop {
        let map = maps.current();
        let mine = map
            .failovers
            .iter()
            .find(|f| f.region.as_str() == region && f.state == FailoverState::FailingOver)
            .filter(|f| is_me(cfg, &f.node));
        if let Some(rec) = mine {
            let access = takeover::RaftAccess {
                urls: &cfg.raft_urls,
                token: &token,
            };
            match takeover::run(db, rec, &access).await {
                Ok(_) => {
                    let _ = maps.refresh().await;
                }
                Err(e) => tracing::error!(region, error = %e, "takeover step failed; retrying"),
            }
        }
        if serving_node(&maps, region, cfg) && !replication::in_recovery(db).await.unwrap_or(true) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}

fn is_me(cfg: &RegionsConfig, url: &str) -> bool {
    match &cfg.advertise_url {
        Some(me) => me.trim_end_matches('/') == url.trim_end_matches('/'),
        // Without an advertised URL the one standby of the region is us.
        None => true,
    }
}

/// The map names this node as its region's node (takeover committed).
fn serving_node(maps: &MapClient, region: &str, cfg: &RegionsConfig) -> bool {
    let map = maps.current();
    let busy = map
        .failovers
        .iter()
        .any(|f| f.region.as_str() == region && f.state == FailoverState::FailingOver);
    !busy
        && map
            .regions
            .iter()
            .find(|r| r.id.as_str() == region)
            .is_some_and(|r| is_me(cfg, &r.node) || cfg.advertise_url.is_none())
}
