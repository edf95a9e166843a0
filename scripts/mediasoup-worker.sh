#!/usr/bin/env bash
# Builds mediasoup's worker from node_modules/mediasoup/worker with whipcast's patch,
# against Debian's libraries, once; caches it by mediasoup version + patch hash.
# Prints the binary's absolute path as the last line of stdout (all else to stderr):
#   export MEDIASOUP_WORKER_BIN=$(bash scripts/mediasoup-worker.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${WHIPCAST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/whipcast}"
SRC="$ROOT/node_modules/mediasoup/worker"
log() { printf '[mediasoup-worker] %s\n' "$*" >&2; }
die() { printf '[mediasoup-worker] ERROR: %s\n' "$*" >&2; exit 1; }

[ -d "$SRC" ] || die "$SRC not found: run npm ci first"
VERSION=$(node -p "require('$ROOT/node_modules/mediasoup/package.json').version")
PATCH="$ROOT/sfu/worker-build/mediasoup-$VERSION.patch"
[ -f "$PATCH" ] || die "no patch for mediasoup $VERSION ($PATCH): write one before upgrading"
KEY="$VERSION-$(sha256sum "$PATCH" | cut -c1-12)"
OUT_DIR="$CACHE_DIR/mediasoup-worker/$KEY"
BIN="$OUT_DIR/mediasoup-worker"


if [ -x "$BIN" ] && ! ldd "$BIN" | grep -q 'not found'; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE_DIR/mediasoup-worker"
exec 9>"$CACHE_DIR/mediasoup-worker/.lock"
log "waiting for the build lock"
flock 9
if [ -x "$BIN" ] && ! ldd "$BIN" | grep -q 'not found'; then
  echo "$BIN"
  exit 0
fi

BUILD_DEPS=(build-essential pkg-config python3 meson ninja-build libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler)
missing=()
for pkg in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing build dependencies: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { $SUDO apt-get update -qq >&2 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mediasoup-worker-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building mediasoup $VERSION worker (cache key $KEY); this takes ~8 minutes on 2 cores"
cp -r "$SRC" "$WORK/worker"
rm -rf "$WORK/worker/out"
if ! (cd "$WORK/worker" && patch -p1 --forward --fuzz=0 --no-backup-if-mismatch -s <"$PATCH" >&2); then
  die "the patch $PATCH does not apply to mediasoup $VERSION's worker sources (see the rejected hunks above)"
fi
(cd "$WORK/worker" && meson setup --wrap-mode=nodownload --buildtype release -Db_ndebug=true -Db_pie=true "$WORK/build" >&2)
ninja -C "$WORK/build" mediasoup-worker >&2
strip "$WORK/build/mediasoup-worker"
mkdir -p "$OUT_DIR"
install -m 0755 "$WORK/build/mediasoup-worker" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
log "built $BIN ($(du -h "$BIN" | cut -f1))"
echo "$BIN"
