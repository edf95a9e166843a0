/**
 * Every setting whipcast reads from the environment, with its default and
 * documentation, in one table. `docs/configuration.md` is generated from this
 * table (`npm run docs:config`) and a test keeps the two in sync.
 * (Past the usual ~400 lines on purpose: the brief puts every env var in this
 * one file, and each setting is a few lines of parser, default and doc.)
 */
import { availableParallelism, networkInterfaces } from 'node:os';
import { parseLadder } from '@whipcast/sfu';

type Parser<T> = (raw: string, name: string) => T;

interface Setting<T> {
  env: string;
  doc: string;
  /** Default as shown in the docs; `undefined` means "unset". */
  default: string | undefined;
  parse: Parser<T>;
  group: string;
}

const str: Parser<string> = (raw) => raw;
const int =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
    return n;
  };
const bool: Parser<boolean> = (raw, name) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
};
const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    if ((values as string[]).includes(raw)) return raw as T;
    throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
  };
const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const ladder: Parser<number[]> = (raw, name) => {
  try {
    return parseLadder(raw);
  } catch (err) {
    throw new ConfigError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
};
const optional =
  <T>(p: Parser<T>): Parser<T | undefined> =>
  (raw, name) =>
    raw === '' ? undefined : p(raw, name);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function setting<T>(group: string, env: string, def: string | undefined, parse: Parser<T>, doc: string): Setting<T> {
  return { group, env, default: def, parse, doc };
}

export const SETTINGS = {
  // Server
  host: setting('Server', 'HOST', '0.0.0.0', str, 'Address the HTTP/WebSocket server binds to.'),
  port: setting(
    'Server',
    'PORT',
    '8080',
    int(0, 65535),
    'The one port for the web UI, HTTP API, WHIP/WHEP, `/ws` and `/metrics` (0 = any free port).',
  ),
  publicUrl: setting(
    'Server',
    'PUBLIC_URL',
    undefined,
    optional(str),
    "Public base URL (e.g. `https://live.example.com`) used in the WHIP URL shown to streamers. Default: derived from the request's Host header.",
  ),
  trustProxy: setting(
    'Server',
    'TRUST_PROXY',
    'false',
    bool,
    'Trust `X-Forwarded-For`/`X-Forwarded-Proto` from one reverse proxy (client IP for rate limits: the last `X-Forwarded-For` entry, the one the proxy appended; scheme for URLs). Only with a proxy in front: otherwise clients choose their own address.',
  ),
  logLevel: setting(
    'Server',
    'LOG_LEVEL',
    'info',
    oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'pino log level. Logs are JSON lines on stdout.',
  ),
  webDir: setting('Server', 'WEB_DIR', 'web/build', str, 'Directory of the built SvelteKit front end served at `/`.'),
  shutdownGraceMs: setting(
    'Server',
    'SHUTDOWN_GRACE_MS',
    '10000',
    int(0, 600_000),
    "On SIGINT/SIGTERM: how long to wait for in-flight work before exiting. Recordings being written are closed at once (their files play); their download files are built one at a time until 2 s before the end (about 3 s of CPU per 10 minutes of 720p at 2.5 Mbit/s), and those not built by then are built by the next start's recovery.",
  ),
  // Storage
  databaseUrl: setting(
    'Storage',
    'DATABASE_URL',
    undefined,
    optional(str),
    'Postgres connection string. Unset: whipcast runs its own embedded Postgres server (no install needed) in `EMBEDDED_DB_PATH`, reachable only by this process (Unix socket in a private directory, password derived from the server secret, no TCP).',
  ),
  dataDir: setting(
    'Storage',
    'DATA_DIR',
    './data',
    str,
    'Directory for local state: the embedded database, the generated server secret, DVR spill files.',
  ),
  embeddedDbPath: setting(
    'Storage',
    'EMBEDDED_DB_PATH',
    undefined,
    optional(str),
    'Embedded database directory (a Postgres 18 data directory), or `:memory:` (a throwaway one in the temporary directory, removed on exit). Default: `$DATA_DIR/postgres`. As root, the server runs as the `postgres` system user.',
  ),
  databasePoolSize: setting(
    'Storage',
    'DATABASE_POOL_SIZE',
    '10',
    int(1, 1000),
    "Most connections whipcast opens to the database at once (opened on demand, closed after `DATABASE_IDLE_SECONDS` unused). The embedded server accepts this many plus 10. With several nodes, keep nodes × this under the server's `max_connections`.",
  ),
  databaseIdleSeconds: setting(
    'Storage',
    'DATABASE_IDLE_SECONDS',
    '30',
    int(1, 3600),
    'Seconds a database connection stays open unused before whipcast closes it (each open one is a Postgres backend, ≈ 16 MB in the embedded server).',
  ),
  secret: setting(
    'Storage',
    'WHIPCAST_SECRET',
    undefined,
    optional(str),
    'Server secret (≥ 32 chars) from which stream keys are derived, and node-to-node auth. Default: generated once into `$DATA_DIR/secret`. Set it explicitly when running several nodes.',
  ),
  metricsToken: setting(
    'Server',
    'METRICS_TOKEN',
    undefined,
    optional(str),
    '`GET /metrics` then requires `Authorization: Bearer <METRICS_TOKEN>` (401 without). Unset: `/metrics` is public; keep it off the internet some other way.',
  ),
  // Accounts
  sessionTtlHours: setting('Accounts', 'SESSION_TTL_HOURS', '720', int(1, 24 * 365), 'How long a sign-in session lasts.'),
  loginRatePerMinute: setting(
    'Accounts',
    'LOGIN_RATE_PER_MINUTE',
    '10',
    int(1, 100_000),
    'Sign-in attempts per client address (IPv6: per /64) per minute; beyond it 429 with `Retry-After`.',
  ),
  loginFailuresPerAccount: setting(
    'Accounts',
    'LOGIN_FAILURES_PER_ACCOUNT',
    '10',
    int(1, 100_000),
    'Failed sign-ins per account per 15 minutes, from all addresses together; beyond it that account answers 429 with `Retry-After` until the window ends.',
  ),
  registerRatePerHour: setting(
    'Accounts',
    'REGISTER_RATE_PER_HOUR',
    '20',
    int(1, 1_000_000),
    'Sign-ups per client address (IPv6: per /64) per hour; beyond it 429 with `Retry-After`.',
  ),
  passwordHashConcurrency: setting(
    'Accounts',
    'PASSWORD_HASH_CONCURRENCY',
    '1',
    int(1, 64),
    'Password hashes (scrypt: ~32 MiB and ~0.1 s of a core each) computed at once; more sign-ins and sign-ups wait in a queue served round-robin by client address. Raise it on machines with many cores.',
  ),
  passwordHashQueue: setting(
    'Accounts',
    'PASSWORD_HASH_QUEUE',
    '16',
    int(0, 10_000),
    'Sign-ins and sign-ups that may wait for a hashing slot (one address: a quarter of them); beyond it 503 with `Retry-After` at once.',
  ),
  // Media
  mediasoupWorkerBin: setting(
    'Media',
    'MEDIASOUP_WORKER_BIN',
    undefined,
    optional(str),
    'Path of the mediasoup worker binary. Default: the one `scripts/mediasoup-worker.sh` built into the cache.',
  ),
  mediaWorkers: setting(
    'Media',
    'MEDIA_WORKERS',
    undefined,
    optional(int(1, 256)),
    'Number of mediasoup workers. Default: one per CPU core.',
  ),
  workerAllocator: setting(
    'Media',
    'WORKER_ALLOCATOR',
    'auto',
    oneOf('auto', 'jemalloc', 'system'),
    "Memory allocator of the mediasoup workers. `jemalloc` (Debian: `libjemalloc2`, preloaded) gives the memory of viewers who left back to the system within about a second; with the system's malloc a worker keeps what its largest audience took. `auto`: jemalloc when installed, else the system's.",
  ),
  routerMaxViewers: setting(
    'Media',
    'ROUTER_MAX_VIEWERS',
    '250',
    int(1, 100_000),
    "Viewers per mediasoup router. A channel's audience beyond it spreads to another router on the least-loaded worker (pipeToRouter).",
  ),
  rtcListenIp: setting('Media', 'RTC_LISTEN_IP', '0.0.0.0', str, 'IP the media sockets (WebRtcServer) bind to.'),
  rtcAnnouncedAddress: setting(
    'Media',
    'RTC_ANNOUNCED_ADDRESS',
    undefined,
    optional(str),
    "IP or hostname put in ICE candidates. Default: this host's first non-internal IPv4 address (127.0.0.1 if none). Set it to the public IP behind NAT.",
  ),
  rtcPort: setting(
    'Media',
    'RTC_PORT',
    '40000',
    int(0, 65535),
    'First media port: worker *i* listens on UDP and TCP `RTC_PORT + i` (0 = random ports, for tests).',
  ),
  rtcUdpBufferBytes: setting(
    'Media',
    'RTC_UDP_BUFFER_BYTES',
    '4194304',
    int(0, 1 << 30),
    "Receive and send buffer of each worker's UDP media socket (every publisher and viewer of a worker shares it), bytes; the kernel caps it at `net.core.rmem_max` / `wmem_max`. Too small, and keyframe bursts of many publishers overflow it: packet loss on the way in for every viewer of a channel. The same size goes to the pipes that carry a channel to its WHEP viewers' routers and to other nodes. 0 = the kernel's default (`rmem_default`, often 208 KiB).",
  ),
  iceServers: setting(
    'Media',
    'ICE_SERVERS',
    '',
    list,
    'Comma-separated STUN/TURN URLs sent to WHIP/WHEP clients as `Link: rel="ice-server"` headers (e.g. `stun:stun.example.com:3478`).',
  ),
  publisherTimeoutMs: setting(
    'Media',
    'PUBLISHER_TIMEOUT_MS',
    '5000',
    int(500, 120_000),
    'A publisher that sends no RTP for this long is considered gone and the channel goes offline.',
  ),
  whipRateLimitPerMinute: setting(
    'Media',
    'WHIP_RATE_LIMIT_PER_MINUTE',
    '30',
    int(1, 100_000),
    'WHIP/WHEP session creations allowed per client IP and per stream key per minute (429 beyond).',
  ),
  // DVR
  dvrWindowSeconds: setting(
    'DVR',
    'DVR_WINDOW_SECONDS',
    '1800',
    int(0, 24 * 3600),
    'How far back viewers can seek into a live stream (0 disables DVR).',
  ),
  dvrMemoryBudgetMb: setting(
    'DVR',
    'DVR_MEMORY_MB',
    '256',
    int(8, 1_000_000),
    'Memory per channel for the DVR buffer; beyond it the oldest media is spilled to `DVR_SPILL_DIR` (or, with spilling off, dropped). See docs/dvr.md for the formula.',
  ),
  dvrSpillDir: setting(
    'DVR',
    'DVR_SPILL_DIR',
    'tmp',
    str,
    'Where DVR media beyond `DVR_MEMORY_MB` goes (files are unlinked at once: nothing is left after a crash). `tmp` = the OS temp directory; `off` = no spilling, the window shrinks to fit memory.',
  ),
  dvrMaxReplays: setting(
    'DVR',
    'DVR_MAX_REPLAYS',
    '40',
    int(0, 100_000),
    "DVR replays playing at once on this node beyond which a seek that would start another is refused (the viewer stays live and is told to try again in a moment). It counts replays (Node's work: a send per packet each), not viewers: viewers sharing a replay (`DVR_SHARE_WITHIN_MS`) count once, and a seek that joins a playing replay is never refused. Instant starts and keyframe recoveries count while they catch up. 40 held live latency on one core at 2.5 Mbit/s (docs/dvr.md). 0 = no limit.",
  ),
  dvrShareWithinMs: setting(
    'DVR',
    'DVR_SHARE_WITHIN_MS',
    '2000',
    int(0, 60_000),
    "A seek joins a replay of the channel already playing at or before its target and at most this many ms before the keyframe it would land on (and reaching a keyframe within as long), so viewers at about the same position in the past share one replay (the worker fans it out, as for live). The viewer's position snaps to that replay's (never later than asked) and its picture starts at the replay's next keyframe: at most this long. A resume after pause is a seek to where it paused. At least one keyframe interval is right. 0 = every seek gets a replay of its own.",
  ),
  instantStart: setting(
    'DVR',
    'INSTANT_START',
    'true',
    bool,
    "Web players start from the cached GOP (the latest keyframe, replayed at 2x until the live edge, then switched to the live program at its next keyframe) instead of waiting up to a keyframe interval for the publisher's next keyframe. Costs the server a replay per joining viewer (see docs/benchmarks.md); false: web players start at the next keyframe, like WHEP players.",
  ),
  maxCatchUps: setting(
    'DVR',
    'CATCHUP_MAX_CONCURRENT',
    '16',
    int(0, 100_000),
    "Catch-up replays (instant starts and keyframe recoveries) the node runs at once. Each feeds the cached GOP through the server until the next live keyframe (~40 ms of server CPU per join at 720p 2.5 Mbit/s, see docs/benchmarks.md) to one web player, or to every one that started from the same keyframe together (a shared instant start takes one slot, see docs/dvr.md); past this many, a joining web player starts at the publisher's next keyframe, as a WHEP player does, so a crowd joining together cannot take the server's CPU from the viewers it already serves.",
  ),
  keyframeRecoverySeconds: setting(
    'DVR',
    'KEYFRAME_RECOVERY_SECONDS',
    '10',
    int(0, 3600),
    "Keyframe recovery: a web player whose live video lost a keyframe (its browser asks for one) and gets none from the publisher within 0.5 s (OBS ignores such requests) has its video caught up from the cached GOP, like an instant start, instead of freezing until the publisher's next keyframe; one watching the past (DVR) has its replay resent from the keyframe before its position. At most once per this many seconds per viewer (live and DVR each); 0 = off. See docs/dvr.md.",
  ),
  layerHoldSeconds: setting(
    'Media',
    'LAYER_HOLD_SECONDS',
    '30',
    int(0, 3600),
    "Auto quality in the web player: after its bandwidth estimate drops a viewer from a simulcast layer, it is kept below that layer this long (twice as long each time the layer fails again within a minute of being reached, up to 4×), so a link just able to carry a layer does not flip between two picture sizes every few seconds, each flip a keyframe and a stutter. Ends early when the estimate shows twice the layer's bitrate (or 1.2× the top layer's, if less) for 3 s: a link that got better gets the layer back at once. 0 = off (mediasoup alone picks the layer). See docs/player.md.",
  ),
  transcodeLadder: setting(
    'Media',
    'TRANSCODE_LADDER',
    '',
    ladder,
    "Lower layers whipcast encodes for single-layer publishers, e.g. `360p` or `360p,720p` (empty: off). Each channel then runs one ffmpeg (x264 for H.264, libvpx for VP8) that decodes the program once and encodes every rung below the source's height; viewers get them like simulcast layers. Costs CPU per live channel: see docs/benchmarks.md.",
  ),
  transcodeVp8Rung: setting(
    'Media',
    'TRANSCODE_VP8_RUNG',
    'true',
    bool,
    "With `TRANSCODE_LADDER` on, an H.264 channel also gets a VP8 copy of its video (at the ladder's lowest rung of at least 360p) for browsers that cannot decode H.264 (Firefox without OpenH264): its own ffmpeg runs only while such a viewer watches, and stops `TRANSCODE_VP8_RUNG_IDLE_SECONDS` after the last leaves. Live only (no DVR seek). `false`: those browsers get the audio and a message. See docs/player.md.",
  ),
  transcodeVp8RungIdleSeconds: setting(
    'Media',
    'TRANSCODE_VP8_RUNG_IDLE_SECONDS',
    '30',
    int(0, 3600),
    "How long a channel's VP8 copy (`TRANSCODE_VP8_RUNG`) keeps encoding after its last viewer left, so a reload or a reconnect finds it running.",
  ),
  // Recordings
  recordingsDir: setting(
    'Recordings',
    'RECORDINGS_DIR',
    undefined,
    optional(str),
    'Where past broadcasts and clips are kept (see docs/recordings.md for the layout). Default: `$DATA_DIR/recordings`.',
  ),
  recordingsRetentionDays: setting(
    'Recordings',
    'RECORDINGS_RETENTION_DAYS',
    '7',
    int(0, 36_500),
    'Finished recordings and clips older than this many days are deleted (0 keeps them until the quota needs the room).',
  ),
  recordingsQuotaMb: setting(
    'Recordings',
    'RECORDINGS_QUOTA_MB',
    undefined,
    optional(int(1, 1_000_000_000)),
    'Most disk space recordings and clips may take together; beyond it the oldest finished ones are deleted first. Unset: no quota.',
  ),
  recordingsReconnectGraceSeconds: setting(
    'Recordings',
    'RECORDINGS_RECONNECT_GRACE_SECONDS',
    '10',
    int(0, 3600),
    'A publisher that comes back within this many seconds of the last one leaving (while viewers keep the channel open) continues the same recording; a publisher replacing a live one (OBS reconnecting) always does.',
  ),
  thumbnailIntervalSeconds: setting(
    'Recordings',
    'THUMBNAIL_INTERVAL_SECONDS',
    '30',
    int(1, 3600),
    "How often each live channel's thumbnail (`GET /api/live/streams/:id/thumbnail`) is made again from its newest keyframe; one ffmpeg runs at a time per node, at a lower priority than the media (nice +10), and the node's pictures are spread over the interval.",
  ),
  clipsPerUserPerHour: setting(
    'Recordings',
    'CLIPS_PER_USER_PER_HOUR',
    '30',
    int(0, 100_000),
    'Clips one signed-in user may cut per hour, counted over all nodes (429 beyond; 0 turns clipping off).',
  ),
  // Cluster
  nodeUrl: setting(
    'Cluster',
    'NODE_URL',
    undefined,
    optional(str),
    "This node's base URL as the other nodes reach it (e.g. `http://10.0.0.5:8080`). Setting it makes the node join the cluster of nodes sharing `DATABASE_URL` (required, as is `WHIPCAST_SECRET`, the same on every node).",
  ),
  nodeId: setting(
    'Cluster',
    'NODE_ID',
    undefined,
    optional(str),
    'Name of this node in the registry. Default: hostname, process id and a random suffix (a restarted node is a new node).',
  ),
  nodeHeartbeatSeconds: setting('Cluster', 'NODE_HEARTBEAT_SECONDS', '2', int(1, 60), 'How often a node renews its registry entry.'),
  nodeExpirySeconds: setting(
    'Cluster',
    'NODE_EXPIRY_SECONDS',
    '10',
    int(2, 600),
    'A node whose heartbeat is older than this is lost: its channels go offline and the other nodes drop its viewers and chatters.',
  ),
  relayAnnouncedAddress: setting(
    'Cluster',
    'RELAY_ANNOUNCED_ADDRESS',
    undefined,
    optional(str),
    "IP the other nodes send a relayed channel to (this node's mediasoup PipeTransports, UDP on a port of 10000–59999). Default: `RTC_LISTEN_IP` when it is a loopback address, else this host's first non-internal IPv4 address.",
  ),
  relayLingerSeconds: setting(
    'Cluster',
    'RELAY_LINGER_SECONDS',
    '30',
    int(0, 3600),
    'An edge node keeps pulling a channel from its origin this long after its last viewer there left.',
  ),
  // Chat
  chatMaxMessageLength: setting('Chat', 'CHAT_MAX_MESSAGE_LENGTH', '500', int(1, 10_000), 'Longest chat message, in characters.'),
  chatHistoryLimit: setting('Chat', 'CHAT_HISTORY_LIMIT', '50', int(1, 500), 'Messages sent on join and per history page.'),
  chatRatePerTenSeconds: setting(
    'Chat',
    'CHAT_RATE_PER_10S',
    '5',
    int(1, 1000),
    'Messages a user may send per 10 seconds per room (slow mode is separate).',
  ),
  // Socket
  wsMaxPayloadBytes: setting(
    'Socket',
    'WS_MAX_PAYLOAD_BYTES',
    '65536',
    int(1024, 16 * 1024 * 1024),
    'Largest WebSocket frame accepted; larger frames close the socket (1009).',
  ),
  wsMaxBackpressureBytes: setting(
    'Socket',
    'WS_MAX_BACKPRESSURE_BYTES',
    '1048576',
    int(16 * 1024, 1 << 30),
    'Outgoing bytes buffered for a slow socket before chat to it is dropped (and a resync marker sent once it drains).',
  ),
  wsMessagesPerSecond: setting(
    'Socket',
    'WS_MESSAGES_PER_SECOND',
    '50',
    int(1, 100_000),
    'Frames a socket may send per second (sustained) before it gets rate-limit errors; sustained abuse closes it.',
  ),
  wsMaxRequestsInFlight: setting(
    'Socket',
    'WS_MAX_REQUESTS_IN_FLIGHT',
    '4',
    int(1, 1000),
    'Requests of one socket handled at once; up to 32 more wait their turn, beyond that they are refused (`rate_limited`). Keeps one client from hogging the database.',
  ),
  wsMaxSocketsPerAddress: setting(
    'Socket',
    'WS_MAX_SOCKETS_PER_ADDRESS',
    '256',
    int(1, 1_000_000),
    'Open sockets from one client address (behind a proxy, see TRUST_PROXY); more are refused (HTTP 429).',
  ),
  wsMaxTransportsPerAddress: setting(
    'Socket',
    'WS_MAX_TRANSPORTS_PER_ADDRESS',
    '64',
    int(1, 1_000_000),
    'Media (WebRTC) transports all sockets of one client address may hold at once (each socket at most 4); more are refused (`rate_limited`).',
  ),
} as const;

type Settings = typeof SETTINGS;
export type Config = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

/** Reads and validates the whole configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const raw = env[s.env] ?? s.default;
    out[key] = raw === undefined ? undefined : s.parse(raw.trim(), s.env);
  }
  const config = out as Config;
  if (config.nodeUrl && !config.databaseUrl)
    throw new ConfigError('NODE_URL (cluster mode) needs DATABASE_URL: the nodes share one Postgres');
  if (config.nodeUrl && !config.secret) throw new ConfigError('NODE_URL (cluster mode) needs WHIPCAST_SECRET, the same on every node');
  return config;
}

export function defaultWorkerCount(config: Config): number {
  return config.mediaWorkers ?? availableParallelism();
}

/** First non-internal IPv4 address of this host, or 127.0.0.1. */
export function detectAnnouncedAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** The configuration reference as Markdown (docs/configuration.md). */
export function renderConfigDocs(): string {
  const lines = [
    '# Configuration',
    '',
    'whipcast is configured by environment variables only. This page is generated from `signaling/config.ts` (`npm run docs:config`); a test fails when they differ.',
    '',
  ];
  let group = '';
  for (const s of Object.values(SETTINGS) as Setting<unknown>[]) {
    if (s.group !== group) {
      group = s.group;
      lines.push(`## ${group}`, '', '| variable | default | meaning |', '|---|---|---|');
    }
    const def = s.default === undefined ? '*(unset)*' : s.default === '' ? '*(empty)*' : `\`${s.default}\``;
    lines.push(`| \`${s.env}\` | ${def} | ${s.doc.replaceAll('|', '\\|')} |`);
    const next = Object.values(SETTINGS) as Setting<unknown>[];
    if (next.indexOf(s) === next.length - 1 || next[next.indexOf(s) + 1]!.group !== group) lines.push('');
  }
  return lines.join('\n');
}
