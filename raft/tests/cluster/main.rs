//! Cluster tests: real `coupon-raft` processes on loopback, members linked through proxies.

mod basic;
mod failover;
mod helpers;
mod membership;
mod moves;
mod partition;
mod proxy;
mod reads;
mod writes;
