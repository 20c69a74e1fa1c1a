#!/usr/bin/env bash
# README command 1: install what is missing, build, and start the local
# cluster in the foreground (Ctrl-C stops every process it started).
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --workspace --bins
exec ./target/release/couponctl dev up "$@"
