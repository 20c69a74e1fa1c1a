//! The commands the raft log carries, and their results (stored for request-id dedup).

use serde::{Deserialize, Serialize};

use crate::model::{Region, RegionId, SlotState, Standby};

/// A client command plus the id that makes its retries idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub request_id: String,
    pub command: Command,
}

/// The commands the group accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Init {
        regions: Vec<Region>,
        slot_count: u32,
    },
    AddRegion {
        region: Region,
    },
    BeginMove {
        slot: u32,
        to: RegionId,
    },
    CompleteMove {
        slot: u32,
    },
    AbortMove {
        slot: u32,
    },
    /// A region's node renews its lease (docs/failover.md).
    RenewLease {
        region: RegionId,
        timeline: u64,
        acked_lsn: u64,
        #[serde(default)]
        degraded: bool,
    },
    /// Start a takeover of `region` by its standby. `lease_seq` is the lease
    /// the caller judged lapsed (refused if renewed since); `None` only for
    /// an operator's forced or planned takeover.
    BeginFailover {
        region: RegionId,
        lease_seq: Option<u64>,
        #[serde(default)]
        planned: bool,
    },
    /// The promoted standby activated the region's slots at epoch + 1 in its
    /// database: commit them, and the region's endpoint moves to it.
    CompleteFailover {
        region: RegionId,
        timeline: u64,
    },
    /// Names (or clears) a region's standby, e.g. after the lost primary
    /// was rebuilt as the new primary's standby.
    SetStandby {
        region: RegionId,
        standby: Option<Standby>,
    },
}

/// Outcome of a command, stored per request id and replayed on duplicates.
pub type CommandResult = Result<Applied, Rejection>;

/// A command that changed the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Map version after the command.
    pub version: u64,
    /// The slot the command touched, after the command (moves only).
    pub slot: Option<SlotChange>,
}

/// One slot's row after a move command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotChange {
    pub slot: u32,
    pub region: RegionId,
    pub epoch: u64,
    pub state: SlotState,
}

/// Why a command was refused; the map is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct Rejection {
    pub code: RejectCode,
    pub detail: String,
}

/// Machine-readable rejection reasons (rendered snake_case in problem+json `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    AlreadyInitialized,
    NotInitialized,
    InvalidCommand,
    UnknownRegion,
    RegionExists,
    SlotOutOfRange,
    SlotNotActive,
    SlotNotMoving,
    SameRegion,
    NoStandby,
    FailoverInProgress,
    NoFailover,
    LeaseRenewed,
    StaleTimeline,
}
