//! One file per check of `deploy/`.

mod couponctl_config;
mod exported_metrics;
mod raft_bootstrap;
