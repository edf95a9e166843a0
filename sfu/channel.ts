/**
 * A channel on this node: what a streamer owns. It owns its router (on one
 * worker), its program tracks (the stable producers every viewer consumes),
 * its DVR buffer, its audience spread over the workers, its ingest (a WHIP
 * publisher or a relay from its origin node), its viewers and the relays it
 * serves to other nodes. Closing it closes all of them.
 *
 * A channel opens for its first publisher or viewer and closes itself when
 * neither is left (`idle`), or when its worker dies.
 *
 * (A little over 400 lines: it is where the tree's branches meet. Each part
 * (ingest adoption, program feeding, viewers, relays) is short and lives in
 * its own class; what stays here is the state they share.)
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { Audience, SOCKET_SCHEME } from './audience.ts';
import { ChannelRecording, type RecordingSettings } from './channel-recording.ts';
import { MEDIA_CODECS } from './codecs.ts';
import { DvrBuffer, type DvrBufferOptions } from './dvr/buffer.ts';
import type { CatchUpSlots } from './dvr/catch-up-slots.ts';
import { codecOf, isKeyframeStart } from './dvr/keyframe.ts';
import type { ReplayPacer } from './dvr/replay-pacer.ts';
import { ReplayShares } from './dvr/shared-replay.ts';
import { SfuError } from './errors.ts';
import { RelayIngest, WhipIngest, type Ingest } from './ingest.ts';
import { vp8RungHeight } from './ladder/rungs.ts';
import { LadderTranscoder, ladderSupports } from './ladder/transcoder.ts';
import { Vp8Rung } from './ladder/vp8-rung.ts';
import type { SfuLogger } from './logger.ts';
import { hasKeyframeRequest, ProgramTrack } from './program.ts';
import { Relay, type PipeConfig } from './relay.ts';
import { parseOffer, type MediaKind } from './sdp/offer.ts';
import { egressRouterKey, planEgress, planIngest, type SourceCodecs } from './sdp/plan.ts';
import { SocketViewer } from './socket-viewer.ts';
import type { AudiencePlacement, IngestSource, PipeEndpoint, RelayOffer } from './types.ts';
import type { RecoveryPosition, Viewer } from './viewer.ts';
import { WhepViewer } from './whep-viewer.ts';
import type { PooledWorker, WorkerPool } from './workers.ts';

/** Keyframes of a channel's layers this close together are one group (one switch point). */
const KEYFRAME_GROUP_MS = 300;
/** mediasoup's own start estimate for a transport (`initialAvailableOutgoingBitrate`), bits/s. */
const MEDIASOUP_START_BITRATE = 600_000;
/** A new viewer's start estimate over its channel's lowest layer's measured rate. */
const START_BITRATE_MARGIN = 1.5;
/** The start bitrate is read from the worker at most this often, ms. */
const START_BITRATE_READ_MS = 200;

export interface ChannelOptions {
  /** The channel's id (the streamer's channel id). */
  id: string;
  /** Workers for its router and its audience. */
  pool: WorkerPool;
  /** An ingest silent (no RTP) this long ends and the channel goes offline. */
  publisherTimeoutMs: number;
  /** Its DVR buffer's window, memory budget and spill directory. */
  dvr: DvrBufferOptions;
  /** Start socket viewers from the cached GOP. */
  instantStart: boolean;
  /** A socket viewer that loses a keyframe the publisher does not resend is served from the cached GOP, at most once per this many ms; 0: off. */
  keyframeRecoveryMs: number;
  /** Auto quality: a socket viewer the estimate drops from a simulcast layer is held below it this long at first, ms; 0: off. */
  layerHoldMs: number;
  /** The node's bound on catch-ups (instant starts, keyframe recoveries) at once, shared by its channels. */
  catchUps: CatchUpSlots;
  /** Viewers per router before its audience spreads to another router. */
  routerMaxViewers: number;
  /** The node's DVR replay clock (and its bound on replays playing at once). */
  replays: ReplayPacer;
  /** A seek joins a replay of the channel playing within this many ms of its target (viewers share it); 0: never. */
  dvrShareWithinMs: number;
  /** Where its relay PipeTransports listen. */
  pipe: PipeConfig;
  /** Record its publishers' sessions here (while `saveRecordings` is on); none: never recorded. */
  recordings?: RecordingSettings | undefined;
  /** Encode these lower layers (heights, lowest first) for a single-layer publisher; none: no ladder. */
  ladder?: LadderSettings | undefined;
  logger: SfuLogger;
}

/** A transcoded ladder's settings (`TRANSCODE_LADDER`). */
export interface LadderSettings {
  /** Rung heights, lowest first (e.g. [360, 720]); rungs at or above the source's height stay unfed. */
  heights: number[];
  /** ffmpeg binary (default `ffmpeg` on the PATH). */
  ffmpegPath?: string;
  /** An H.264 program also gets a VP8 copy for browsers without H.264, encoded while one watches (default true). */
  vp8Rung?: boolean;
  /** The VP8 copy keeps encoding this long after its last viewer left, ms (default 30 000). */
  vp8RungIdleMs?: number;
}

export interface ChannelEvents {
  /** First media from its ingest arrived: the channel is live on this node. */
  live: [source: IngestSource];
  /** Its ingest is gone (DELETE, timeout, DTLS failure, key rotation…) and no other replaced it. */
  offline: [reason: string, source: IngestSource];
  /** The number of its viewers (sessions receiving media) changed. */
  viewers: [count: number];
  /** Its program tracks were re-made (a codec changed): socket viewers must consume again. */
  reconsume: [];
  /** The channel closed (idle, worker lost, server shutting down). */
  close: [reason: string];
  /** A publisher's session started being recorded (it emits `progress`, `error` and `finish`). */
  recording: [recording: ChannelRecording];
  /** One of its viewers lost a keyframe and was served one from the buffer (metrics). */
  keyframerecovery: [viewer: Viewer, position: RecoveryPosition];
}

export class Channel extends EventEmitter<ChannelEvents> {
  /** Emits `close` for outsiders. */
  readonly observer = new EventEmitter<{ close: [reason: string] }>();
  readonly id: string;
  /** The time-shift buffer (DVR and the GOP cache for instant start). */
  readonly dvr: DvrBuffer;
  /** The node's DVR replay clock: its viewers' replays run on it. */
  readonly replays: ReplayPacer;
  /** Its seeks' replays, which viewers at the same position share. */
  readonly replayShares: ReplayShares;
  readonly #opts: ChannelOptions;
  readonly #log: SfuLogger;
  readonly #audience: Audience;
  /** Stable per-kind producers viewers consume, fed by the current ingest. */
  readonly #program: Partial<Record<MediaKind, ProgramTrack>> = {};
  readonly #viewers = new Set<Viewer>();
  /** Viewers receiving media (WHEP at once, socket viewers once they consume). */
  readonly #watching = new Set<Viewer>();
  readonly #relays = new Set<Relay>();
  #ingest: Ingest | null = null;
  #recording: ChannelRecording | null = null;
  /** Encodes lower layers of a single-layer publisher's video (with `ladder`). */
  #ladder: LadderTranscoder | null = null;
  /** A VP8 copy of an H.264 program's video for browsers without H.264 (with `ladder`). */
  #vp8: Vp8Rung | null = null;
  /** Record the next publisher's session (the owner's "Save past broadcasts"); read when a publisher connects. */
  saveRecordings = false;
  #live = false;
  #closed = false;
  /** The last start bitrate read and when (viewers starting together, and their estimate floors, share one read). */
  #startBitrate: { at: number; value: Promise<number | undefined> } | null = null;

  private constructor(
    opts: ChannelOptions,
    /** The worker its router lives on. */
    readonly slot: PooledWorker,
    readonly router: types.Router,
    private readonly tapTransport: types.DirectTransport,
    private readonly programTransport: types.DirectTransport,
  ) {
    super();
    this.id = opts.id;
    this.#opts = opts;
    this.#log = opts.logger;
    this.dvr = new DvrBuffer(opts.dvr);
    this.replays = opts.replays;
    this.replayShares = new ReplayShares({ withinMs: opts.dvrShareWithinMs });
    this.#audience = new Audience({
      pool: opts.pool,
      channelId: opts.id,
      slot,
      router,
      maxViewers: opts.routerMaxViewers,
      logger: opts.logger,
    });
    // Viewers' keyframe requests reach the program producers as RTCP on this transport.
    programTransport.on('rtcp', (packet) => {
      if (hasKeyframeRequest(packet)) this.#program.video?.requestKeyFrame();
    });
    // closed under us: its worker died
    router.observer.once('close', () => this.close('media worker died'));
  }

  /** @internal Made by `Sfu.openChannel()`: a router on the least-loaded worker. */
  static async create(opts: ChannelOptions): Promise<Channel> {
    const slot = opts.pool.leastLoaded();
    const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { channelId: opts.id } });
    slot.load++;
    router.observer.once('close', () => slot.load--);
    try {
      const [tap, program] = await Promise.all([router.createDirectTransport(), router.createDirectTransport()]);
      return new Channel(opts, slot, router, tap, program);
    } catch (err) {
      router.close();
      throw err;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Media from its ingest arrived and it has not ended. */
  get live(): boolean {
    return this.#live;
  }

  /** The session being recorded (also while it finishes after its publisher left). */
  get recording(): ChannelRecording | null {
    return this.#recording;
  }

  /** What feeds it now. */
  get ingest(): Ingest | null {
    return this.#ingest;
  }

  /** Viewers receiving media. */
  get viewerCount(): number {
    return this.#watching.size;
  }

  /** Its viewers (receiving media or not yet). */
  viewers(): Viewer[] {
    return [...this.#viewers];
  }

  /** The relays it serves to other nodes. */
  relays(): Relay[] {
    return [...this.#relays];
  }

  /** Per worker: its audience routers and viewers. */
  placement(): AudiencePlacement[] {
    return this.#audience.placement();
  }

  /** The program track of a kind, while it has a producer. */
  programTrack(kind: MediaKind): ProgramTrack | undefined {
    const t = this.#program[kind];
    return t && !t.producer.closed ? t : undefined;
  }

  /** Its program tracks (audio first). */
  programTracks(): ProgramTrack[] {
    return (['audio', 'video'] as const).map((k) => this.programTrack(k)).filter((t): t is ProgramTrack => !!t);
  }

  /** The VP8 copy of its H.264 program video (with the transcoded ladder on), for browsers that cannot decode H.264. */
  get vp8Rung(): Vp8Rung | undefined {
    return this.#vp8 && !this.#vp8.track.producer.closed ? this.#vp8 : undefined;
  }

  // ---- ingest ----

  /**
   * Takes a WHIP publisher from its offer. A channel that already has an
   * ingest gets the new one (OBS reconnects with a fresh POST while its old
   * session may still look alive); viewers move over without noticing.
   */
  async publish(offerSdp: string): Promise<WhipIngest> {
    return this.#adopt(async () => {
      const offer = parseOffer(offerSdp);
      const tracks = planIngest(offer, this.router.rtpCapabilities);
      const ingest = await WhipIngest.create(this.slot, this.router, offer, tracks, this.#ingestOptions());
      this.#log.info(
        { channelId: this.id, session: ingest.id, tracks: tracks.map((t) => t.accepted.codec.mimeType) },
        'publisher connected',
      );
      return ingest;
    });
  }

  /**
   * Edge side: takes the channel from its origin node. `open` sends this
   * node's pipe end to the origin and returns the origin's (`serveRelay`
   * there). The relay becomes the ingest, like a publisher; close it (or
   * listen to its `close`) to stop it at the origin.
   */
  async pull(open: (local: PipeEndpoint) => Promise<RelayOffer>): Promise<RelayIngest> {
    return this.#adopt(async () => {
      const ingest = await RelayIngest.create(this.router, this.#opts.pipe, open, this.#ingestOptions());
      this.#log.info({ channelId: this.id, relay: ingest.id }, 'relay from the origin node connected');
      return ingest;
    });
  }

  #ingestOptions() {
    return { channelId: this.id, timeoutMs: this.#opts.publisherTimeoutMs };
  }

  /** Makes a new ingest current, replacing any previous one without going offline. */
  async #adopt<I extends Ingest>(make: () => Promise<I>): Promise<I> {
    this.#assertOpen();
    let ingest: I;
    try {
      ingest = await make();
    } catch (err) {
      this.#closeIfIdle();
      throw err;
    }
    if (this.#closed) {
      ingest.close('channel closed');
      throw new SfuError('unavailable', 'The channel closed');
    }
    const previous = this.#ingest;
    this.#ingest = ingest;
    ingest.once('close', (reason) => this.#ingestEnded(ingest, reason));
    ingest.once('media', () => {
      if (this.#ingest !== ingest || this.#live) return;
      this.#live = true;
      this.#log.info({ channelId: this.id, source: ingest.source }, 'channel live');
      this.emit('live', ingest.source);
    });
    previous?.close(`replaced by a new ${ingest.source}`);
    await this.#feedProgram(ingest);
    if (ingest.source === 'publisher') this.#recordSession();
    return ingest;
  }

  #ingestEnded(ingest: Ingest, reason: string): void {
    this.#log.info({ channelId: this.id, session: ingest.id, source: ingest.source, reason }, 'ingest ended');
    if (this.#ingest !== ingest) return;
    this.#ingest = null;
    for (const p of Object.values(this.#program)) p.detach();
    this.#recording?.publisherGone();
    if (this.#live) {
      this.#live = false;
      this.emit('offline', reason, ingest.source);
    }
    this.#closeIfIdle();
  }

  /** Ends its ingest (key rotated, account gone, relay unwatched). False when it has none. */
  endIngest(reason: string): boolean {
    if (!this.#ingest) return false;
    this.#ingest.close(reason);
    return true;
  }

  /** Points the program tracks at a new ingest; viewers are re-attached only if a codec changed. */
  async #feedProgram(ingest: Ingest): Promise<void> {
    let recreated = false;
    for (const [kind, producer] of ingest.producers) {
      const current = this.#program[kind];
      if (current && !current.producer.closed && current.accepts(producer)) {
        await current.attach(producer);
        continue;
      }
      current?.close();
      if (kind === 'video') this.#closeVp8Rung();
      const ladder = kind === 'video' ? this.#ladderFor(producer) : [];
      const track = await ProgramTrack.create({
        kind,
        source: producer,
        router: this.router,
        tapTransport: this.tapTransport,
        programTransport: this.programTransport,
        injectedLayers: ladder.length,
      });
      this.#program[kind] = track;
      if (kind === 'video') {
        this.#startLadder(track, ladder);
        await this.#openVp8Rung(track);
      }
      this.#record(track);
      recreated = true;
    }
    for (const kind of ['audio', 'video'] as const) if (!ingest.producers.has(kind)) this.#program[kind]?.detach();
    if (recreated) {
      for (const v of this.#viewers) if (v instanceof WhepViewer) void v.attach();
      this.emit('reconsume');
    }
  }

  /** The ladder's rung heights for a source: none unless configured, single-layer, and a codec it encodes. */
  #ladderFor(source: types.Producer): number[] {
    const heights = this.#opts.ladder?.heights ?? [];
    const codec = source.rtpParameters.codecs.find((c) => !c.mimeType.toLowerCase().endsWith('/rtx'));
    const layers = source.rtpParameters.encodings?.length || 1;
    return layers === 1 && codec && ladderSupports(codec.mimeType) ? heights : [];
  }

  #startLadder(track: ProgramTrack, heights: number[]): void {
    this.#ladder?.close();
    this.#ladder = null;
    if (heights.length === 0) return;
    const { ffmpegPath } = this.#opts.ladder ?? {};
    this.#ladder = new LadderTranscoder({
      track,
      heights,
      ...(ffmpegPath ? { ffmpegPath } : {}),
      logger: this.#log.child({ channelId: this.id, component: 'ladder' }),
    });
  }

  /** With the ladder on, an H.264 program gets a VP8 copy (encoded while a viewer needs it). */
  async #openVp8Rung(track: ProgramTrack): Promise<void> {
    const { heights = [], ffmpegPath, vp8Rung = true, vp8RungIdleMs } = this.#opts.ladder ?? {};
    if (!vp8Rung || heights.length === 0 || codecOf(track.codec.mimeType) !== 'h264') return;
    this.#vp8 = await Vp8Rung.create({
      source: track,
      height: vp8RungHeight(heights),
      router: this.router,
      tapTransport: this.tapTransport,
      programTransport: this.programTransport,
      ffmpegPath,
      idleStopMs: vp8RungIdleMs,
      logger: this.#log.child({ channelId: this.id, component: 'vp8-rung' }),
    });
    if (this.#closed) this.#closeVp8Rung();
  }

  #closeVp8Rung(): void {
    this.#vp8?.close();
    this.#vp8 = null;
  }

  /**
   * Feeds a program track (every layer) into the DVR buffer; socket viewers catching up switch to live at its
   * keyframes: at the first keyframe of a group (the layers of OBS and browsers key together, within ms).
   */
  #record(track: ProgramTrack): void {
    const codec = track.kind === 'video' ? codecOf(track.codec.mimeType) : null;
    let lastKeyframeAt = 0;
    track.onLayerPacket((packet, info) => {
      const keyframe = codec !== null && isKeyframeStart(codec, packet);
      if (keyframe && info.arrivalMs - lastKeyframeAt > KEYFRAME_GROUP_MS)
        for (const v of this.#watching) if (v instanceof SocketViewer) v.onLivePacket('keyframe');
      if (keyframe) lastKeyframeAt = info.arrivalMs;
      this.dvr.push({ at: info.arrivalMs, kind: info.kind, keyframe, rank: info.rank, data: packet }); // copied in
      for (const v of this.#watching) if (v instanceof SocketViewer) v.onLivePacket('buffered');
    });
  }

  /** A publisher feeds the program: its session continues the recording of the same tracks, or starts one. */
  #recordSession(): void {
    const tracks = this.programTracks();
    const current = this.#recording;
    if (current?.writing && current.follows(tracks)) return current.publisherBack();
    void current?.finish();
    this.#recording = null;
    if (!this.#opts.recordings || !this.saveRecordings || tracks.length === 0) return;
    try {
      const recording = new ChannelRecording({ ...this.#opts.recordings, channelId: this.id, tracks, dvr: this.dvr, logger: this.#log });
      this.#recording = recording;
      recording.once('finish', () => this.#recording === recording && (this.#recording = null));
      this.emit('recording', recording);
    } catch (err) {
      this.#log.warn({ err, channelId: this.id }, 'cannot record this session');
    }
  }

  // ---- viewers ----

  /** A WHEP viewer from its offer; the channel must be live. */
  async watch(offerSdp: string): Promise<WhepViewer> {
    this.#assertOpen();
    const offer = parseOffer(offerSdp);
    if (!this.#ingest || !this.#live) throw new SfuError('stream_offline', 'The stream is not live');
    const source: SourceCodecs = {};
    for (const t of this.programTracks()) source[t.kind] = t.codec;
    const plan = planEgress(offer, source, this.router.rtpCapabilities);
    const seat = this.#audience.seat(egressRouterKey(plan.routerCodecs), plan.routerCodecs);
    let viewer: WhepViewer;
    try {
      viewer = await WhepViewer.create(this, seat, offer, plan, this.#log);
    } catch (err) {
      seat.release();
      this.#closeIfIdle();
      throw err;
    }
    this.#addViewer(viewer);
    this.watching(viewer);
    await viewer.start();
    return viewer;
  }

  /** A socket (mediasoup-client) viewer's receive transport. It counts as a viewer once it consumes. */
  async createSocketViewer(): Promise<SocketViewer> {
    this.#assertOpen();
    const seat = this.#audience.seat(SOCKET_SCHEME, MEDIA_CODECS);
    let viewer: SocketViewer;
    try {
      viewer = await SocketViewer.create(this, seat, {
        instantStart: this.#opts.instantStart,
        keyframeRecoveryMs: this.#opts.keyframeRecoveryMs,
        layerHoldMs: this.#opts.layerHoldMs,
        catchUps: this.#opts.catchUps,
      });
    } catch (err) {
      seat.release();
      this.#closeIfIdle();
      throw err;
    }
    this.#addViewer(viewer);
    return viewer;
  }

  /**
   * The bandwidth estimate a new viewer's transport starts from (mediasoup's `initialAvailableOutgoingBitrate`), or
   * undefined for mediasoup's default (600 kbit/s): with a simulcast program, enough for its lowest video layer.
   * mediasoup forwards no layer while a viewer's estimate is below the lowest one, and only the viewer's feedback on
   * what it receives raises the estimate: a viewer whose first bandwidth probe fails would otherwise get no video
   * at all (OBS's lowest layer at 720p 2.5 Mbit/s is ~950 kbit/s). Its feedback on that layer then takes over.
   */
  viewerStartBitrate(): Promise<number | undefined> {
    const now = performance.now();
    if (this.#startBitrate && now - this.#startBitrate.at < START_BITRATE_READ_MS) return this.#startBitrate.value;
    const value = this.#readStartBitrate();
    this.#startBitrate = { at: now, value };
    return value;
  }

  async #readStartBitrate(): Promise<number | undefined> {
    const video = this.programTrack('video');
    if (!video || video.layers.length < 2) return undefined; // one layer: forwarded whatever the estimate
    const lowest = await video.lowestLayerBitrate();
    // the layer's rate over the worker's window moves with its keyframes: a margin keeps it under the estimate
    return lowest > 0 ? Math.max(MEDIASOUP_START_BITRATE, Math.ceil(lowest * START_BITRATE_MARGIN)) : undefined;
  }

  /** A viewer by id (WHEP session id or socket transport id). */
  viewer(id: string): Viewer | undefined {
    for (const v of this.#viewers) if (v.id === id) return v;
    return undefined;
  }

  #addViewer(viewer: Viewer): void {
    if (this.#closed) {
      viewer.close('channel closed', true);
      throw new SfuError('unavailable', 'The channel closed');
    }
    this.#viewers.add(viewer);
    viewer.observer.on('keyframerecovery', (position) => this.emit('keyframerecovery', viewer, position));
    viewer.once('close', (reason) => {
      this.#log.debug({ channelId: this.id, viewer: viewer.id, reason }, 'viewer left');
      this.#viewers.delete(viewer);
      if (this.#watching.delete(viewer)) this.emit('viewers', this.#watching.size);
      this.#closeIfIdle();
    });
  }

  /** @internal The viewer receives media now: it counts. */
  watching(viewer: Viewer): void {
    if (viewer.closed || this.#watching.has(viewer)) return;
    this.#watching.add(viewer);
    this.emit('viewers', this.#watching.size);
  }

  /** True when the viewer receives media. */
  isWatching(viewer: Viewer): boolean {
    return this.#watching.has(viewer);
  }

  // ---- relays to other nodes ----

  /** Origin side: pipes the live channel's program to another node's PipeTransport at `remote`. */
  async serveRelay(peer: string, remote: PipeEndpoint): Promise<Relay> {
    this.#assertOpen();
    if (!this.#live) throw new SfuError('stream_offline', 'The stream is not live on this node');
    const relay = await Relay.create(this.router, this.#opts.pipe, this.id, peer, remote, this.programTracks());
    this.#relays.add(relay);
    relay.once('close', () => this.#relays.delete(relay));
    this.#log.info({ channelId: this.id, relay: relay.id, peer }, 'relaying channel to another node');
    return relay;
  }

  // ---- lifecycle ----

  #closeIfIdle(): void {
    if (!this.#closed && !this.#ingest && this.#viewers.size === 0) this.close('idle');
  }

  #assertOpen(): void {
    if (this.#closed) throw new SfuError('unavailable', 'The channel closed');
  }

  /**
   * Closes the channel and everything it owns: its ingest (offline if it was
   * live), its viewers (told the server ended them), its relays, program
   * tracks, audience routers, router and DVR buffer. Idempotent.
   */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ingest?.close(reason);
    if (this.#live) {
      this.#live = false;
      this.emit('offline', reason, 'publisher');
    }
    for (const v of [...this.#viewers]) v.close(reason, true);
    this.replayShares.close();
    for (const r of [...this.#relays]) r.close();
    void this.#recording?.finish();
    this.#ladder?.close();
    this.#closeVp8Rung();
    for (const p of Object.values(this.#program)) p.close();
    this.#audience.close();
    this.router.close();
    this.dvr.close();
    this.#log.debug({ channelId: this.id, reason }, 'channel closed');
    this.emit('close', reason);
    this.observer.emit('close', reason);
  }
}
