/**
 * The composition root: one process, one port. Opens the database, starts the
 * media layer, and serves the HTTP API, WHIP/WHEP, the web UI, `/metrics` and
 * the `/ws` socket from a single uWebSockets.js server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase, type Database } from '@whipcast/db';
import pino, { type Logger } from 'pino';
import { createAccounts, type Accounts } from './accounts.ts';
import { loadSecret } from './auth/secret.ts';
import { createChannels, type Channels } from './channels.ts';
import { Clips } from './clips.ts';
import { joinCluster } from './cluster/node.ts';
import type { Config } from './config.ts';
import { clipPageHeadTags } from './http/clip-page.ts';
import { buildOpenApiDocument, openApiRoute } from './http/openapi.ts';
import { createRouter, type Router } from './http/router.ts';
import { authRoutes } from './http/routes/auth.ts';
import { clipRoutes } from './http/routes/clips.ts';
import { opsRoutes } from './http/routes/ops.ts';
import { recordingRoutes } from './http/routes/recordings.ts';
import { streamRoutes } from './http/routes/streams.ts';
import { thumbnailRoutes } from './http/routes/thumbnails.ts';
import { loadStaticSite, staticHandler } from './http/static.ts';
import { originOf } from './http/security-headers.ts';
import type { Route } from './http/types.ts';
import type { MediaDeps, MediaLayer } from './media.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { PeriodicJob } from './periodic.ts';
import { RecordingSweeper } from './recording-sweeper.ts';
import { Recordings } from './recordings.ts';
import { Thumbnailer } from './thumbnails.ts';
import { startServer, type RunningServer } from './uws.ts';
import { createChat } from './socket/chat.ts';
import { createHub, type SocketState } from './socket/hub.ts';
import { Presence } from './socket/presence.ts';
import { VERSION } from './version.ts';

/** Largest body any route accepts (SDP offers are the biggest). Routes set tighter limits. */
const MAX_BODY_BYTES = 256 * 1024;
/** How often expired sessions are deleted (lookups ignore them anyway). */
const SESSION_PURGE_INTERVAL_MS = 3600_000;
/** How often finished recordings are checked against retention and quota. */
const RECORDINGS_SWEEP_INTERVAL_MS = 5 * 60_000;

export interface Whipcast {
  readonly port: number;
  /** Base URL for local clients, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly db: Database;
  readonly logger: Logger;
  readonly accounts: Accounts;
  readonly channels: Channels;
  readonly metrics: Metrics;
  readonly router: Router;
  /** Graceful stop: readiness fails, listening stops, sessions end, database closes. Idempotent. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Use this open database instead of connecting per the config (tests). The server closes it. */
  database?: Database;
  /** Builds the media layer once the database and channels exist. */
  media?: (deps: MediaDeps) => Promise<MediaLayer>;
}

export async function startWhipcast(config: Config, options: StartOptions = {}): Promise<Whipcast> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'whipcast' } });
  const embeddedPath = config.embeddedDbPath ?? join(config.dataDir, 'postgres');
  const persisted = !options.database && (!!config.databaseUrl || embeddedPath !== ':memory:');
  // the embedded database's password derives from the secret
  const secret = await loadSecret({ configured: config.secret, dataDir: config.dataDir, persist: persisted, logger });
  if (!options.database && !config.databaseUrl && existsSync(join(config.dataDir, 'pglite'))) {
    const dir = join(config.dataDir, 'pglite');
    logger.warn({ dir }, 'an embedded PGlite database from an earlier version is no longer used (nor migrated); it is left untouched');
  }
  const db =
    options.database ??
    (await openDatabase({
      url: config.databaseUrl,
      embeddedPath,
      secret,
      maxConnections: config.databasePoolSize,
      idleSeconds: config.databaseIdleSeconds,
      logger,
    }));
  // Lookups already ignore expired sessions; deleting them keeps the table from growing (safe on several nodes at once).
  const sessionPurge = new PeriodicJob({
    name: 'expired sessions purge',
    intervalMs: SESSION_PURGE_INTERVAL_MS,
    logger,
    async run() {
      const n = await db.sessions.deleteExpired();
      if (n) logger.info({ sessions: n }, 'purged expired sessions');
    },
  });
  const recordingsDir = config.recordingsDir ?? join(config.dataDir, 'recordings');
  const recordingsSweeper = new RecordingSweeper(db, {
    dir: recordingsDir,
    retentionDays: config.recordingsRetentionDays,
    quotaBytes: config.recordingsQuotaMb === undefined ? undefined : config.recordingsQuotaMb * 1024 * 1024,
    intervalMs: RECORDINGS_SWEEP_INTERVAL_MS,
    logger: logger.child({ component: 'recordings' }),
  });
  const cleanup: (() => Promise<void>)[] = [() => recordingsSweeper.close(), () => sessionPurge.close(), () => db.close()];
  /** When close() began (the shutdown grace counts from about then). */
  let closeStartedAt = performance.now();
  try {
    if (!config.nodeUrl) {
      // No publisher can be connected to a process that is just starting (in a cluster, expiry finds them).
      const stale = await db.streams.setAllOffline();
      if (stale) logger.info({ channels: stale }, 'marked channels left live by a previous run offline');
    }
    const cluster = await joinCluster({
      db,
      logger: logger.child({ component: 'cluster' }),
      secret,
      nodeUrl: config.nodeUrl,
      nodeId: config.nodeId,
      heartbeatSeconds: config.nodeHeartbeatSeconds,
      expirySeconds: config.nodeExpirySeconds,
    });
    cleanup.unshift(() => cluster.close());

    const metrics = createMetrics();
    const recordings = new Recordings({ db, dir: recordingsDir, logger: logger.child({ component: 'recordings' }), metrics });
    // after the media layer has closed (it finishes the recordings being written)
    // within the shutdown grace (main.ts exits at its end), leaving 2 s for what closes after it (the database)
    cleanup.unshift(() => recordings.close(Math.max(500, closeStartedAt + config.shutdownGraceMs - 2000 - performance.now())));
    // unfinished recordings from a crash: in a cluster only those no node has written to for a while
    void recordings
      .recover({ idleMs: config.nodeUrl ? 120_000 : 0 })
      .then((n) => n && logger.info({ recordings: n }, 'recovered recordings left unfinished by a previous run'));
    let media: MediaLayer | undefined;
    // viewer counts (summed over the nodes) for the API; the socket hub keeps them up to date
    const presence = new Presence();
    cleanup.unshift(async () => presence.close());
    const accounts = createAccounts(db, { sessionTtlMs: config.sessionTtlHours * 3600_000 });
    const channels = createChannels({
      db,
      secret,
      viewerCount: (id) => presence.get(id).viewers,
      onKeyRotated: (id) => media?.endPublisher(id, 'stream key rotated'),
    });
    if (options.media) {
      media = await options.media({ config, logger, db, channels, metrics, cluster, recordings });
      const m = media;
      cleanup.unshift(() => m.close());
    }
    const clips = new Clips({
      db,
      dir: recordingsDir,
      programs: () => media?.programs,
      perUserPerHour: config.clipsPerUserPerHour,
      logger: logger.child({ component: 'clips' }),
      metrics,
    });
    const thumbnails = new Thumbnailer(() => media?.programs?.live() ?? [], {
      dir: join(recordingsDir, 'thumbnails'),
      intervalMs: config.thumbnailIntervalSeconds * 1000,
      logger: logger.child({ component: 'thumbnails' }),
    });
    cleanup.unshift(() => thumbnails.close());
    const thumbnailsMade = metrics.counter('whipcast_thumbnails_total', 'Live thumbnails made, by outcome', ['outcome']);
    const thumbnailSeconds = metrics.histogram(
      'whipcast_thumbnail_seconds',
      'Time to decode one live thumbnail',
      [0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    );
    thumbnails.on('made', (_id, ms) => (thumbnailsMade.inc({ outcome: 'ok' }), thumbnailSeconds.observe(ms / 1000)));
    thumbnails.on('failed', () => thumbnailsMade.inc({ outcome: 'failed' }));

    let shuttingDown = false;
    const routes: Route[] = [
      ...opsRoutes({
        readiness: { database: async () => (await db.ping(), true), media: () => media?.ready() ?? false },
        metrics: metrics.registry,
        shuttingDown: () => shuttingDown,
        metricsToken: config.metricsToken,
      }),
      ...authRoutes(accounts, {
        loginPerMinute: config.loginRatePerMinute,
        loginFailuresPerAccount: config.loginFailuresPerAccount,
        registerPerHour: config.registerRatePerHour,
        hashConcurrency: config.passwordHashConcurrency,
        hashQueue: config.passwordHashQueue,
      }),
      ...streamRoutes({ accounts, channels, whipUrl: (req) => `${publicBase(config, req)}/whip` }),
      ...recordingRoutes({ accounts, channels, recordings, db }),
      ...clipRoutes({ accounts, channels, clips, db }),
      ...thumbnailRoutes(thumbnails),
      ...(media?.routes() ?? []),
    ];
    routes.push(openApiRoute(() => routes, VERSION));
    const site = await loadStaticSite(config.webDir);
    if (!site) logger.warn({ webDir: config.webDir }, 'web UI not built; serving the API only');
    const publicOrigin = originOf(config.publicUrl);
    const router = createRouter({
      routes,
      fallback: staticHandler(site, {
        connectSources: publicOrigin ? [publicOrigin] : [],
        headTags: clipPageHeadTags({ db, channels, base: (req) => publicBase(config, req) }),
      }),
      logger,
    });

    const chat = createChat({
      db,
      maxMessageLength: config.chatMaxMessageLength,
      historyLimit: config.chatHistoryLimit,
      ratePerTenSeconds: config.chatRatePerTenSeconds,
    });
    const socketFrames = metrics.counter('whipcast_socket_frames_total', 'Socket requests by type and outcome', ['type', 'ok']);
    const sockets = createHub({
      accounts,
      chat,
      channels,
      presence,
      media,
      bus: cluster.bus,
      nodeId: cluster.nodeId,
      logger: logger.child({ component: 'socket' }),
      limits: {
        maxPayloadBytes: config.wsMaxPayloadBytes,
        maxBackpressureBytes: config.wsMaxBackpressureBytes,
        messagesPerSecond: config.wsMessagesPerSecond,
        maxInFlight: config.wsMaxRequestsInFlight,
        maxSocketsPerAddress: config.wsMaxSocketsPerAddress,
        maxTransportsPerAddress: config.wsMaxTransportsPerAddress,
      },
      onFrame: (type, ok) => socketFrames.inc({ type, ok: String(ok) }),
    });
    metrics.gauge('whipcast_sockets', 'Open /ws sockets', () => sockets.size());
    cleanup.unshift(async () => sockets.close());

    const server: RunningServer = await startServer<SocketState>({
      websocket: sockets.websocket,
      host: config.host,
      port: config.port,
      maxBodyBytes: MAX_BODY_BYTES,
      trustProxy: config.trustProxy,
      onError: (err) => logger.error({ err }, 'http adapter error'),
      async http(req, info) {
        const end = metrics.httpDuration.startTimer({ method: req.method });
        const res = await router.handle(req, info);
        end();
        metrics.httpRequests.inc({ method: req.method, status: String(res.status) });
        return res;
      },
    });
    cleanup.unshift(async () => server.stopListening());

    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    let closing: Promise<void> | undefined;
    return {
      port: server.port,
      url: `http://${host}:${server.port}`,
      db,
      logger,
      accounts,
      channels,
      metrics,
      router,
      close() {
        closing ??= (async () => {
          shuttingDown = true;
          closeStartedAt = performance.now();
          for (const step of cleanup) {
            await step().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const step of cleanup) await step().catch(() => {});
    throw err;
  }
}

/** Base URL clients reach this server at: PUBLIC_URL, else the request's own scheme and Host. */
export function publicBase(config: Config, req: Request): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  const url = new URL(req.url);
  const proto = config.trustProxy ? req.headers.get('x-forwarded-proto')?.split(',').at(-1)?.trim() : undefined;
  return `${proto ?? url.protocol.replace(':', '')}://${req.headers.get('host') ?? url.host}`;
}

export { buildOpenApiDocument };
