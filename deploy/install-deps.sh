#!/usr/bin/env bash
# Installs what the project needs and is missing: PostgreSQL and Redis from
# Debian's packages, cargo-nextest from crates.io, schemathesis from PyPI
# (contract test). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian's packages…"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The project starts its own servers on loopback; the packages' system
  # services are not needed (and may be refused in containers).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest from crates.io…"
  cargo install cargo-nextest --locked
fi

# schemathesis (PyPI) for the contract test, in a venv under target/ (ignored).
SCHEMATHESIS_VERSION=4.32.5
if [ ! -x target/pyenv/bin/schemathesis ] \
  || ! target/pyenv/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into target/pyenv…"
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
