//! API tests against a real node, Postgres and Redis (one binary, shared helpers).

mod concurrency;
mod constraints;
mod errors;
mod faults;
mod flows;
mod helpers;
mod tokens;
