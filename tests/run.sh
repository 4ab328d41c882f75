#!/usr/bin/env bash
# The whole test suite, as the README tells a newcomer to run it and as CI runs it.
# Installs what is missing (cargo-nextest; the control plane's binaries via
# tests/cluster/setup.sh, built once and cached), then: formatting, lints, every test tier,
# and the release build the container image would hold.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

step "formatting"
cargo fmt --check

step "lints"
cargo clippy --all-targets --locked -- -D warnings

if [[ -z "${SERIN_E2E_KUBECONFIG:-}" ]]; then
  step "control plane binaries"
  KUBEBUILDER_ASSETS="$(bash tests/cluster/setup.sh | tail -n 1)"
  export KUBEBUILDER_ASSETS
fi

step "tests"
cargo nextest run --locked --no-fail-fast

step "release build"
cargo build --release --locked
