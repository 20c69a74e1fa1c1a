//! redb-backed raft storage: one database file per member holding the log, the vote, the
//! committed id and the latest state-machine snapshot.
//!
//! The state machine itself lives in memory and is rebuilt on start from the persisted
//! snapshot plus the log up to the persisted committed id (openraft re-applies it), so a
//! restart yields the same map and version.

mod log_store;
mod sm_store;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

pub use log_store::LogStore;
pub use sm_store::{SmData, SmStore};

/// Log entries by index, JSON-encoded.
pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small named values (vote, committed, last purged, snapshot), JSON-encoded.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Failures of the embedded store, before they become openraft's `StorageError`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("redb: {0}")]
    Redb(Box<redb::Error>),
    #[error("encoding: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("blocking task failed: {0}")]
    Join(String),
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(Box::new(e.into()))
            }
        }
    )*};
}
redb_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Opens (or creates) the member's database under `dir` and returns both stores.
pub fn open(dir: &Path) -> Result<(LogStore, SmStore), DbError> {
    std::fs::create_dir_all(dir)?;
    let db = Arc::new(Database::create(dir.join("raft.redb"))?);
    let tx = db.begin_write()?;
    tx.open_table(LOGS)?;
    tx.open_table(META)?;
    tx.commit()?;
    let sm = SmStore::load(db.clone())?;
    Ok((LogStore::new(db), sm))
}

/// Runs a redb closure on the blocking pool so fsyncs never stall the raft core task.
pub(crate) async fn blocking<T, F>(db: &Arc<Database>, f: F) -> Result<T, DbError>
where
    T: Send + 'static,
    F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
{
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| DbError::Join(e.to_string()))?
}

/// Reads one JSON value from [`META`].
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    db: &Database,
    key: &str,
) -> Result<Option<T>, DbError> {
    let tx = db.begin_read()?;
    let table = tx.open_table(META)?;
    let value = table.get(key)?;
    Ok(match value {
        Some(v) => Some(serde_json::from_slice(v.value())?),
        None => None,
    })
}

/// Writes one JSON value to [`META`] in its own durable transaction.
pub(crate) fn write_meta<T: serde::Serialize>(
    db: &Database,
    key: &str,
    value: &T,
) -> Result<(), DbError> {
    let bytes = serde_json::to_vec(value)?;
    let tx = db.begin_write()?;
    tx.open_table(META)?.insert(key, bytes.as_slice())?;
    tx.commit()?;
    Ok(())
}
