//! Shared state of the HTTP handlers.

use std::sync::Arc;

use crate::auth::MemberAuth;
use crate::config::ServeConfig;
use crate::counters::Counters;
use crate::http::error::LeaderHint;
use crate::store::SmStore;
use crate::types::{NodeId, Raft};

/// Cheap to clone; everything behind one `Arc`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub raft: Raft,
    pub node_id: NodeId,
    pub sm: SmStore,
    pub member_auth: MemberAuth,
    pub cfg: ServeConfig,
    pub counters: Arc<Counters>,
    /// Member HTTP client, used to forward requests to the leader.
    pub http: reqwest::Client,
    /// When this member last became leader (the failover controller's clock).
    pub leader_since: crate::controller::LeaderSince,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The current leader as this member sees it, with its address.
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some(LeaderHint {
            id,
            addr: node.addr,
        })
    }
}
