//! Start-up: open the stores, migrate, bootstrap slot ownership, serve.

use crate::auth::KeyError;
use crate::burst::ratelimit::Limit;
use crate::burst::RedisClaim;
use crate::cache::CampaignCache;
use crate::config::ClaimEngineKind;
use crate::config::{parse_slots, NodeConfig};
use crate::redeem::claim::{ClaimEngine, PostgresClaim};
use crate::state::{AppState, Inner};
use crate::store::{attempts, slots};
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long to wait for a pooled Postgres connection before answering 503.
pub const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connecting to Redis gives up after this long.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// One Redis reply may take this long before the call fails.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    let (verifier, db) = connect(cfg).await?;
    build_on(cfg, verifier, db).await
}

/// The token verifier and the Postgres pool.
async fn connect(cfg: &NodeConfig) -> Result<(crate::auth::Verifier, sqlx::PgPool), StartError> {
    let verifier = crate::auth::build(
        cfg.issuer_public_key.as_ref(),
        &cfg.issuer,
        &cfg.audience,
        &cfg.tokens,
    )
    .await?;
    // No JIT: it compiles plans for the few large counts (a job's
    // verification, a Bloom load) in every parallel worker, tens of ms of
    // CPU each, for queries that run in well under a second anyway.
    let options = cfg
        .database_url
        .0
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .options([("jit", "off")]);
    let db = PgPoolOptions::new()
        .max_connections(cfg.db_max_connections)
        .acquire_timeout(DB_ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok((verifier, db))
}

/// Everything after the pool: migrations, stores, background tasks.
async fn build_on(
    cfg: &NodeConfig,
    verifier: crate::auth::Verifier,
    db: sqlx::PgPool,
) -> Result<AppState, StartError> {
    crate::MIGRATOR.run(&db).await?;
    let owned = crate::ownership::view::OwnedSlots::new();
    let regional =
        crate::ownership::Regional::start(&cfg.regions, &cfg.region, db.clone(), owned.clone())
            .map_err(|e| StartError::Slots(e.to_string()))?;
    // With a raft map, ownership comes from the map (ownership::sync), never a bootstrap.
    if !regional.configured() {
        let mine = parse_slots(&cfg.bootstrap_slots).map_err(StartError::Slots)?;
        slots::bootstrap(&db, &mine).await?;
    }
    let client = redis::Client::open(cfg.redis_url.0.as_str())?;
    // Short timeouts and quick reconnects: a dead or restarted Redis must
    // cost a request a fallback to Postgres, not a hang (docs/architecture.md §3.2).
    let redis_cfg = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
        .set_response_timeout(REDIS_RESPONSE_TIMEOUT)
        .set_number_of_retries(2)
        .set_factor(10)
        .set_max_delay(200);
    let redis = redis::aio::ConnectionManager::new_with_config(client, redis_cfg).await?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let lease = match (&cfg.regions.lease_token, regional.configured()) {
        (Some(token), true) => crate::ownership::lease::start(crate::ownership::lease::Renewer {
            region: cfg.region.clone(),
            raft_urls: cfg.regions.raft_urls.clone(),
            token: token.0.clone(),
            // A connection of its own: the lease's replication read must
            // never queue behind a busy request pool (a code job, a burst),
            // or the lease lapses and the node answers 503 to everything.
            db: PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(DB_ACQUIRE_TIMEOUT)
                .connect_lazy_with((*db.connect_options()).clone()),
            metrics: metrics.clone(),
        }),
        _ => crate::ownership::lease::RegionLease::disabled(),
    };
    // Alerted counter, present at 0 from the start (see burst::engine).
    metrics.add("coupon_attempt_log_dropped_total", &[], 0);
    let claim: Arc<dyn ClaimEngine> = match cfg.burst.claim_engine {
        ClaimEngineKind::Redis => {
            RedisClaim::new(db.clone(), redis.clone(), metrics.clone(), &cfg.burst)
        }
        ClaimEngineKind::Postgres => Arc::new(PostgresClaim {
            db: db.clone(),
            seats: crate::redeem::seats::SeatFrontier::new(&db, metrics.clone()),
            remaining: crate::redeem::remaining::RemainingCounts::new(db.clone()),
        }),
    };
    let b = &cfg.burst;
    let codes = crate::bloom::CodeFilter::new(cfg.bloom_capacity);
    crate::bloom::spawn_loader(codes.clone(), db.clone(), redis.clone());
    let state = AppState::new(Inner {
        region: cfg.region.clone(),
        claim,
        codes,
        user_limit: Limit {
            rate: b.user_rate,
            burst: b.user_burst,
        },
        ip_limit: Limit {
            rate: b.ip_rate,
            burst: b.ip_burst,
        },
        attempts: attempts::spawn_writer(db.clone(), metrics.clone()),
        uses: crate::redeem::uses_batch::UsesReader::spawn(db.clone()),
        db,
        redis,
        verifier,
        service_tokens: crate::auth::cache::TokenCache::new(cfg.tokens.token_cache_capacity),
        campaigns: CampaignCache::new(Duration::from_millis(cfg.campaign_cache_ms)),
        metrics,
        body_limit: cfg.body_limit,
        regional,
        owned,
        lease,
        commit_wait: Duration::from_millis(cfg.commit_wait_ms),
    });
    crate::ownership::warm::start(&state).await?;
    Ok(state)
}

/// The node process: bind, idle as a standby while the database is one
/// (docs/failover.md §1), then build the state and serve.
pub async fn run(
    cfg: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let listener = std::net::TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let (verifier, db) = connect(cfg).await?;
    crate::ownership::standby::idle_until_primary(&listener, &cfg.region, &cfg.regions, &db)
        .await?;
    let state = build_on(cfg, verifier, db).await?;
    tracing::info!(region = %cfg.region, addr = %cfg.listen, "node listening");
    serve(TcpListener::from_std(listener)?, state, shutdown).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting the node: {0}")]
    Start(#[from] StartError),
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
}

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Peer addresses feed the per-IP rate limit.
    let app = crate::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
