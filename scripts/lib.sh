# Shared helpers for the set-up scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# System packages Ciliate needs, each with who needs it: `run` for building Ciliate and running
# the lab (scripts/run.sh), `test` for the test tiers and benchmarks only (scripts/test.sh
# installs both). One list, so the two commands cannot drift apart.
SYSTEM_PACKAGES=(
  nats-server:run     # the message bus and JetStream store
  iproute2:run        # ip, tc: network namespaces, veth, routes
  iputils-ping:run    # ping inside namespaces
  clang:run           # compiles bpf/*.c to BPF objects (packages/bpf build)
  llvm:run            # llvm-objdump / llvm-strip for inspecting BPF objects
  libbpf-dev:run      # libbpf headers and library: the native addon and bpf_helpers.h
  libelf-dev:run      # libbpf's ELF dependency (linked by the addon)
  zlib1g-dev:run      # libbpf's zlib dependency (linked by the addon)
  bpftool:run         # inspecting loaded programs and pinned maps when debugging
  make:run            # drives the addon and BPF object build
  gcc:run             # compiles the N-API addon (C)
  curl:run            # the lab demo's requests between pods
  ca-certificates:run
  containernetworking-plugins:run # portmap, chained after ciliate-cni by the lab's kubelet (and bandwidth in tests)
  iptables:run        # portmap writes its DNAT rules with it
  etcd-server:test    # the store behind kube-apiserver in the kubernetes test tier
  openssl:test        # certificates for that kube-apiserver and the NATS TLS test, made per run
  iperf3:test         # pod-to-pod TCP throughput in the datapath benchmark (npm run bench)
)

# The packages for a purpose: `run` (build and run the lab) or `test` (everything).
system_packages_for() {
  local purpose="$1" entry
  case "$purpose" in run | test) ;; *) die "system_packages_for: purpose must be run or test, not '$purpose'" ;; esac
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    case "${entry##*:}" in
      run) printf '%s\n' "${entry%:*}" ;;
      test) [ "$purpose" = run ] || printf '%s\n' "${entry%:*}" ;;
      *) die "SYSTEM_PACKAGES entry '$entry' must end in :run or :test" ;;
    esac
  done
}

# Installs the missing packages for a purpose (default: test, that is every package).
ensure_system_packages() {
  local purpose="${1:-test}" wanted missing=() p
  wanted="$(system_packages_for "$purpose")"
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  log "installing system packages: ${missing[*]}"
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with your package manager"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_node() {
  command -v node >/dev/null || die "Node.js 20 or newer is required (node not found)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is required (found $(node --version))"
}

ensure_npm_deps() {
  cd "$ROOT"
  # Install only when the lock changed since the last install: a fast no-op otherwise.
  # `npm install` rather than `npm ci`: npm 11.19's `ci` rejects the lock it writes itself (it
  # asks for other platforms' optional packages, such as turbo's); with the lock present,
  # `install` still installs exactly the locked versions.
  local stamp="node_modules/.ciliate-lock-hash"
  local want
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing npm dependencies"
    npm install --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

CACHE_DIR="${CILIATE_CACHE:-$HOME/.cache/ciliate}"
export CACHE_DIR

# Debian's nats-server (2.9) lets two concurrent compare-and-set writes to a replicated KV key both
# succeed; Ciliate's allocations depend on that check, so a pinned newer release is built from
# the Go module proxy (once, then cached) and used by the tests and the lab.
nats_server_path() {
  echo "$CACHE_DIR/nats-server/$(cat "$ROOT/tools/nats-server.version")/nats-server"
}

ensure_nats_server() {
  local version bin
  version="$(cat "$ROOT/tools/nats-server.version")"
  bin="$(nats_server_path)"
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || die "Go is needed once to build nats-server $version (apt-get install golang, or set NATS_SERVER_BIN)"
    log "building nats-server $version from the Go module proxy (once)"
    mkdir -p "$(dirname "$bin")"
    GOBIN="$(dirname "$bin")" GOFLAGS=-trimpath CGO_ENABLED=0 go install "github.com/nats-io/nats-server/v2@$version"
  fi
  export NATS_SERVER_BIN="${NATS_SERVER_BIN:-$bin}"
}

# cnitool, libcni's reference driver, for the test that has libcni drive the plugin as container
# runtimes do: built from the Go module proxy at tools/cnitool.version (once, then cached).
ensure_cnitool() {
  local version bin
  version="$(cat "$ROOT/tools/cnitool.version")"
  bin="$CACHE_DIR/cnitool/$version/cnitool"
  if [ ! -x "$bin" ]; then
    ensure_go
    log "building cnitool $version from the Go module proxy (once)"
    mkdir -p "$(dirname "$bin")"
    GOBIN="$(dirname "$bin")" GOFLAGS=-trimpath CGO_ENABLED=0 \
      go install "github.com/containernetworking/cni/cnitool@$version"
  fi
  export CNITOOL="${CNITOOL:-$bin}"
}

build_all() {
  cd "$ROOT"
  log "building"
  npx --no-install turbo run build --output-logs=errors-only
}

# kube-apiserver and kubectl for the kubernetes test tier, built from the Go module proxy at the
# release pinned in tools/kube-apiserver/go.mod (the only place it is written), cached per version.
KUBE_TOOL_DIR="$ROOT/tools/kube-apiserver"

ciliate_cache_dir() {
  printf '%s\n' "${CILIATE_CACHE:-$HOME/.cache/ciliate}"
}

# The pinned release, e.g. v1.34.4. packages/testkit/src/kube.ts reads go.mod the same way.
kube_version() {
  local v
  v="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$KUBE_TOOL_DIR/go.mod")"
  [ -n "$v" ] || die "no k8s.io/kubernetes requirement in $KUBE_TOOL_DIR/go.mod"
  printf '%s\n' "$v"
}

kube_bin_dir() {
  printf '%s/kube/%s/bin\n' "$(ciliate_cache_dir)" "$(kube_version)"
}

# Every staging module (k8s.io/api, ...) must be replaced with v0.Y.Z of release v1.Y.Z: a mix
# of releases may build but is not an API server anyone tested.
check_kube_replaces() {
  local want bad
  want="v0.${1#v1.}"
  bad="$(awk -v want="$want" '$1 ~ /^k8s\.io\// && $2 == "=>" && $4 != want { print "  " $1 " => " $3 " " $4 }' \
    "$KUBE_TOOL_DIR/go.mod")"
  [ -z "$bad" ] || die "tools/kube-apiserver/go.mod pins k8s.io/kubernetes $1, so every staging module must be replaced with $want; these are not:
$bad"
}

ensure_go() {
  command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null ||
    die "Go 1.24 or newer is needed to build kube-apiserver for the kubernetes test tier (go not found; see https://go.dev/doc/install), or set CILIATE_KUBE_BIN_DIR to a directory holding kube-apiserver and kubectl"
  local minor
  minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  # From 1.21 on, the go command fetches the toolchain go.mod asks for by itself.
  [ -n "$minor" ] && [ "$minor" -ge 21 ] ||
    die "Go 1.21 or newer is needed to build kube-apiserver (found $(go env GOVERSION))"
}

# Builds the binaries only when the cached ones for the pinned release are missing; prints the
# directory that holds them. Safe to run concurrently: the build happens under a lock and the
# directory appears with a rename, so nobody sees half of it.
ensure_kube_binaries() {
  local version bin cache
  version="$(kube_version)"
  bin="$(kube_bin_dir)"
  if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubectl" ]; then
    printf '%s\n' "$bin"
    return 0
  fi
  check_kube_replaces "$version"
  ensure_go
  cache="$(dirname "$bin")"
  mkdir -p "$cache"
  (
    flock 9
    if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubectl" ]; then exit 0; fi
    log "building kube-apiserver and kubectl $version (once per release; takes a while)"
    local staging="$cache/.bin.$$" gocache="$cache/.gocache" minor="${version#v1.}"
    minor="${minor%%.*}"
    rm -rf "$staging"
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
    local started=$SECONDS
    # A private build cache, removed afterwards: it is only useful again for this very release,
    # and kube-apiserver's would otherwise leave gigabytes in the user's Go cache.
    (cd "$KUBE_TOOL_DIR" &&
      CGO_ENABLED=0 GOCACHE="$gocache" GOFLAGS=-mod=readonly go build \
        -p "${CILIATE_KUBE_BUILD_JOBS:-2}" -trimpath -ldflags="$ldflags" -o "$staging/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) ||
      { rm -rf "$staging"; die "building kube-apiserver $version failed"; }
    rm -rf "$bin" "$gocache"
    mv "$staging" "$bin"
    log "built kube-apiserver and kubectl $version in $((SECONDS - started)) s into $bin"
  ) 9>"$cache/.lock" || exit 1
  printf '%s\n' "$bin"
}

# What the run command needs: build Ciliate and run the lab. No kube-apiserver (minutes to build)
# and no test-only packages: only the tests use them.
setup_run() {
  ensure_system_packages run
  ensure_nats_server
  ensure_node
  ensure_npm_deps
  build_all
}

# What the test command needs: everything the run command does, plus the test-only packages and
# kube-apiserver for the kubernetes tier.
setup_all() {
  ensure_system_packages test
  ensure_nats_server
  ensure_node
  ensure_npm_deps
  ensure_kube_binaries >/dev/null
  ensure_cnitool
  build_all
}
