//! Starts one member: opens the store, spawns raft, serves HTTP until shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::auth::MemberAuth;
use crate::config::ServeConfig;
use crate::counters::Counters;
use crate::http::{self, state::Inner, AppState};
use crate::network::{member_http_client, Network};
use crate::store::{self, DbError};
use crate::types::{NodeId, Raft};

/// Why a member could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("opening the raft store: {0}")]
    Store(#[from] DbError),
    #[error("invalid raft config: {0}")]
    Config(#[from] Box<openraft::ConfigError>),
    #[error("starting raft: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
    #[error("building the member HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// A started member: its raft handle and the bound listener, ready to serve.
pub struct Member {
    pub raft: Raft,
    pub state: AppState,
    listener: TcpListener,
}

impl Member {
    /// Opens the store, starts raft and binds the listener.
    pub async fn start(cfg: ServeConfig) -> Result<Self, ServeError> {
        let raft_cfg = Arc::new(cfg.raft_config()?);
        let (log, sm) = store::open(&cfg.data_dir)?;
        let counters = Arc::new(Counters::default());
        let auth = MemberAuth::new(cfg.node_id, &cfg.secret);
        let http = member_http_client(cfg.source_ip)?;
        let network = Network::new(http.clone(), auth.clone(), counters.clone());
        let raft = Raft::new(cfg.node_id, raft_cfg, network, log, sm.clone()).await?;
        let listener = TcpListener::bind(cfg.listen).await?;
        let state = AppState(Arc::new(Inner {
            raft: raft.clone(),
            node_id: cfg.node_id,
            sm,
            member_auth: auth,
            cfg,
            counters,
            http,
            leader_since: Default::default(),
        }));
        Ok(Self {
            raft,
            state,
            listener,
        })
    }

    /// Serves until `shutdown` resolves, then stops raft.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let addr = self.listener.local_addr()?;
        tracing::info!(node_id = self.state.node_id, %addr, "coupon-raft member serving");
        let controller = tokio::spawn(crate::controller::run(
            self.state.clone(),
            self.state.leader_since.clone(),
        ));
        axum::serve(self.listener, http::app(self.state))
            .with_graceful_shutdown(shutdown)
            .await?;
        controller.abort();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        Ok(())
    }
}
