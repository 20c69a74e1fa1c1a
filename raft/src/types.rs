//! openraft type configuration: node ids, node addresses, log payload and response.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::state_machine::{CommandResult, Request};

/// Raft member id. Stable for the life of a member (its data dir belongs to it).
pub type NodeId = u64;

/// What the group knows about a member: the base URL other members reach it at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Base URL, e.g. `http://127.0.0.1:7001` (no trailing slash).
    pub addr: String,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.addr)
    }
}

/// Result of applying one log entry. `result` is `None` for blank and membership entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub result: Option<CommandResult>,
    /// True when the request id had been applied before and this is the stored result.
    #[serde(default)]
    pub replayed: bool,
}

openraft::declare_raft_types!(
    /// Type configuration of the coupon map raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The raft handle specialised to this group.
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type Vote = openraft::Vote<NodeId>;
