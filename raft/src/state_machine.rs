//! Pure apply logic: commands, their validation, request-id dedup. No I/O here.
//!
//! Slot spreading rule at `Init`: slot `i` is owned by `regions[i % n]`, in the order the
//! regions are listed, so ownership is interleaved and every region gets `slot_count / n`
//! slots (the first `slot_count % n` regions get one more).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use crate::command::{
    Applied, Command, CommandResult, RejectCode, Rejection, Request, SlotChange,
};
use crate::model::{
    ClusterMap, MoveRecord, MoveState, Region, RegionId, SlotEntry, SlotState, MAX_SLOT_COUNT,
    MOVE_HISTORY,
};

/// How many applied request ids are remembered for dedup (oldest evicted first).
pub const DEDUP_CAPACITY: usize = 10_000;

pub(crate) fn reject(code: RejectCode, detail: impl Into<String>) -> Rejection {
    Rejection {
        code,
        detail: detail.into(),
    }
}

/// The state machine's logical state: the map plus the dedup table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapState {
    pub map: ClusterMap,
    /// request id → original result.
    pub applied: BTreeMap<String, CommandResult>,
    /// request ids in apply order, for bounded eviction.
    pub applied_order: VecDeque<String>,
}

impl MapState {
    /// Applies one request. Returns the result and whether it was a replay of a known id.
    pub fn apply(&mut self, req: &Request) -> (CommandResult, bool) {
        // Renewals are many and harmless to repeat: no dedup entry (they
        // would evict the ids of moves within the hour), no version bump.
        if let Command::RenewLease {
            region,
            timeline,
            acked_lsn,
            degraded,
        } = &req.command
        {
            let r = self.renew_lease(region, *timeline, *acked_lsn, *degraded);
            return (r, false);
        }
        if let Some(prev) = self.applied.get(&req.request_id) {
            return (prev.clone(), true);
        }
        let result = self.execute(&req.command, &req.request_id);
        self.remember(req.request_id.clone(), result.clone());
        (result, false)
    }

    fn remember(&mut self, id: String, result: CommandResult) {
        self.applied.insert(id.clone(), result);
        self.applied_order.push_back(id);
        while self.applied_order.len() > DEDUP_CAPACITY {
            if let Some(old) = self.applied_order.pop_front() {
                self.applied.remove(&old);
            }
        }
    }

    fn execute(&mut self, cmd: &Command, request_id: &str) -> CommandResult {
        let slot = match cmd {
            Command::Init {
                regions,
                slot_count,
            } => {
                self.init(regions, *slot_count)?;
                None
            }
            Command::AddRegion { region } => {
                self.add_region(region)?;
                None
            }
            Command::BeginMove { slot, to } => Some(self.begin_move(*slot, to, request_id)?),
            Command::CompleteMove { slot } => Some(self.complete_move(*slot)?),
            Command::AbortMove { slot } => Some(self.abort_move(*slot)?),
            Command::RenewLease { .. } => None,
            Command::BeginFailover {
                region,
                lease_seq,
                planned,
            } => {
                self.begin_failover(region, *lease_seq, *planned, request_id)?;
                None
            }
            Command::CompleteFailover { region, timeline } => {
                self.complete_failover(region, *timeline)?;
                None
            }
            Command::SetStandby { region, standby } => {
                self.set_standby(region, standby.clone())?;
                None
            }
        };
        self.map.version += 1;
        Ok(Applied {
            version: self.map.version,
            slot,
        })
    }

    fn init(&mut self, regions: &[Region], slot_count: u32) -> Result<(), Rejection> {
        if self.map.is_initialized() {
            return Err(reject(
                RejectCode::AlreadyInitialized,
                "the map is already initialized",
            ));
        }
        if regions.is_empty() {
            return Err(reject(
                RejectCode::InvalidCommand,
                "init needs at least one region",
            ));
        }
        if slot_count == 0 || slot_count > MAX_SLOT_COUNT {
            let detail = format!("slot_count must be in 1..={MAX_SLOT_COUNT}");
            return Err(reject(RejectCode::InvalidCommand, detail));
        }
        for (i, r) in regions.iter().enumerate() {
            if regions[..i].iter().any(|o| o.id == r.id) {
                return Err(reject(
                    RejectCode::RegionExists,
                    format!("region {} twice", r.id),
                ));
            }
        }
        // Regions added before init (via AddRegion) are kept; init's regions come after.
        for r in regions {
            if self.map.region(&r.id).is_some() {
                return Err(reject(
                    RejectCode::RegionExists,
                    format!("region {} exists", r.id),
                ));
            }
        }
        self.map.regions.extend(regions.iter().cloned());
        let n = regions.len();
        self.map.slots = (0..slot_count as usize)
            .map(|i| SlotEntry {
                region: regions[i % n].id.clone(),
                epoch: 1,
                state: SlotState::Active,
            })
            .collect();
        Ok(())
    }

    fn add_region(&mut self, region: &Region) -> Result<(), Rejection> {
        if self.map.region(&region.id).is_some() {
            return Err(reject(
                RejectCode::RegionExists,
                format!("region {} exists", region.id),
            ));
        }
        self.map.regions.push(region.clone());
        Ok(())
    }

    fn slot_mut(&mut self, slot: u32) -> Result<&mut SlotEntry, Rejection> {
        if !self.map.is_initialized() {
            return Err(reject(
                RejectCode::NotInitialized,
                "the map is not initialized",
            ));
        }
        let count = self.map.slots.len();
        self.map.slots.get_mut(slot as usize).ok_or_else(|| {
            reject(
                RejectCode::SlotOutOfRange,
                format!("slot {slot} is not in 0..{count}"),
            )
        })
    }

    fn begin_move(&mut self, slot: u32, to: &RegionId, id: &str) -> Result<SlotChange, Rejection> {
        let known = self.map.region(to).is_some();
        let entry = self.slot_mut(slot)?;
        if !known {
            return Err(reject(RejectCode::UnknownRegion, format!("no region {to}")));
        }
        if entry.state != SlotState::Active {
            return Err(reject(
                RejectCode::SlotNotActive,
                format!("slot {slot} is moving"),
            ));
        }
        if &entry.region == to {
            return Err(reject(
                RejectCode::SameRegion,
                format!("slot {slot} is already in {to}"),
            ));
        }
        entry.state = SlotState::Moving;
        let record = MoveRecord {
            id: id.to_owned(),
            slot,
            from: entry.region.clone(),
            to: to.clone(),
            epoch: entry.epoch,
            state: MoveState::Moving,
        };
        let change = change(slot, entry);
        self.map.moves.insert(slot, record);
        Ok(change)
    }

    fn complete_move(&mut self, slot: u32) -> Result<SlotChange, Rejection> {
        self.finish_move(slot, MoveState::Completed)
    }

    fn abort_move(&mut self, slot: u32) -> Result<SlotChange, Rejection> {
        self.finish_move(slot, MoveState::Aborted)
    }

    fn finish_move(&mut self, slot: u32, outcome: MoveState) -> Result<SlotChange, Rejection> {
        self.slot_mut(slot)?;
        let Some(mut record) = self.map.moves.remove(&slot) else {
            return Err(reject(
                RejectCode::SlotNotMoving,
                format!("slot {slot} has no move"),
            ));
        };
        let entry = &mut self.map.slots[slot as usize];
        if outcome == MoveState::Completed {
            entry.region = record.to.clone();
            entry.epoch = record.epoch + 1;
        }
        entry.state = SlotState::Active;
        let change = change(slot, entry);
        record.state = outcome;
        self.map.move_history.push(record);
        if self.map.move_history.len() > MOVE_HISTORY {
            self.map.move_history.remove(0);
        }
        Ok(change)
    }
}

fn change(slot: u32, e: &SlotEntry) -> SlotChange {
    SlotChange {
        slot,
        region: e.region.clone(),
        epoch: e.epoch,
        state: e.state,
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
