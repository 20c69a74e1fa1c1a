#!/usr/bin/env bash
# README command 2: install what is missing and run every test, plus the
# formatting and lint gates. Tests start their own Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features coupon-node/failpoints -- -D warnings
# Multi-process tests start the built binaries of other crates.
cargo build --workspace --bins
# Failpoints are compiled in for the fault tests only (DESIGN.md §8).
cargo nextest run --workspace --features coupon-node/failpoints --no-fail-fast "$@"
# The served OpenAPI documents against the running servers (about 2 minutes).
./deploy/contract-test.sh
