//! One file per check of `deploy/`.

mod couponctl_config;
mod exported_metrics;
mod log_files;
mod raft_bootstrap;
