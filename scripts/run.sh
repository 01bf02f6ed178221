#!/usr/bin/env bash
# The run command: sets the machine up, starts a NATS server with JetStream and every Ciliate
# service that exists, points the CLI at them, and shows `ciliate status`.
#   scripts/run.sh          start (or show, when already running)
#   scripts/run.sh down     stop everything it started and remove its state
source "$(dirname "$0")/lib.sh"

STATE="${CILIATE_STATE:-$HOME/.local/state/ciliate}/local"
PORT="${CILIATE_LOCAL_NATS_PORT:-4250}"
URL="nats://127.0.0.1:$PORT"
CONTEXT="${XDG_CONFIG_HOME:-$HOME/.config}/ciliate/context.json"

stop_all() {
  [ -d "$STATE/pids" ] || return 0
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    local pid; pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 1
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    kill -KILL "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

if [ "${1:-up}" = "down" ]; then
  stop_all
  rm -rf "$STATE"
  if [ -f "$CONTEXT" ] && grep -q "\"name\": *\"local\"" "$CONTEXT"; then rm -f "$CONTEXT"; fi
  log "stopped; state removed"
  exit 0
fi

setup_all
mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/nats"

start_bg() { # name, command...
  local name="$1"; shift
  local pidfile="$STATE/pids/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  nohup "$@" >"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$pidfile"
}

cat >"$STATE/nats/nats.conf" <<CONF
server_name: ciliate-local
listen: 127.0.0.1:$PORT
jetstream { store_dir: "$STATE/nats/jetstream" }
CONF
log "starting nats-server on $URL"
start_bg nats "$NATS_SERVER_BIN" -c "$STATE/nats/nats.conf"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.2; done

mkdir -p "$(dirname "$CONTEXT")"
printf '{ "name": "local", "natsUrl": "%s" }\n' "$URL" >"$CONTEXT"

# The cluster services that run without Kubernetes (the kube-bridge needs an API server; the
# datapath runs per node in the lab).
LOCAL_SERVICES=(identity ipam)
expect=()
for svc in "${LOCAL_SERVICES[@]}"; do
  main="$ROOT/services/$svc/dist/main.js"
  [ -e "$main" ] || continue
  log "starting $svc"
  CILIATE_NATS_URL="$URL" CILIATE_NODE="${CILIATE_NODE:-local}" CILIATE_HTTP_ADDRESS=127.0.0.1:0 \
    start_bg "$svc" node "$main"
  expect+=("$svc")
done

cd "$ROOT"
if [ "${#expect[@]}" -gt 0 ]; then
  npx --no-install ciliate status --wait --timeout 60s --expect "$(IFS=,; echo "${expect[*]}")"
else
  log "no Ciliate service is built yet; NATS is up at $URL"
  npx --no-install ciliate status
fi
cat <<TXT

Ciliate is running locally: NATS at $URL, logs in $STATE/logs.
Try:   npx ciliate status            (the CLI finds this NATS through $CONTEXT)
       npx ciliate status -o json
Stop:  scripts/run.sh down
TXT
