#!/usr/bin/env bash
# The run command: sets the machine up, starts the local lab (`ciliate lab up`: a nats-server,
# two nodes as network namespaces with the eBPF datapath, the cluster services, a kubelet) and
# runs the demo (`ciliate lab demo`: pods answering each other across nodes).
#   scripts/run.sh          set up, start the lab (or restart what of it is not running), demo
#   scripts/run.sh down     remove the lab and everything it made (`ciliate lab down`)
# CILIATE_LAB_NAME (default "default") and CILIATE_LAB_NODES (default 2) choose the lab.
source "$(dirname "$0")/lib.sh"

NAME="${CILIATE_LAB_NAME:-default}"
NODES="${CILIATE_LAB_NODES:-2}"

# The lab needs root (namespaces, eBPF); the context goes to the invoking user's config, so that
# `npx ciliate ...` finds the lab without sudo.
CONTEXT="${CILIATE_CONTEXT_FILE:-${XDG_CONFIG_HOME:-$HOME/.config}/ciliate/context.json}"
ciliate() {
  (cd "$ROOT" && as_root env "PATH=$PATH" "CILIATE_CONTEXT_FILE=$CONTEXT" \
    ${NATS_SERVER_BIN:+"NATS_SERVER_BIN=$NATS_SERVER_BIN"} ${CILIATE_STATE:+"CILIATE_STATE=$CILIATE_STATE"} \
    node apps/cli/bin/ciliate.js "$@")
}

if [ "${1:-up}" = "down" ]; then
  [ -x "$ROOT/apps/cli/bin/ciliate.js" ] && [ -e "$ROOT/apps/lab/dist/index.js" ] ||
    die "the tree is not built; nothing of a lab can be running (run scripts/run.sh first)"
  ciliate lab down --name "$NAME"
  exit 0
fi

setup_run
log "starting lab $NAME ($NODES nodes)"
ciliate lab up --name "$NAME" --nodes "$NODES"
log "running the demo"
ciliate lab demo --name "$NAME"
cat <<TXT

Ciliate's lab "$NAME" is running. The CLI talks to it with no flags (context lab-$NAME):
  npx ciliate status          npx ciliate get pods -A          npx ciliate lab status
Stop and remove everything:   scripts/run.sh down   (or: npx ciliate lab down)
TXT
