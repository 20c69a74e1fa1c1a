//! The commands the raft log carries, and their results (stored for request-id dedup).

use serde::{Deserialize, Serialize};

use crate::model::{Region, RegionId, SlotState};

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
}
