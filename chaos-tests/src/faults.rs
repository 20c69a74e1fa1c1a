//! Network faults by intent: partition a region, cut one client's watch of
//! the raft group, heal. Link names follow `coupon_testkit::cluster`.

use crate::harness::REGIONS;
use coupon_testkit::netproxy::{Fault, FaultNet};

/// Region of one end of a link name (`router:us`, `raft:2`, `pg:eu`).
fn end_region(end: &str) -> Option<&'static str> {
    let (kind, id) = end.split_once(':')?;
    if kind == "raft" {
        let i: usize = id.parse().ok()?;
        return REGIONS.get((i - 1) % REGIONS.len()).copied();
    }
    REGIONS.iter().copied().find(|r| *r == id)
}

/// Both regions of a link name `a->b`.
pub fn ends(name: &str) -> Option<(&'static str, &'static str)> {
    let (a, b) = name.split_once("->")?;
    Some((end_region(a)?, end_region(b)?))
}

/// Every link between `region` and the other regions gets `fault`, both ways.
pub fn partition(net: &FaultNet, region: &str, fault: Fault) -> usize {
    net.set(
        |name| ends(name).is_some_and(|(a, b)| (a == region) != (b == region)),
        fault,
        fault,
    )
}

/// One-way partition of `region`: everything it sends to another region is
/// lost (requests it opens, answers it gives), everything sent to it
/// arrives.
pub fn mute(net: &FaultNet, region: &str) -> usize {
    let out = net.set(
        |name| ends(name).is_some_and(|(a, b)| a == region && b != region),
        Fault::Cut,
        Fault::Pass,
    );
    let inbound = net.set(
        |name| ends(name).is_some_and(|(a, b)| a != region && b == region),
        Fault::Pass,
        Fault::Cut,
    );
    out + inbound
}

/// Cuts the raft watch of `who` (e.g. `router:us`): it keeps its cached map.
pub fn cut_map_watch(net: &FaultNet, who: &str) -> usize {
    let prefix = format!("{who}->raft:");
    net.set(|name| name.starts_with(&prefix), Fault::Cut, Fault::Cut)
}

pub fn heal(net: &FaultNet) {
    net.heal_all();
}
