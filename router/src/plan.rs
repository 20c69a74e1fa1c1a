//! Where a request goes: the slot from the string alone (code, campaign id,
//! job id, redemption id), then the owner and epoch from the cached map —
//! or a newer owner a node told us about in a 421.

use crate::error::RouterError;
use crate::state::{AppState, Hint};
use coupon_raft::model::SlotState;

/// What a request is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Slot(u16),
    /// No slot yet (a campaign without a vanity code): that region's node
    /// picks one of its own slots.
    Region(String),
}

/// One planned forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub region: String,
    pub node: String,
    pub slot: Option<u16>,
    pub epoch: Option<u64>,
    pub moving: bool,
}

/// Whether the cluster map names `region` (false before the map loaded).
pub fn known_region(state: &AppState, region: &str) -> bool {
    state
        .maps()
        .is_some_and(|m| m.current().regions.iter().any(|x| x.id.as_str() == region))
}

pub fn plan(state: &AppState, key: &RouteKey) -> Result<Target, RouterError> {
    let maps = state.maps().ok_or_else(|| {
        RouterError::Unavailable("the router has not loaded the ownership map yet".into())
    })?;
    let (region, slot, epoch, moving) = match key {
        RouteKey::Region(r) => {
            let known = maps.current().regions.iter().any(|x| x.id.as_str() == r);
            if !known {
                return Err(RouterError::InvalidRequest {
                    field: Some("home_region"),
                    detail: format!("no region `{r}` in the cluster"),
                });
            }
            (r.clone(), None, None, false)
        }
        RouteKey::Slot(s) => {
            let owner = maps
                .owner_of(u32::from(*s))
                .ok_or_else(|| RouterError::Unavailable(format!("slot {s} is not in the map")))?;
            let hint = state.hints.lock().expect("hints lock").get(s).cloned();
            match hint {
                Some(Hint { region, epoch }) if epoch > owner.epoch => {
                    (region, Some(*s), Some(epoch), false)
                }
                _ => (
                    owner.region.to_string(),
                    Some(*s),
                    Some(owner.epoch),
                    owner.state != SlotState::Active,
                ),
            }
        }
    };
    let node = state
        .node_url(&region)
        .ok_or_else(|| RouterError::OwnerUnreachable {
            region: region.clone(),
            detail: "no node URL known for this region".into(),
        })?;
    Ok(Target {
        region,
        node,
        slot,
        epoch,
        moving,
    })
}
