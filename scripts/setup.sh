#!/usr/bin/env bash
# Installs what Ciliate needs on this machine and builds it. Safe to run again.
source "$(dirname "$0")/lib.sh"
setup_all
log "set-up complete"
