/**
 * The SFU's public face: a pool of mediasoup workers and the channels on
 * them. Knows media only: no HTTP, no database. The object tree below it:
 *
 *   Sfu → Channel → Ingest (WhipIngest | RelayIngest)
 *                 → Viewer (WhepViewer | SocketViewer, with its TimeShift)
 *                 → Relay (to other nodes), Audience (routers over workers),
 *                   ProgramTrack per kind, DvrBuffer
 *
 * Errors are SdpError (400/422) or SfuError.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { Channel, type LadderSettings } from './channel.ts';
import type { ChannelRecording, RecordingSettings } from './channel-recording.ts';
import { MEDIA_CODECS } from './codecs.ts';
import { ReplayPacer } from './dvr/replay-pacer.ts';
import { CatchUpSlots } from './dvr/catch-up-slots.ts';
import { SfuError } from './errors.ts';
import { WhipIngest } from './ingest.ts';
import { silentLogger, type SfuLogger } from './logger.ts';
import type { PipeConfig, Relay } from './relay.ts';
import type { IngestSource } from './types.ts';
import type { RecoveryPosition, Viewer } from './viewer.ts';
import { WhepViewer } from './whep-viewer.ts';
import type { WorkerAllocator } from './worker-allocator.ts';
import { WorkerPool } from './workers.ts';

export interface SfuOptions {
  /** The mediasoup-worker binary. */
  workerBin: string;
  /** mediasoup workers (one per core is the norm). */
  numWorkers: number;
  /** The workers' memory allocator (`resolveWorkerAllocator`; default: the system's malloc). */
  allocator?: WorkerAllocator;
  /** The local IP media listens on. */
  listenIp: string;
  /** The address put in ICE candidates (public IP behind NAT); default: the listen IP. */
  announcedAddress?: string | undefined;
  /** Address other nodes reach this node's PipeTransports at (relays between nodes). Default: `announcedAddress`, else `listenIp`. */
  relayAddress?: string | undefined;
  /** First media port (worker i uses port + i); 0 = random. */
  port: number;
  /** Receive and send buffer of each worker's UDP sockets (its WebRtcServer's, and the pipes between routers and nodes), bytes (0 or absent: the kernel's default). */
  udpBufferBytes?: number;
  /** A publisher silent (no RTP) this long is ended and its channel goes offline. */
  publisherTimeoutMs: number;
  /** DVR window per channel, ms (default 30 min). */
  dvrWindowMs?: number;
  /** DVR memory budget per channel, bytes (default 512 MiB); beyond it media spills to `dvrSpillDir`, or the window shrinks. */
  dvrMaxBytes?: number;
  /** Where DVR media beyond the memory budget goes (none: the window shrinks). */
  dvrSpillDir?: string;
  /** Record publishers' sessions of channels whose `saveRecordings` is on; none: never recorded. */
  recordings?: RecordingSettings | undefined;
  /** A transcoded ladder for single-layer publishers (`TRANSCODE_LADDER`); none: off. */
  ladder?: LadderSettings | undefined;
  /** Start new socket viewers from the cached GOP (default true). */
  instantStart?: boolean;
  /**
   * A socket viewer whose live video asks for a keyframe the publisher does not send within 0.5 s is served from
   * the cached GOP (its video caught up like an instant start), at most once per this many ms (default 10 000; 0: off).
   */
  keyframeRecoveryMs?: number;
  /** Auto quality: a socket viewer the estimate drops from a simulcast layer is held below it this long at first, ms (default 30 000; 0: off). */
  layerHoldMs?: number;
  /** Catch-up replays (instant starts, keyframe recoveries) this node runs at once; past it a viewer starts at the next keyframe (default 16). */
  maxCatchUps?: number;
  /** Viewers per router before a channel's audience spreads to another router, on the least-loaded worker (default 250). */
  routerMaxViewers?: number;
  /** DVR replays (viewers watching the past) playing at once on this node beyond which a seek is refused (0 or absent: no limit). */
  maxReplays?: number;
  /** A DVR seek joins a replay of its channel playing within this many ms of its target, so viewers at one position share it (default 2000; 0: never). */
  dvrShareWithinMs?: number;
  logger?: SfuLogger;
}

export interface SfuEvents {
  /** First media from a channel's publisher (or relay) arrived: it is live on this node. */
  live: [channel: Channel, source: IngestSource];
  /** A channel's publisher (or relay) is gone (DELETE, timeout, DTLS failure, key rotation…). */
  offline: [channel: Channel, reason: string, source: IngestSource];
  /** The number of a channel's viewers (sessions receiving media) changed. */
  viewers: [channel: Channel, count: number];
  /** A channel's codec changed: its socket viewers must consume again. */
  reconsume: [channel: Channel];
  /** A channel's publisher session started being recorded. */
  recording: [channel: Channel, recording: ChannelRecording];
  /** A viewer lost a keyframe and was served one from the channel's buffer. */
  keyframerecovery: [channel: Channel, viewer: Viewer, position: RecoveryPosition];
}

export class Sfu extends EventEmitter<SfuEvents> {
  /** Emits `newchannel` for outsiders (metrics, tests). */
  readonly observer = new EventEmitter<{ newchannel: [channel: Channel] }>();
  readonly #channels = new Map<string, Channel>();
  readonly #opening = new Map<string, Promise<Channel>>();
  readonly #log: SfuLogger;
  readonly #capabilities: types.RtpCapabilities;
  /** Paces every DVR replay of the node, and bounds how many play at once. */
  readonly #replays: ReplayPacer;
  /** Catch-up replays running on this node, within `maxCatchUps` (metrics, tests). */
  readonly catchUps: CatchUpSlots;
  #closed = false;

  private constructor(
    /** The mediasoup workers. */
    readonly pool: WorkerPool,
    private readonly opts: SfuOptions,
    capabilities: types.RtpCapabilities,
  ) {
    super();
    this.#log = opts.logger ?? silentLogger;
    this.#capabilities = capabilities;
    this.#replays = new ReplayPacer({ maxReplays: opts.maxReplays ?? 0 });
    this.catchUps = new CatchUpSlots(opts.maxCatchUps ?? 16);
    pool.onWorkerLost = (index) => {
      for (const ch of [...this.#channels.values()]) if (ch.slot.index === index) ch.close('media worker died');
    };
  }

  static async create(opts: SfuOptions): Promise<Sfu> {
    const pool = await WorkerPool.create({ ...opts, logger: opts.logger ?? silentLogger });
    try {
      // Every channel router has the same capabilities (same codecs): learn them once.
      const probe = await pool.leastLoaded().worker.createRouter({ mediaCodecs: MEDIA_CODECS });
      const capabilities = probe.rtpCapabilities;
      probe.close();
      return new Sfu(pool, opts, capabilities);
    } catch (err) {
      pool.close();
      throw err;
    }
  }

  /** Serving: not closed and at least one worker runs. */
  ready(): boolean {
    return !this.#closed && this.pool.ready();
  }

  /** The router capabilities a mediasoup-client Device loads (the same for every channel). */
  get capabilities(): types.RtpCapabilities {
    return this.#capabilities;
  }

  /** A channel open on this node. */
  channel(id: string): Channel | undefined {
    const ch = this.#channels.get(id);
    return ch && !ch.closed ? ch : undefined;
  }

  /** Channels open on this node. */
  channels(): Channel[] {
    return [...this.#channels.values()];
  }

  /** Channels live on this node (own publisher or relay). */
  liveChannels(): Channel[] {
    return this.channels().filter((c) => c.live);
  }

  /** The channel, opened (a router on the least-loaded worker) if it is not yet. */
  async openChannel(id: string): Promise<Channel> {
    this.#assertOpen();
    const existing = this.channel(id);
    if (existing) return existing;
    let pending = this.#opening.get(id);
    if (!pending) {
      pending = Channel.create({
        id,
        pool: this.pool,
        publisherTimeoutMs: this.opts.publisherTimeoutMs,
        dvr: {
          windowMs: this.opts.dvrWindowMs ?? 30 * 60_000,
          maxBytes: this.opts.dvrMaxBytes ?? 512 * 1024 * 1024,
          ...(this.opts.dvrSpillDir ? { spillDir: this.opts.dvrSpillDir } : {}),
        },
        instantStart: this.opts.instantStart !== false,
        keyframeRecoveryMs: this.opts.keyframeRecoveryMs ?? 10_000,
        layerHoldMs: this.opts.layerHoldMs ?? 30_000,
        catchUps: this.catchUps,
        routerMaxViewers: this.opts.routerMaxViewers ?? 250,
        replays: this.#replays,
        dvrShareWithinMs: this.opts.dvrShareWithinMs ?? 2000,
        pipe: this.#pipe,
        recordings: this.opts.recordings,
        ladder: this.opts.ladder,
        logger: this.#log,
      })
        .then((ch) => this.#adopt(ch))
        .finally(() => this.#opening.delete(id));
      this.#opening.set(id, pending);
    }
    return pending;
  }

  #adopt(ch: Channel): Channel {
    this.#channels.set(ch.id, ch);
    ch.on('live', (source) => this.emit('live', ch, source));
    ch.on('offline', (reason, source) => this.emit('offline', ch, reason, source));
    ch.on('viewers', (count) => this.emit('viewers', ch, count));
    ch.on('reconsume', () => this.emit('reconsume', ch));
    ch.on('recording', (r) => this.emit('recording', ch, r));
    ch.on('keyframerecovery', (viewer, position) => this.emit('keyframerecovery', ch, viewer, position));
    ch.once('close', () => {
      if (this.#channels.get(ch.id) === ch) this.#channels.delete(ch.id);
    });
    this.observer.emit('newchannel', ch);
    return ch;
  }

  get #pipe(): PipeConfig {
    return {
      listenIp: this.opts.listenIp,
      announcedAddress: this.opts.relayAddress ?? this.opts.announcedAddress,
      udpBuffers: this.pool.udpBuffers,
    };
  }

  /** A WHIP session by its id (the session URL's last segment). */
  whipSession(id: string): WhipIngest | undefined {
    for (const ch of this.#channels.values()) {
      const ingest = ch.ingest;
      if (ingest instanceof WhipIngest && ingest.id === id) return ingest;
    }
    return undefined;
  }

  /** A WHEP session by its id (the session URL's last segment). */
  whepSession(id: string): WhepViewer | undefined {
    for (const ch of this.#channels.values()) {
      const v = ch.viewer(id);
      if (v instanceof WhepViewer) return v;
    }
    return undefined;
  }

  /** The relays this node serves to other nodes. */
  relays(): Relay[] {
    return this.channels().flatMap((c) => c.relays());
  }

  /** Stops every relay to a node (it left or was lost). */
  closeRelaysTo(peer: string): number {
    const gone = this.relays().filter((r) => r.peer === peer);
    for (const r of gone) r.close();
    return gone.length;
  }

  #assertOpen(): void {
    if (!this.ready()) throw new SfuError('unavailable', 'Media server is not ready');
  }

  /** Closes every channel (their publishers and viewers end) and the workers. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const ch of this.channels()) ch.close('server shutting down');
    this.pool.close();
  }
}
