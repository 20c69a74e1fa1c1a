//! Which slot goes where: pure functions of the map, so they are tested
//! without a cluster.

use coupon_raft::map_view::MapView;
use std::collections::BTreeMap;

/// Every slot of `region`, each to the other region holding the fewest
/// slots at that point (so the others end within one slot of each other).
pub fn evacuate(map: &MapView, region: &str) -> Vec<(u16, String)> {
    let mut counts: BTreeMap<String, usize> = map
        .regions
        .iter()
        .filter(|r| r.id.as_str() != region)
        .map(|r| (r.id.to_string(), 0))
        .collect();
    for s in &map.slots {
        if let Some(c) = counts.get_mut(s.region.as_str()) {
            *c += 1;
        }
    }
    let mut out = Vec::new();
    if counts.is_empty() {
        return out;
    }
    for s in map.slots.iter().filter(|s| s.region.as_str() == region) {
        let (to, c) = counts
            .iter_mut()
            .min_by_key(|(_, c)| **c)
            .expect("another region");
        *c += 1;
        out.push((s.slot as u16, to.clone()));
    }
    out
}

/// Moves that spread the slots evenly over every region. A slot given away
/// goes preferably to its *home* (slot i's home is region i mod n in the
/// map's region order, the layout the map started with), so evacuating a
/// region and rebalancing puts every slot back where it was.
pub fn rebalance(map: &MapView) -> Vec<(u16, String)> {
    let regions: Vec<String> = map.regions.iter().map(|r| r.id.to_string()).collect();
    let n = regions.len();
    if n == 0 {
        return Vec::new();
    }
    let total = map.slots.len();
    // Region i may hold `total / n` slots, plus one for the first `total % n`.
    let want: BTreeMap<&str, usize> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_str(), total / n + usize::from(i < total % n)))
        .collect();
    let mut have: BTreeMap<&str, usize> = regions.iter().map(|r| (r.as_str(), 0)).collect();
    for s in &map.slots {
        if let Some(c) = have.get_mut(s.region.as_str()) {
            *c += 1;
        }
    }
    let home = |slot: u32| regions[slot as usize % n].as_str();
    let mut out = Vec::new();
    // First pass: slots away from home go home while home has room and
    // their holder has too many. Second pass: whatever is still surplus.
    for homeward in [true, false] {
        for s in &map.slots {
            let at = s.region.as_str();
            if have.get(at).copied().unwrap_or(0) <= want.get(at).copied().unwrap_or(0) {
                continue;
            }
            let to = if homeward {
                let h = home(s.slot);
                if h == at || have[h] >= want[h] {
                    continue;
                }
                h
            } else {
                match regions.iter().find(|r| have[r.as_str()] < want[r.as_str()]) {
                    Some(r) => r.as_str(),
                    None => break,
                }
            };
            *have.get_mut(at).expect("known") -= 1;
            *have.get_mut(to).expect("known") += 1;
            out.push((s.slot as u16, to.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_raft::map_view::{RegionView, SlotView};
    use coupon_raft::model::{RegionId, SlotState};

    fn map(owners: &[&str]) -> MapView {
        let regions = ["us", "eu", "ap"]
            .iter()
            .map(|r| RegionView {
                id: RegionId::parse(r).unwrap(),
                router: String::new(),
                node: String::new(),
                key_ids: vec![],
                standby: None,
            })
            .collect();
        MapView {
            failovers: vec![],
            version: 1,
            regions,
            slots: owners
                .iter()
                .enumerate()
                .map(|(i, r)| SlotView {
                    slot: i as u32,
                    region: RegionId::parse(r).unwrap(),
                    epoch: 1,
                    state: SlotState::Active,
                })
                .collect(),
            moves: vec![],
        }
    }

    fn apply(m: &mut MapView, moves: &[(u16, String)]) {
        for (s, to) in moves {
            m.slots[*s as usize].region = RegionId::parse(to).unwrap();
        }
    }

    fn initial(n: usize) -> Vec<&'static str> {
        (0..n).map(|i| ["us", "eu", "ap"][i % 3]).collect()
    }

    #[test]
    fn evacuating_empties_the_region_and_spreads_its_slots_evenly() {
        let mut m = map(&initial(1024));
        let moves = evacuate(&m, "us");
        assert_eq!(moves.len(), 342);
        apply(&mut m, &moves);
        let count = |r: &str| m.slots.iter().filter(|s| s.region.as_str() == r).count();
        assert_eq!(count("us"), 0);
        assert!(count("eu").abs_diff(count("ap")) <= 1);
        assert_eq!(count("eu") + count("ap"), 1024);
    }

    #[test]
    fn rebalancing_after_an_evacuation_restores_the_initial_layout() {
        let start = initial(1024);
        let mut m = map(&start);
        let out = evacuate(&m, "eu");
        apply(&mut m, &out);
        let back = rebalance(&m);
        assert_eq!(back.len(), out.len(), "only the evacuated slots move back");
        apply(&mut m, &back);
        let now: Vec<&str> = m.slots.iter().map(|s| s.region.as_str()).collect();
        assert_eq!(now, start);
        assert!(rebalance(&m).is_empty(), "a balanced map needs no move");
    }
}
