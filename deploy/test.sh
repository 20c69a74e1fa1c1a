#!/usr/bin/env bash
# README command 2: install what is missing and run every test, plus the
# formatting and lint gates. Tests start their own Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo fmt --all -- --check
# Manifests, image recipe and monitoring files (seconds).
./deploy/check-deploy.sh
cargo clippy --workspace --all-targets --features coupon-node/failpoints -- -D warnings
# Multi-process tests start the built binaries of other crates.
cargo build --workspace --bins --features coupon-node/failpoints
# Failpoints are compiled in for the fault tests only (docs/architecture.md §8).
cargo nextest run --workspace --features coupon-node/failpoints --no-fail-fast "$@"
# The same concurrency and crash suites on the Postgres-only claim engine
# (the node reads COUPON_CLAIM_ENGINE itself; the Redis-fault tests are
# about the burst path and stay on it).
if [ $# -eq 0 ]; then
  # Same package selection and features as above, so nothing is rebuilt.
  COUPON_CLAIM_ENGINE=postgres cargo nextest run --workspace --features coupon-node/failpoints --no-fail-fast \
    -E 'package(coupon-node) & (test(/^concurrency::/) | test(/^faults::(a_crash_after_commit|postgres_stopped|a_paused)/))'
fi
# The served OpenAPI documents against the running servers (about 2 minutes).
./deploy/contract-test.sh
