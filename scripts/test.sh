#!/usr/bin/env bash
# The test command: sets the machine up, runs every package's tests through turbo, and closes with
# one line that adds up every package's counts. Tiers: CILIATE_TEST_TIERS=unit,integration,...
source "$(dirname "$0")/lib.sh"
setup_all
cd "$ROOT"

log "lint and typecheck"
npx --no-install turbo run lint typecheck --output-logs=errors-only

# Root tiers are skipped for other users: the user is part of the test task's cache key
# (turbo.json), so a cached run never stands in for one made with other rights.
export CILIATE_TEST_USER
CILIATE_TEST_USER="$([ "$(id -u)" -eq 0 ] && echo root || echo unprivileged)"
log "tests (tiers: ${CILIATE_TEST_TIERS:-all}, as ${CILIATE_TEST_USER})"
set +e
npx --no-install turbo run test --concurrency=1 --continue "$@"
status=$?
set -e

node scripts/sum-results.mjs || status=1
exit "$status"
