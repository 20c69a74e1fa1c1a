#!/usr/bin/env bash
# Installs what the project needs and is missing: PostgreSQL and Redis from
# Debian's packages, cargo-nextest from crates.io; for the deploy checks,
# promtool (Debian's `prometheus`), kubectl (Debian's `kubernetes-client`
# when the machine has none); Python tools in target/pyenv (PyPI):
# kubernetes-validate (deploy checks) and schemathesis (contract test);
# wrk (Debian's package), the external C load generator `couponctl bench
# burst` is cross-checked against (docs/benchmarks.md).
# Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# Debian's kubectl is old (its kustomize predates the overlays' syntax): a
# machine's own newer kubectl is kept when present.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian's packages…"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The project starts its own servers on loopback; the packages' system
  # services are not needed (and may be refused in containers).
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest from crates.io…"
  cargo install cargo-nextest --locked
fi

# Python tools, in one virtualenv under target/ (ignored by git). One pip
# line: add packages to PY_PACKAGES.
PY_PACKAGES=(kubernetes-validate==1.37.0 schemathesis==4.32.5)
if [ ! -x target/pyenv/bin/python ] || ! target/pyenv/bin/pip show "${PY_PACKAGES[@]%%=*}" >/dev/null 2>&1; then
  echo "installing ${PY_PACKAGES[*]} into target/pyenv…"
  mkdir -p target
  python3 -m venv target/pyenv
  target/pyenv/bin/pip install -q "${PY_PACKAGES[@]}"
fi
