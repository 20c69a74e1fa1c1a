//! `RaftStateMachine`: the in-memory map state, snapshots persisted in redb, and the watch
//! channel that tells readers (HTTP long-polls) about every new map version.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use redb::Database;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{blocking, read_meta, write_meta, DbError};
use crate::model::{ClusterMap, RegionId};
use crate::state_machine::{Command, MapState};
use crate::types::{
    Entry, LogId, Response, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use std::collections::HashMap;
use std::time::Instant;

const SNAPSHOT: &str = "snapshot";

/// Everything a snapshot holds: the applied position, the membership and the map state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: MapState,
}

/// A snapshot as persisted: its meta plus the serialized [`SmData`].
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine of one member. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct SmStore {
    db: Arc<Database>,
    data: Arc<Mutex<SmData>>,
    map_tx: Arc<watch::Sender<Arc<ClusterMap>>>,
    snapshot_seq: Arc<AtomicU64>,
    /// When this member applied each region's latest lease renewal, on its
    /// own monotonic clock (not replicated: the failover controller judges
    /// lapses on the leader's clock only).
    seen: Arc<Mutex<HashMap<RegionId, (u64, Instant)>>>,
}

fn err(make: fn(AnyError) -> StorageIOError<u64>) -> impl Fn(DbError) -> StorageError {
    move |e| make(AnyError::new(&e)).into()
}

impl SmStore {
    /// Loads the latest persisted snapshot (if any) as the starting state.
    pub(super) fn load(db: Arc<Database>) -> Result<Self, DbError> {
        let data = match read_meta::<StoredSnapshot>(&db, SNAPSHOT)? {
            Some(s) => serde_json::from_slice(&s.data)?,
            None => SmData::default(),
        };
        let (map_tx, _) = watch::channel(Arc::new(data.state.map.clone()));
        Ok(Self {
            db,
            data: Arc::new(Mutex::new(data)),
            map_tx: Arc::new(map_tx),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            seen: Arc::default(),
        })
    }

    /// A receiver that always holds the latest applied map.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMap>> {
        self.map_tx.subscribe()
    }

    /// The latest applied map.
    pub fn current_map(&self) -> Arc<ClusterMap> {
        self.map_tx.borrow().clone()
    }

    /// Lease sequence and local apply time of each region's last renewal.
    pub fn lease_seen(&self) -> HashMap<RegionId, (u64, Instant)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock(&self) -> MutexGuard<'_, SmData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, map: &ClusterMap) {
        self.map_tx.send_if_modified(|cur| {
            if cur.version == map.version && **cur == *map {
                return false;
            }
            *cur = Arc::new(map.clone());
            true
        });
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SmStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (bytes, meta) = {
            let data = self.lock();
            let bytes = serde_json::to_vec(&*data)
                .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
            let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
            let id = match data.last_applied {
                Some(l) => format!(
                    "{}-{}-{}-{seq}",
                    l.leader_id.term,
                    l.index,
                    std::process::id()
                ),
                None => format!("none-{}-{seq}", std::process::id()),
            };
            let meta = SnapshotMeta {
                last_log_id: data.last_applied,
                last_membership: data.last_membership.clone(),
                snapshot_id: id,
            };
            (bytes, meta)
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes.clone(),
        };
        blocking(&self.db, move |db| write_meta(db, SNAPSHOT, &stored))
            .await
            .map_err(err(StorageIOError::write))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = SmStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let data = self.lock();
        Ok((data.last_applied, data.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut data = self.lock();
        let mut out = Vec::new();
        for entry in entries {
            data.last_applied = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(req) => {
                    let (result, replayed) = data.state.apply(&req);
                    if let (Command::RenewLease { region, .. }, Ok(_)) = (&req.command, &result) {
                        if let Some(l) = data.state.map.leases.get(region) {
                            self.seen
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(region.clone(), (l.seq, Instant::now()));
                        }
                    }
                    Response {
                        result: Some(result),
                        replayed,
                    }
                }
                EntryPayload::Membership(m) => {
                    data.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::default()
                }
            });
        }
        self.publish(&data.state.map);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let new: SmData = serde_json::from_slice(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        blocking(&self.db, move |db| write_meta(db, SNAPSHOT, &stored))
            .await
            .map_err(err(StorageIOError::write))?;
        let mut data = self.lock();
        *data = SmData {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            state: new.state,
        };
        self.publish(&data.state.map);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = blocking(&self.db, |db| read_meta::<StoredSnapshot>(db, SNAPSHOT))
            .await
            .map_err(err(StorageIOError::read))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
