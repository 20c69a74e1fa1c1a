//! coupon-raft: the openraft group that stores the slot → region ownership map with epochs.

pub mod auth;
pub mod client;
pub mod command;
pub mod config;
pub mod controller;
pub mod counters;
mod failover_rules;
pub mod http;
pub mod map_view;
pub mod model;
pub mod network;
pub mod server;
pub mod state_machine;
pub mod store;
pub mod types;
