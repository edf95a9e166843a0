#!/usr/bin/env bash
# Quick start: installs what is needed (Debian packages, Node 20, npm packages, the
# mediasoup worker, the web build, the server bundle) and runs whipcast on the embedded database.
# Extra arguments are ignored; configure with environment variables (docs/configuration.md).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_apt "${BASE_PACKAGES[@]}"
ensure_node
ensure_npm_deps
ensure_db_user
ensure_worker
ensure_web_build
ensure_server_build

cd "$ROOT"
log "starting whipcast on http://localhost:${PORT:-8080} (Ctrl-C to stop)"
exec node --max-semi-space-size=1 dist/server.js
