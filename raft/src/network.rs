//! Outbound raft RPCs over HTTP (reqwest), each carrying a fresh member JWT.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::AnyError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use std::sync::Arc;

use crate::auth::MemberAuth;
use crate::counters::Counters;
use crate::types::{Node, NodeId, TypeConfig};

/// Paths of the raft RPC routes (served by `http::raft_rpc`).
pub const APPEND_PATH: &str = "/v1/raft/append-entries";
pub const VOTE_PATH: &str = "/v1/raft/vote";
pub const SNAPSHOT_PATH: &str = "/v1/raft/install-snapshot";

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

/// Builds one connection per target member; all share one HTTP client (pooled).
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
    auth: MemberAuth,
    counters: Arc<Counters>,
}

impl Network {
    pub fn new(http: reqwest::Client, auth: MemberAuth, counters: Arc<Counters>) -> Self {
        Self {
            http,
            auth,
            counters,
        }
    }
}

/// The HTTP client members use to talk to each other.
pub fn member_http_client(
    source_ip: Option<std::net::IpAddr>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if let Some(ip) = source_ip {
        b = b.local_address(ip);
    }
    b.build()
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Conn {
        Conn {
            http: self.http.clone(),
            auth: self.auth.clone(),
            counters: self.counters.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// A connection to one member.
pub struct Conn {
    http: reqwest::Client,
    auth: MemberAuth,
    counters: Arc<Counters>,
    target: NodeId,
    addr: String,
}

impl Conn {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let res = self
            .http
            .post(format!("{}{}", self.addr, path))
            .bearer_auth(self.auth.mint())
            .timeout(ttl)
            .json(req)
            .send()
            .await;
        let resp = match res {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            self.counters.peer_rejected();
        }
        if !resp.status().is_success() {
            let msg = format!("member {} answered {}", self.target, resp.status());
            return Err(RPCError::Network(NetworkError::new(&AnyError::error(msg))));
        }
        let body: Result<Resp, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        body.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        self.call(APPEND_PATH, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(SNAPSHOT_PATH, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        self.call(VOTE_PATH, &rpc, option.hard_ttl()).await
    }
}
