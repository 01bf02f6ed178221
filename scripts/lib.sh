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
  clang          # compiles bpf/*.c to BPF objects (packages/bpf build)
  llvm           # llvm-objdump / llvm-strip for inspecting BPF objects
  libbpf-dev     # libbpf headers and library: the native addon and bpf_helpers.h
  libelf-dev     # libbpf's ELF dependency (linked by the addon)
  zlib1g-dev     # libbpf's zlib dependency (linked by the addon)
  bpftool        # inspecting loaded programs and pinned maps when debugging
  make           # drives the addon and BPF object build
  gcc            # compiles the N-API addon (C)
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
  # npm ci only when the lock changed since the last install: a fast no-op otherwise.
  local stamp="node_modules/.ciliate-lock-hash"
  local want
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing npm dependencies"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

build_all() {
  cd "$ROOT"
  log "building"
  npx --no-install turbo run build --output-logs=errors-only
}

setup_all() {
  ensure_system_packages
  ensure_node
  ensure_npm_deps
  build_all
}
