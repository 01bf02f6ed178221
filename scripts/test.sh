#!/usr/bin/env bash
# The test command: sets the machine up, runs every package's tests through turbo, and closes with
# one line that adds up every package's counts. Tiers: CILIATE_TEST_TIERS=unit,integration,...
source "$(dirname "$0")/lib.sh"
setup_all
cd "$ROOT"

log "lint and typecheck"
npx --no-install turbo run lint typecheck --output-logs=errors-only

log "tests (tiers: ${CILIATE_TEST_TIERS:-all})"
set +e
npx --no-install turbo run test --concurrency=1 --continue "$@"
status=$?
set -e

node scripts/sum-results.mjs || status=1
exit "$status"
