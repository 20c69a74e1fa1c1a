//! Postgres access, one file per table family. SQL lives here and in
//! `migrations/`; handlers never write SQL.

pub mod attempts;
pub mod batch;
pub mod campaigns;
pub mod codes;
pub mod jobs;
pub mod outbox;
pub mod redemptions;
pub mod slots;

/// True when `e` is a violation of the named constraint or unique index.
pub fn is_constraint(e: &sqlx::Error, name: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some(name))
}
