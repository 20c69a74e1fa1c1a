//! One file per scenario; each file's header names the invariant it guards.

mod bad_key;
mod cross_region;
mod helpers;
mod node_crash;
mod partition;
mod raft_leader;
mod router_contract;
mod stale_map;
