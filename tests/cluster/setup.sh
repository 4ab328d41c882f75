#!/usr/bin/env bash
# Provides a real Kubernetes control plane's binaries for the test suite: etcd,
# kube-apiserver and kube-controller-manager, built once from Debian's `kubernetes` source
# package and cached under ~/.cache/serin/kube-<version>/ (the next run takes a second).
#
# Prints the assets directory (the envtest layout) on its last line of stdout.
# Honours KUBEBUILDER_ASSETS: a directory with etcd and kube-apiserver (and optionally
# kube-controller-manager) is used as it is, so newer Kubernetes versions can be tested.
set -euo pipefail

log() { echo "cluster-setup: $*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in etcd kube-apiserver; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $bin"; exit 1; }
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

VERSION=1.20.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/serin/kube-$VERSION"
if [[ -x "$CACHE/kube-apiserver" && -x "$CACHE/kube-controller-manager" && -x "$CACHE/etcd" ]]; then
  echo "$CACHE"
  exit 0
fi

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    log "missing packages ($*): run 'sudo apt-get install -y $*' or run this script as root"
    exit 1
  fi
}

# Debian packages: etcd, Go to build Kubernetes, rsync (without it the build silently writes
# empty binaries), dpkg-dev for `apt-get source`, and reflect2 1.0.2 (see below).
PACKAGES=(etcd-server golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev openssl util-linux)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
SRC_LIST=/etc/apt/sources.list.d/serin-deb-src.sources
if [[ ${#missing[@]} -gt 0 || ! -f $SRC_LIST ]]; then
  need_root "${missing[@]}" "a deb-src entry"
  if [[ ! -f $SRC_LIST ]]; then
    cat > "$SRC_LIST" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  log "installing ${missing[*]:-nothing new} (apt-get update first)"
  apt-get update -qq >&2
  if [[ ${#missing[@]} -gt 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/serin-kube-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
log "fetching Debian's kubernetes source package"
apt-get source --download-only kubernetes >&2
dpkg-source --no-check -x kubernetes_*.dsc src >&2
cd src

# Kubernetes 1.20 vendors reflect2 1.0.1, which crashes under Go >= 1.18 (SIGSEGV in
# UnsafeMapType.UnsafeIterate the first time a custom resource is serialized). Debian's 1.0.2
# fixes it and is API-compatible: swap the sources in.
REFLECT=vendor/github.com/modern-go/reflect2
rm -f "$REFLECT"/*.go "$REFLECT"/*.s
for f in $(dpkg -L golang-github-modern-go-reflect2-dev | grep -E '/reflect2/[^/]+\.(go|s)$'); do
  cp "$f" "$REFLECT/"
done

log "building kube-apiserver and kube-controller-manager (about 7 minutes on 2 cores)"
mkdir -p .go/src/k8s.io "$WORK/home"
ln -s ../../.. .go/src/k8s.io/kubernetes
export GOPATH=$PWD/.go CGO_ENABLED=0 HOME="$WORK/home" GOFLAGS=-mod=vendor
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2

mkdir -p "$CACHE.partial"
cp _output/bin/kube-apiserver _output/bin/kube-controller-manager "$CACHE.partial/"
for bin in kube-apiserver kube-controller-manager; do
  [[ -s "$CACHE.partial/$bin" ]] || { log "build produced an empty $bin"; exit 1; }
done
ln -sf "$(command -v etcd)" "$CACHE.partial/etcd"
rm -rf "$CACHE" && mv "$CACHE.partial" "$CACHE"
log "cached in $CACHE"
echo "$CACHE"
