#!/usr/bin/env bash
# The whole test suite, as the README tells a newcomer to run it and as CI runs it.
# Installs what is missing (cargo-nextest; prometheus from Debian; the control plane's binaries via
# tests/cluster/setup.sh, built once and cached), then: formatting, lints, every test tier,
# and the release build the container image would hold.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if ! command -v prometheus >/dev/null 2>&1; then
  # The metric tests run a real Prometheus (tests/cluster/prometheus.rs). Debian's package;
  # no recommends (node exporter and friends are not needed).
  step "installing prometheus"
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
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
