//! API tests against a real node, Postgres and Redis (one binary, shared helpers).

mod caps;
mod concurrency;
mod constraints;
mod errors;
mod faults;
mod feed;
mod fence_wait;
mod fenced_writes;
mod flows;
mod group_commit;
mod helpers;
mod hostile;
mod key_locks;
mod limits;
mod ownership;
mod plans;
mod remaining;
mod replay;
mod seat_counts;
mod spans;
mod tokens;
