//! This region's Postgres replication as the lease and the operators see it
//! (docs/failover.md): the primary's timeline (the fencing token of a
//! region's primary role), the WAL position its synchronous standby
//! confirmed, and whether it runs degraded (no synchronous standby named).

use crate::metrics::Metrics;
use sqlx::{PgPool, Row};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    pub timeline: u64,
    /// `synchronous_standby_names` is empty: commits do not wait for a standby.
    pub degraded: bool,
    /// Synchronous standbys streaming now.
    pub sync_standbys: i64,
    /// Highest WAL position a synchronous standby confirmed flushed.
    pub standby_flush_lsn: u64,
    /// This primary's own flushed WAL position.
    pub flush_lsn: u64,
    /// Bytes the slowest standby's replay is behind (-1: no standby).
    pub lag_bytes: i64,
}

impl Status {
    /// The position every acknowledged commit is at or below: the standby's
    /// confirmation when synchronous, everything local when degraded.
    pub fn acked_lsn(&self) -> u64 {
        if self.degraded {
            self.flush_lsn
        } else {
            self.standby_flush_lsn
        }
    }
}

/// Reads the status of a primary (errors on a standby still in recovery).
pub async fn status(db: &PgPool) -> Result<Status, sqlx::Error> {
    let row = sqlx::query(
        "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint AS timeline,
                current_setting('synchronous_standby_names') = '' AS degraded,
                (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')) AS sync_standbys,
                COALESCE((SELECT max(flush_lsn - '0/0'::pg_lsn) FROM pg_stat_replication
                          WHERE sync_state IN ('sync', 'quorum')), 0)::bigint AS standby_flush,
                (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint AS flushed,
                COALESCE((SELECT max(pg_current_wal_lsn() - replay_lsn) FROM pg_stat_replication), -1)::bigint AS lag",
    )
    .fetch_one(db)
    .await?;
    Ok(Status {
        timeline: row.get::<i64, _>("timeline") as u64,
        degraded: row.get("degraded"),
        sync_standbys: row.get("sync_standbys"),
        standby_flush_lsn: row.get::<i64, _>("standby_flush") as u64,
        flush_lsn: row.get::<i64, _>("flushed") as u64,
        lag_bytes: row.get("lag"),
    })
}

/// Gauges alerts watch: degraded, synchronous standbys, replay lag.
pub fn publish(m: &Metrics, st: &Status) {
    m.set_gauge(
        "coupon_sync_replication_degraded",
        &[],
        f64::from(u8::from(st.degraded)),
    );
    m.set_gauge("coupon_sync_standbys", &[], st.sync_standbys as f64);
    m.set_gauge("coupon_standby_lag_bytes", &[], st.lag_bytes as f64);
}

/// True while the database is a standby in recovery.
pub async fn in_recovery(db: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(db)
        .await
}
