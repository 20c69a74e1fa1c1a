#!/usr/bin/env bash
# README command 2: install what is missing and run every test, plus the
# formatting and lint gates. Tests start their own Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Multi-process tests start the built binaries of other crates.
cargo build --workspace --bins
cargo nextest run --workspace --no-fail-fast "$@"
