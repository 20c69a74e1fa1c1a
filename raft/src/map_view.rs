//! Wire shape of `GET /v1/cluster/map` (docs/api.md), shared by the server and the client library.

use serde::{Deserialize, Serialize};

use crate::model::{ClusterMap, FailoverRecord, MoveRecord, RegionId, SlotState, Standby};

/// The map as served: `{"version", "regions", "slots"}` plus the optional `moves` extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapView {
    pub version: u64,
    pub regions: Vec<RegionView>,
    pub slots: Vec<SlotView>,
    /// In-flight moves (extension; absent in older answers).
    #[serde(default)]
    pub moves: Vec<MoveRecord>,
    /// The latest takeover of each region (extension; docs/failover.md).
    #[serde(default)]
    pub failovers: Vec<FailoverRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionView {
    pub id: RegionId,
    pub router: String,
    pub node: String,
    /// Signing key ids of the region (extension).
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// The region's standby (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<Standby>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotView {
    pub slot: u32,
    pub region: RegionId,
    pub epoch: u64,
    pub state: SlotState,
}

impl MapView {
    /// The owner row of `slot`, if the slot exists.
    pub fn slot(&self, slot: u32) -> Option<&SlotView> {
        self.slots.get(slot as usize).filter(|s| s.slot == slot)
    }
}

impl From<&ClusterMap> for MapView {
    fn from(m: &ClusterMap) -> Self {
        MapView {
            version: m.version,
            regions: m
                .regions
                .iter()
                .map(|r| RegionView {
                    id: r.id.clone(),
                    router: r.router.clone(),
                    node: r.node.clone(),
                    key_ids: r.key_ids.clone(),
                    standby: r.standby.clone(),
                })
                .collect(),
            slots: m
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotView {
                    slot: i as u32,
                    region: s.region.clone(),
                    epoch: s.epoch,
                    state: s.state,
                })
                .collect(),
            moves: m.moves.values().cloned().collect(),
            failovers: m.failovers.values().cloned().collect(),
        }
    }
}
