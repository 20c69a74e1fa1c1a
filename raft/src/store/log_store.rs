//! `RaftLogStorage` on redb: entries, vote, committed id and the last purged id.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, StorageIOError};
use redb::{Database, ReadableTable};

use super::{blocking, read_meta, write_meta, DbError, LOGS, META};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The raft log of one member. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(super) fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

fn err(make: fn(AnyError) -> StorageIOError<u64>) -> impl Fn(DbError) -> StorageError {
    move |e| make(AnyError::new(&e)).into()
}

fn bound_start(b: Bound<&u64>) -> u64 {
    match b {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn bound_end(b: Bound<&u64>) -> Option<u64> {
    match b {
        Bound::Included(x) => Some(x.saturating_add(1)),
        Bound::Excluded(x) => Some(*x),
        Bound::Unbounded => None,
    }
}

fn read_range(db: &Database, start: u64, end: Option<u64>) -> Result<Vec<Entry>, DbError> {
    let tx = db.begin_read()?;
    let table = tx.open_table(LOGS)?;
    let mut out = Vec::new();
    let iter = match end {
        Some(end) if end <= start => return Ok(out),
        Some(end) => table.range(start..end)?,
        None => table.range(start..)?,
    };
    for row in iter {
        let (_, v) = row?;
        out.push(serde_json::from_slice(v.value())?);
    }
    Ok(out)
}

/// Removes every entry whose index is in `range`.
fn delete_range(
    db: &Database,
    range: impl RangeBounds<u64>,
) -> Result<redb::WriteTransaction, DbError> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(LOGS)?;
        let keys: Vec<u64> = table
            .range(range)?
            .map(|row| row.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for k in keys {
            table.remove(k)?;
        }
    }
    Ok(tx)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = bound_start(range.start_bound());
        let end = bound_end(range.end_bound());
        blocking(&self.db, move |db| read_range(db, start, end))
            .await
            .map_err(err(StorageIOError::read_logs))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let state = blocking(&self.db, |db| {
            let last_purged: Option<LogId> = read_meta(db, LAST_PURGED)?;
            let tx = db.begin_read()?;
            let table = tx.open_table(LOGS)?;
            let last = match table.last()? {
                Some((_, v)) => Some(serde_json::from_slice::<Entry>(v.value())?.log_id),
                None => last_purged,
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last,
            })
        });
        state.await.map_err(err(StorageIOError::read_logs))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        blocking(&self.db, move |db| write_meta(db, VOTE, &vote))
            .await
            .map_err(err(StorageIOError::write_vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        blocking(&self.db, |db| read_meta(db, VOTE))
            .await
            .map_err(err(StorageIOError::read_vote))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        blocking(&self.db, move |db| write_meta(db, COMMITTED, &committed))
            .await
            .map_err(err(StorageIOError::write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed = blocking(&self.db, |db| read_meta::<Option<LogId>>(db, COMMITTED));
        Ok(committed
            .await
            .map_err(err(StorageIOError::read))?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let rows: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, serde_json::to_vec(&e)?)))
            .collect::<Result<_, DbError>>()
            .map_err(err(StorageIOError::write_logs))?;
        let res = blocking(&self.db, move |db| {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(LOGS)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(err(StorageIOError::write_logs)(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(&self.db, move |db| {
            Ok(delete_range(db, log_id.index..)?.commit()?)
        })
        .await
        .map_err(err(StorageIOError::write_logs))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(&self.db, move |db| {
            let tx = delete_range(db, ..=log_id.index)?;
            let bytes = serde_json::to_vec(&Some(log_id))?;
            tx.open_table(META)?.insert(LAST_PURGED, bytes.as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(err(StorageIOError::write_logs))
    }
}
