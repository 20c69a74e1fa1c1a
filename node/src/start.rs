//! Start-up: open the stores, migrate, bootstrap slot ownership, serve.

use crate::auth::{KeyError, Verifier};
use crate::cache::CampaignCache;
use crate::config::{parse_slots, NodeConfig};
use crate::redeem::claim::PostgresClaim;
use crate::state::{AppState, Inner};
use crate::store::{attempts, slots};
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long to wait for a pooled Postgres connection before answering 503.
pub const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reading the issuer public key {path}: {source}")]
    IssuerKey {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("connecting to postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("running migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("connecting to redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("bad bootstrap slots: {0}")]
    Slots(String),
    #[error("bootstrapping slot ownership: {0}")]
    Bootstrap(#[from] crate::error::ApiError),
}

pub async fn build_state(cfg: &NodeConfig) -> Result<AppState, StartError> {
    let pem = std::fs::read_to_string(&cfg.issuer_public_key).map_err(|source| {
        StartError::IssuerKey {
            path: cfg.issuer_public_key.display().to_string(),
            source,
        }
    })?;
    let verifier = Verifier::new(&[(None, pem)], &cfg.issuer, &cfg.audience)?;
    let db = PgPoolOptions::new()
        .max_connections(cfg.db_max_connections)
        .acquire_timeout(DB_ACQUIRE_TIMEOUT)
        .connect(&cfg.database_url.0)
        .await?;
    crate::MIGRATOR.run(&db).await?;
    let owned = parse_slots(&cfg.bootstrap_slots).map_err(StartError::Slots)?;
    slots::bootstrap(&db, &owned).await?;
    let client = redis::Client::open(cfg.redis_url.0.as_str())?;
    let redis = redis::aio::ConnectionManager::new(client).await?;
    Ok(AppState::new(Inner {
        region: cfg.region.clone(),
        claim: Arc::new(PostgresClaim { db: db.clone() }),
        attempts: attempts::spawn_writer(db.clone()),
        db,
        redis,
        verifier,
        campaigns: CampaignCache::new(Duration::from_millis(cfg.campaign_cache_ms)),
        metrics: Default::default(),
        body_limit: cfg.body_limit,
    }))
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, crate::app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
