//! API tests against a real node, Postgres and Redis (one binary, shared helpers).

mod concurrency;
mod caps;
mod constraints;
mod errors;
mod faults;
mod feed;
mod flows;
mod helpers;
mod ownership;
mod hostile;
mod replay;
mod tokens;
