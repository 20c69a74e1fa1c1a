//! Who owned which slot at which epoch, and until when: the initial spread
//! of the map plus every move the scenario made. Rows are judged against
//! this history, never against the epoch the writer stamped on them (an old
//! owner that keeps writing at its old epoch would otherwise look legal).

use crate::harness::REGIONS;
use chrono::{DateTime, Utc};

/// A completed slot move: from `new_epoch` on, `to` owns `slot`.
#[derive(Debug, Clone)]
pub struct Move {
    pub slot: u16,
    pub from: String,
    pub to: String,
    pub new_epoch: i64,
    /// When the scenario asked for the move (before raft's begin-move).
    pub began_at: DateTime<Utc>,
    /// When the mover returned: the old owner was frozen before this.
    pub completed_at: DateTime<Utc>,
}

/// The slot → owner history of one scenario.
#[derive(Debug, Clone, Default)]
pub struct History {
    moves: Vec<Move>,
}

impl History {
    pub fn new(moves: &[Move]) -> History {
        let mut moves = moves.to_vec();
        moves.sort_by_key(|m| (m.slot, m.new_epoch));
        History { moves }
    }

    fn initial(slot: i32) -> String {
        REGIONS[slot as usize % REGIONS.len()].to_owned()
    }

    fn of(&self, slot: i32) -> impl Iterator<Item = &Move> {
        self.moves.iter().filter(move |m| i32::from(m.slot) == slot)
    }

    /// The region that owned `slot` at `epoch`.
    pub fn owner(&self, slot: i32, epoch: i64) -> String {
        self.of(slot)
            .filter(|m| m.new_epoch <= epoch)
            .last()
            .map_or_else(|| Self::initial(slot), |m| m.to.clone())
    }

    /// The owner at the end of the scenario.
    pub fn last_owner(&self, slot: i32) -> String {
        self.of(slot)
            .last()
            .map_or_else(|| Self::initial(slot), |m| m.to.clone())
    }

    /// When the owner of (`slot`, `epoch`) lost it, if it did: no
    /// transaction at that epoch may have started after this.
    pub fn tenure_end(&self, slot: i32, epoch: i64) -> Option<DateTime<Utc>> {
        self.of(slot)
            .find(|m| m.new_epoch > epoch)
            .map(|m| m.completed_at)
    }

    /// The first epoch of the scenario's history for `slot` is 1; any other
    /// epoch must be one a move created.
    pub fn known_epoch(&self, slot: i32, epoch: i64) -> bool {
        epoch == 1 || self.of(slot).any(|m| m.new_epoch == epoch)
    }
}
