//! Validated domain values: anything past these constructors is well formed.

pub mod campaign;
pub mod discount;
pub mod idempotency;
pub mod json;
pub mod text;
pub mod time;
