//! The node's in-memory copy of `slot_ownership` (docs/architecture.md §3.4):
//! every request for a slot is answered only while this copy says the slot
//! is active here — refusals from Redis and reads included, not only the
//! commits the Postgres fence guards. The copy follows the table through
//! `LISTEN slot_ownership` (a trigger announces every change, whoever made
//! it: the map sync, a mover in another process) plus a full reload every
//! second; while it cannot follow, it answers 503 rather than guess.
//!
//! A slot newly active here is *warming* until [`super::warm`] made this
//! node's caches match the slot's data (Redis burst state rebuilt for this
//! tenure, campaign cache dropped, Bloom filter fed the slot's codes);
//! meanwhile its requests get 503 with `Retry-After`.

use crate::error::ApiError;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Slots a region can hold (the schema's range).
pub const SLOTS: usize = 1024;
/// Backstop reload period (a lost notification costs at most this).
const RELOAD: Duration = Duration::from_secs(1);
/// Pause before reconnecting the listener.
const RECONNECT: Duration = Duration::from_millis(200);

const ACTIVE: u64 = 1;
const WARM: u64 = 2;

/// Per slot: `epoch << 2 | WARM | ACTIVE` (0 = no row).
pub struct OwnedSlots {
    slots: Vec<AtomicU64>,
    /// False while the copy may be stale (listener down, never loaded).
    valid: AtomicBool,
    /// Sequence numbers of reloads: the last one begun, the newest stored.
    begun: AtomicU64,
    stored: AtomicU64,
}

/// One slot whose row changed.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    pub slot: u16,
    pub now: Option<Held>,
    /// Active here at an epoch this node did not serve it at just before.
    pub new_tenure: bool,
}

/// A slot's row as the copy holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
    pub active: bool,
}

impl OwnedSlots {
    pub fn new() -> Arc<OwnedSlots> {
        Arc::new(OwnedSlots {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            valid: AtomicBool::new(false),
            begun: AtomicU64::new(0),
            stored: AtomicU64::new(0),
        })
    }

    fn word(&self, slot: u16) -> u64 {
        self.slots
            .get(usize::from(slot))
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Ok(epoch) when this node may answer for `slot` now.
    pub fn check(&self, slot: u16) -> Result<i64, ApiError> {
        if !self.valid.load(Ordering::Acquire) {
            return Err(ApiError::Unavailable {
                what: "slot ownership",
            });
        }
        let w = self.word(slot);
        if w & ACTIVE == 0 {
            return Err(ApiError::Misdirected {
                slot,
                owner: None,
                epoch: (w != 0).then_some((w >> 2) as i64),
            });
        }
        if w & WARM == 0 {
            return Err(ApiError::Unavailable {
                what: "slot warming up after a move",
            });
        }
        Ok((w >> 2) as i64)
    }

    /// Active slots, warm or not (for choosing a new campaign's slot).
    pub fn active(&self) -> Vec<u16> {
        (0..SLOTS as u16)
            .filter(|s| self.word(*s) & ACTIVE != 0)
            .collect()
    }

    pub fn is_valid(&self) -> bool {
        self.valid.load(Ordering::Acquire)
    }

    pub(super) fn held(&self, slot: u16) -> Option<Held> {
        let w = self.word(slot);
        (w != 0).then_some(Held {
            epoch: (w >> 2) as i64,
            active: w & ACTIVE != 0,
        })
    }

    /// Marks `slot` warm if it is still active at `epoch`.
    pub(super) fn set_warm(&self, slot: u16, epoch: i64) {
        let cold = ((epoch as u64) << 2) | ACTIVE;
        let _ = self.slots[usize::from(slot)].compare_exchange(
            cold,
            cold | WARM,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Stores one reload; returns the slots whose row changed. A slot
    /// unfrozen at the epoch it was frozen at (a move rolled back) is the
    /// same tenure, unchanged meanwhile: it is warm at once.
    fn store(&self, rows: &BTreeMap<u16, Held>) -> Vec<Change> {
        let mut changed = Vec::new();
        for slot in 0..SLOTS as u16 {
            let (was, now) = (self.held(slot), rows.get(&slot).copied());
            if was == now {
                continue;
            }
            let resumed =
                matches!((was, now), (Some(w), Some(n)) if n.active && w.epoch == n.epoch);
            let w = now.map_or(0, |h| {
                let warm = if resumed { WARM } else { 0 };
                ((h.epoch as u64) << 2) | if h.active { ACTIVE | warm } else { 0 }
            });
            self.slots[usize::from(slot)].store(w, Ordering::Release);
            changed.push(Change {
                slot,
                now,
                new_tenure: now.is_some_and(|n| n.active) && !resumed,
            });
        }
        changed
    }
}

async fn rows(db: &PgPool) -> Result<BTreeMap<u16, Held>, sqlx::Error> {
    let rows = sqlx::query("SELECT slot, epoch, state FROM slot_ownership")
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            let slot: i32 = r.try_get(0)?;
            let state: String = r.try_get(2)?;
            Ok((
                slot as u16,
                Held {
                    epoch: r.try_get(1)?,
                    active: state == "active",
                },
            ))
        })
        .collect()
}

/// First load, before the node serves (slots are cold until warmed).
pub async fn load(view: &OwnedSlots, db: &PgPool) -> Result<(), sqlx::Error> {
    let seq = view.begin_load();
    let r = rows(db).await?;
    view.store(&r);
    view.stored.fetch_max(seq, Ordering::AcqRel);
    view.valid.store(true, Ordering::Release);
    Ok(())
}

impl OwnedSlots {
    fn begin_load(&self) -> u64 {
        self.begun.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The sequence number the next reload will carry: a reload that reads
    /// the table after whatever was committed before this call.
    pub fn upcoming_load(&self) -> u64 {
        self.begun.load(Ordering::Acquire) + 1
    }

    /// True once a reload numbered `seq` or later is in the copy.
    pub fn loaded_since(&self, seq: u64) -> bool {
        self.stored.load(Ordering::Acquire) >= seq
    }

    /// Active slots not yet warm (readiness names them).
    pub fn warming(&self) -> usize {
        (0..SLOTS as u16)
            .filter(|s| self.word(*s) & (ACTIVE | WARM) == ACTIVE)
            .count()
    }
}

/// Follows the table for ever; `changed` gets every slot whose row changed.
pub async fn follow(
    view: Arc<OwnedSlots>,
    db: PgPool,
    changed: tokio::sync::mpsc::UnboundedSender<Vec<Change>>,
) {
    loop {
        let mut listener = match PgListener::connect_with(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "slot ownership listener cannot connect");
                view.valid.store(false, Ordering::Release);
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        if let Err(e) = listener.listen("slot_ownership").await {
            tracing::warn!(error = %e, "LISTEN slot_ownership failed");
            view.valid.store(false, Ordering::Release);
            tokio::time::sleep(RECONNECT).await;
            continue;
        }
        loop {
            let seq = view.begin_load();
            match rows(&db).await {
                Ok(r) => {
                    let c = view.store(&r);
                    view.stored.fetch_max(seq, Ordering::AcqRel);
                    view.valid.store(true, Ordering::Release);
                    if !c.is_empty() && changed.send(c).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reloading slot ownership failed");
                    view.valid.store(false, Ordering::Release);
                }
            }
            match tokio::time::timeout(RELOAD, listener.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                // Connection lost (notifications may be missed): it
                // reconnects on the next call; reload meanwhile.
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "slot ownership listener failed");
                    view.valid.store(false, Ordering::Release);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reload_begun_after_the_sync_committed_makes_the_copy_current() {
        let v = OwnedSlots::new();
        // A reload that had begun (and read the table) before the commit.
        let early = v.begin_load();
        let needed = v.upcoming_load();
        v.stored.fetch_max(early, Ordering::AcqRel);
        assert!(
            !v.loaded_since(needed),
            "an earlier read counted as current"
        );
        let later = v.begin_load();
        v.stored.fetch_max(later, Ordering::AcqRel);
        assert!(v.loaded_since(needed));
    }
}
