#!/usr/bin/env bash
# Runs serin's test suite against a kind cluster instead of the built-in control plane.
# Needs docker and kind. Usage: bash tests/e2e/kind/run.sh [cluster-name]
set -euo pipefail
cd "$(dirname "$0")/../../.."
NAME=${1:-serin-e2e}
for tool in docker kind cargo; do
  command -v "$tool" >/dev/null || { echo "kind e2e: '$tool' is required" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$NAME"; then
  kind create cluster --name "$NAME" --wait 120s
fi
KUBECONFIG_FILE=$(mktemp)
trap 'rm -f "$KUBECONFIG_FILE"' EXIT
kind get kubeconfig --name "$NAME" > "$KUBECONFIG_FILE"

docker build -t serin:e2e .
kind load docker-image serin:e2e --name "$NAME"

# The same tests, with real kubelets instead of the pod simulator.
SERIN_E2E_KUBECONFIG="$KUBECONFIG_FILE" SERIN_E2E_IMAGE=serin:e2e cargo nextest run --locked --no-fail-fast
echo "kind e2e: done; delete the cluster with: kind delete cluster --name $NAME"
