#!/usr/bin/env bash
# The whole test suite, as the README tells a newcomer to run it and as CI runs it.
# Installs what is missing (cargo-nextest; prometheus, chromium, graphite-carbon, graphite-web,
# influxdb, victoria-metrics, python3-venv, nodejs and npm from Debian; Helm's engine
# from PyPI; TypeScript and Grafana's dashboard types from npm; the control plane's binaries via
# tests/cluster/setup.sh, built once and cached), then: formatting, lints, every test tier,
# and the release build the container image would hold.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
  if [[ -z $APT_UPDATED ]]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

if ! command -v prometheus >/dev/null 2>&1; then
  # The metric tests run a real Prometheus (tests/cluster/prometheus.rs). Debian's package;
  # no recommends (node exporter and friends are not needed).
  step "installing prometheus"
  apt_install prometheus
fi

# The picture tests (tests/pictures.rs) open `serin simulate -o html|svg` and `serin judge --plot`
# drawings in headless Chromium and assert on the DOM it builds. Debian's package.
if ! command -v chromium >/dev/null 2>&1; then
  step "installing chromium"
  apt_install chromium
fi

# The metric provider tests run real Graphite (carbon-cache, and graphite-web under Debian's
# Python), InfluxDB 1.x and VictoriaMetrics (tests/cluster/metric_servers.rs).
METRIC_SERVERS=()
command -v carbon-cache >/dev/null 2>&1 || METRIC_SERVERS+=(graphite-carbon)
[[ -f /usr/lib/python3/dist-packages/graphite/wsgi.py ]] || METRIC_SERVERS+=(graphite-web)
command -v influxd >/dev/null 2>&1 || METRIC_SERVERS+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || METRIC_SERVERS+=(victoria-metrics)
if [[ ${#METRIC_SERVERS[@]} -gt 0 ]]; then
  step "installing ${METRIC_SERVERS[*]}"
  apt_install "${METRIC_SERVERS[@]}"
fi

if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  step "installing python3-venv"
  apt_install python3-venv
fi

# The chart tests (tests/helm.rs) render and lint charts/serin with Helm's real engine: Helm 4's
# Go SDK as bundled by the PyPI package helm-python-sdk, in a virtualenv of its own.
HELM_VENV="$HOME/.cache/serin/helm-python-sdk-0.2.2"
if [[ ! -x $HELM_VENV/bin/python ]]; then
  step "installing Helm's engine (helm-python-sdk 0.2.2 from PyPI)"
  rm -rf "$HELM_VENV.staging"
  python3 -m venv "$HELM_VENV.staging"
  "$HELM_VENV.staging/bin/pip" install --quiet helm-python-sdk==0.2.2
  mv "$HELM_VENV.staging" "$HELM_VENV"
fi
export SERIN_HELM_PYTHON="$HELM_VENV/bin/python"

if ! command -v npm >/dev/null 2>&1; then
  step "installing nodejs and npm"
  apt_install nodejs npm
fi

# The dashboard tests (tests/dashboards.rs) type-check charts/serin/dashboards against
# Grafana's dashboard model: the TypeScript types of @grafana/schema, with TypeScript, both
# pinned by tests/grafana/package-lock.json.
GRAFANA_SCHEMA="$HOME/.cache/serin/grafana-schema-13.2.3"
if [[ ! -x $GRAFANA_SCHEMA/node_modules/typescript/bin/tsc ]]; then
  step "installing @grafana/schema and TypeScript (npm)"
  rm -rf "$GRAFANA_SCHEMA.staging"
  mkdir -p "$GRAFANA_SCHEMA.staging"
  cp tests/grafana/package.json tests/grafana/package-lock.json "$GRAFANA_SCHEMA.staging/"
  (cd "$GRAFANA_SCHEMA.staging" && npm ci --no-audit --no-fund --silent)
  mv "$GRAFANA_SCHEMA.staging" "$GRAFANA_SCHEMA"
fi
export SERIN_GRAFANA_SCHEMA="$GRAFANA_SCHEMA"

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
