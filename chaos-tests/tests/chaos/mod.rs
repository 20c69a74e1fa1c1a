//! One file per scenario; each file's header names the invariant it guards.

mod bad_key;
mod cross_region;
mod cut_off;
mod evacuate;
mod failback;
mod helpers;
mod lease_pause;
mod move_admin_writes;
mod move_caches;
mod move_kills;
mod move_under_load;
mod mover_paths;
mod mover_sigkill;
mod node_crash;
mod one_way_partition;
mod partition;
mod pools_and_releases;
mod raft_leader;
mod region_killed;
mod region_partitioned;
mod router_contract;
mod router_refusals;
mod stale_map;
mod standby_lost;
mod takeover_interrupted;
mod two_nodes;
