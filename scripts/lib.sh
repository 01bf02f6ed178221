# Shared helpers for the set-up scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# System packages every part of Ciliate needs to build, test and run the lab. Kept in one list so
# that the run command and the test command install the same machine.
SYSTEM_PACKAGES=(
  nats-server    # the message bus and JetStream store
  iproute2       # ip, tc: network namespaces, veth, routes
  iputils-ping   # ping inside namespaces
  curl
  ca-certificates
)

ensure_system_packages() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
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

build_all() {
  cd "$ROOT"
  log "building"
  npx --no-install turbo run build --output-logs=errors-only
}

setup_all() {
  ensure_system_packages
  ensure_nats_server
  ensure_node
  ensure_npm_deps
  build_all
}
