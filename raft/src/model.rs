//! The replicated data: regions, the slot table with epochs, and move records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default number of slots chosen at init when the request does not name one.
pub const DEFAULT_SLOT_COUNT: u32 = 1024;
/// Largest slot count `Init` accepts (bounds the snapshot size).
pub const MAX_SLOT_COUNT: u32 = 65_536;
/// Completed or aborted moves kept for inspection; older ones are dropped.
pub const MOVE_HISTORY: usize = 256;

/// A region id such as `us`: 1–32 chars of `a-z`, `0-9`, `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionId(String);

impl RegionId {
    /// Parses a region id, refusing anything outside the documented alphabet.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_len = (1..=32).contains(&s.len());
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok_len && ok_first && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "region id {s:?} must be 1-32 chars of a-z, 0-9, '-', starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RegionId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<RegionId> for String {
    fn from(r: RegionId) -> String {
        r.0
    }
}

impl std::fmt::Display for RegionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region as routers and nodes need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub id: RegionId,
    /// Base URL of the region's router.
    pub router: String,
    /// Base URL of the region's node.
    pub node: String,
    /// Ids (`kid`) of the keys the region signs service tokens with.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// The region's synchronous standby (its database and the idle node
    /// beside it, hosted in another region); `None` after a takeover until
    /// the lost primary is rebuilt as the new standby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<Standby>,
}

/// Where a region's synchronous standby lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standby {
    /// The region that hosts it (a whole-region loss must not take both).
    pub host: RegionId,
    /// Base URL of the standby node (idle, 503, until promoted).
    pub node: String,
}

/// A region's lease (docs/failover.md): renewed by the region's node every
/// L/3; a takeover of the region is allowed only once the raft leader has
/// seen no renewal for L + margin on its own monotonic clock. Renewals do
/// not bump the map version (they are not ownership changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// +1 per accepted renewal: a takeover names the sequence it judged
    /// lapsed, and is refused if a renewal landed in between.
    pub seq: u64,
    /// Postgres timeline of the primary that renewed: a primary on an older
    /// timeline (the one a takeover replaced) can never renew again.
    pub timeline: u64,
    /// Highest WAL position the region's synchronous standby confirmed
    /// (every acknowledged commit is at or below it); the promoted standby
    /// must have replayed at least this much.
    pub acked_lsn: u64,
    /// True while the region runs without a synchronous standby (degraded).
    #[serde(default)]
    pub degraded: bool,
}

/// Lifecycle of a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverState {
    FailingOver,
    Completed,
}

/// An unplanned takeover (or planned switchover) of a region's primary role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    /// The `BeginFailover` request id.
    pub id: String,
    pub region: RegionId,
    pub state: FailoverState,
    /// The standby node that takes over.
    pub node: String,
    /// Timeline and acknowledged LSN of the lost primary's last lease.
    pub from_timeline: u64,
    pub acked_lsn: u64,
    /// Forced by an operator (the lease was not judged lapsed by raft).
    #[serde(default)]
    pub forced: bool,
    /// Planned switchover rather than a loss.
    #[serde(default)]
    pub planned: bool,
    /// Slots taken over and the epoch each is activated at.
    #[serde(default)]
    pub slots: Vec<(u32, u64)>,
}

/// Whether a slot is served normally or is in the middle of a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    Active,
    Moving,
    /// Its region's primary is being replaced (takeover in progress).
    FailingOver,
}

/// One row of the slot table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEntry {
    pub region: RegionId,
    /// Fencing token: starts at 1, +1 on every completed move.
    pub epoch: u64,
    pub state: SlotState,
}

/// Lifecycle of a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveState {
    Moving,
    Completed,
    Aborted,
}

/// A move of one slot from one region to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    /// The request id of the `BeginMove` that started it: each store names
    /// its own step of the move by this id (docs/architecture.md §7), so a
    /// later move of the same slot at the same epoch is never mistaken for
    /// this one.
    #[serde(default)]
    pub id: String,
    pub slot: u32,
    pub from: RegionId,
    pub to: RegionId,
    /// The slot's epoch when the move began (the new owner gets `epoch + 1`).
    pub epoch: u64,
    pub state: MoveState,
}

/// The whole replicated map. `version` bumps on every command that changes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub version: u64,
    /// Regions in the order they were added.
    pub regions: Vec<Region>,
    /// Slot table, index = slot number. Empty until `Init`.
    pub slots: Vec<SlotEntry>,
    /// In-flight moves, by slot.
    pub moves: BTreeMap<u32, MoveRecord>,
    /// Finished moves, oldest first, at most [`MOVE_HISTORY`].
    pub move_history: Vec<MoveRecord>,
    /// Region leases, by region (absent: the region never renewed one, so
    /// it is never taken over automatically).
    #[serde(default)]
    pub leases: BTreeMap<RegionId, Lease>,
    /// The latest takeover of each region (in progress or completed).
    #[serde(default)]
    pub failovers: BTreeMap<RegionId, FailoverRecord>,
}

impl ClusterMap {
    pub fn is_initialized(&self) -> bool {
        !self.slots.is_empty()
    }

    pub fn region(&self, id: &RegionId) -> Option<&Region> {
        self.regions.iter().find(|r| &r.id == id)
    }
}
