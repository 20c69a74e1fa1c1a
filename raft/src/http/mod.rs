//! The HTTP API: each module owns its routes; `app` only merges them.

pub mod admin;
pub mod error;
pub mod extract;
pub mod failover;
pub mod forward;
pub mod guard;
pub mod map;
pub mod members;
pub mod ops;
pub mod raft_rpc;
pub mod state;
pub mod write;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;

pub use error::ApiError;
pub use state::AppState;

/// Body limit of non-raft requests.
pub const MAX_BODY: usize = 1024 * 1024;

/// The whole HTTP application of one member.
pub fn app(state: AppState) -> Router {
    let admin = admin::router()
        .merge(members::router())
        .merge(failover::admin_router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn_with_state(state.clone(), guard::require_admin));
    let raft = raft_rpc::router().layer(from_fn_with_state(state.clone(), guard::require_member));
    Router::new()
        .merge(map::router())
        .merge(members::public_router())
        .merge(failover::public_router())
        .merge(failover::node_router(state.clone()).layer(DefaultBodyLimit::max(MAX_BODY)))
        .merge(ops::router())
        .merge(admin)
        .merge(raft)
        .with_state(state)
}
