#!/usr/bin/env bash
# Installs everything the tests need (Debian packages incl. Postgres, Chromium, ffmpeg,
# GStreamer; Node 20; npm packages; the mediasoup worker; the web build) and runs every
# check: type checks, lint, and all test suites (vitest), against both the embedded
# database and a throwaway Postgres cluster.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt "${BASE_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
ensure_node
ensure_npm_deps
ensure_db_user
ensure_worker
ensure_web_build

cd "$ROOT"
log "type-checking"
npm run -s typecheck
log "linting"
npm run -s lint
log "running tests"
npx vitest run "$@"
