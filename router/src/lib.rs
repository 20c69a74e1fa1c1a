//! The coupon router as a library: computes the slot of a request from the
//! string alone, looks its owner up in the cached raft map and forwards to
//! that region's node with the slot's epoch and a service token
//! (docs/architecture.md §2). `main.rs` and the tests build the same app.

pub mod config;
pub mod error;
pub mod forward;
pub mod health;
pub mod http;
pub mod plan;
pub mod state;

pub use http::app;
