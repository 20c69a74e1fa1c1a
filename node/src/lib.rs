//! The regional coupon node as a library: `main.rs` and the tests build the
//! same app from [`start::build_state`] and [`http::app`].

pub mod auth;
pub mod bloom;
pub mod burst;
pub mod cache;
pub mod codegen;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub use coupon_core::metrics;
pub mod ownership;
pub mod redeem;
pub mod service_auth;
pub mod start;
pub mod state;
pub mod store;

pub use http::app;

/// The schema, embedded at build time from the workspace's `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
