/**
 * The SFU's public face: WHIP ingest, WHEP and socket viewers, channel
 * lifecycle events. Knows media only: no HTTP, no database. Callers pass SDP
 * in and get SDP out; errors are SdpError (400/422) or SfuError.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { MEDIA_CODECS } from './codecs.ts';
import { silentLogger, type SfuLogger } from './logger.ts';
import { SdpError } from './sdp/errors.ts';
import { buildAnswer, remoteDtlsRole, type TransportInfo } from './sdp/answer.ts';
import { parseOffer, type MediaKind, type ParsedOffer } from './sdp/offer.ts';
import { egressRouterKey, planEgress, planIngest, type SourceCodecs } from './sdp/plan.ts';
import {
  closeShard,
  dropShard,
  type AudienceShard,
  type ChannelMedia,
  type EgressRouter,
  type IngestSession,
  type RelayOut,
  type Viewer,
  type WhipSession,
} from './sessions.ts';
import { WorkerPool, type PooledWorker } from './workers.ts';
import { DvrBuffer } from './dvr/buffer.ts';
import { codecOf, isKeyframeStart } from './dvr/keyframe.ts';
import { ReplaySession } from './dvr/replay.ts';
import { ProgramTrack } from './program.ts';

export interface SfuOptions {
  workerBin: string;
  numWorkers: number;
  listenIp: string;
  announcedAddress?: string;
  /** Address other nodes reach this node's PipeTransports at (relays between nodes). Default: `announcedAddress`, else `listenIp`. */
  relayAddress?: string;
  /** First media port (worker i uses port + i); 0 = random. */
  port: number;
  /** A publisher silent (no RTP) this long is ended and its channel goes offline. */
  publisherTimeoutMs: number;
  /** DVR window per channel, ms (default 30 min). */
  dvrWindowMs?: number;
  /** DVR memory budget per channel, bytes (default 512 MiB); beyond it media spills to `dvrSpillDir`, or the window shrinks. */
  dvrMaxBytes?: number;
  dvrSpillDir?: string;
  /** Start new socket viewers from the cached GOP (default true). */
  instantStart?: boolean;
  /** Viewers per router before a channel's audience spreads to another router, on the least-loaded worker (default 250). */
  routerMaxViewers?: number;
  logger?: SfuLogger;
}

/** Where a channel's media comes from on this node: a WHIP publisher, or a relay from its origin node. */
export type IngestSource = 'publisher' | 'relay';

export interface SfuEvents {
  /** First media from a publisher (or relay) arrived: the channel is live on this node. */
  live: [streamId: string, source: IngestSource];
  /** The channel's publisher (or relay) is gone (DELETE, timeout, DTLS failure, key rotation…). */
  offline: [streamId: string, reason: string, source: IngestSource];
  /** The number of viewers (sessions with consumers) of a channel changed. */
  viewers: [streamId: string, count: number];
  /** The channel's codec changed: socket viewers must consume again. */
  reconsume: [streamId: string];
  /** A socket viewer's consumers changed server-side (catch-up done: switch to the standby consumers). */
  dvr: [transportId: string, event: { t: 'switch' }];
  /** A socket viewer's transport was closed by the server (its router's worker was lost): the client builds a new one. */
  transportClosed: [transportId: string, reason: string];
}

/** Viewers per worker for one channel (placement introspection for metrics and tests). */
export interface AudiencePlacement {
  worker: number;
  /** This worker holds the channel's own router (ingest, program, DVR replays of its viewers). */
  channel: boolean;
  routers: number;
  viewers: number;
}

export type SfuErrorCode = 'not_found' | 'stream_offline' | 'unavailable';

export class SfuError extends Error {
  constructor(
    readonly code: SfuErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SessionAnswer {
  sessionId: string;
  streamId: string;
  answer: string;
  etag: string;
}

export interface TransportView {
  id: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: MediaKind;
  rtpParameters: types.RtpParameters;
  /** Instant start: a live consumer to switch to when the server says so (`dvr` event). */
  standby?: boolean;
}

/** One end of a node-to-node PipeTransport. */
export interface PipeEndpoint {
  ip: string;
  port: number;
  srtpParameters?: types.SrtpParameters | undefined;
}

/** What the origin node answers a relay request with: its pipe end and the program tracks it sends. */
export interface RelayOffer {
  endpoint: PipeEndpoint;
  tracks: { kind: MediaKind; rtpParameters: types.RtpParameters }[];
}

export interface IceRestartResult {
  etag: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
}

const newId = (): string => randomBytes(18).toString('base64url');
const MONITOR_INTERVAL_MS = 250;

/** Resolves when the transport's DTLS is connected, or after `timeoutMs` / when it fails (callers go on either way). */
function dtlsConnected(transport: types.WebRtcTransport, timeoutMs: number): Promise<void> {
  if (transport.dtlsState === 'connected' || transport.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      transport.off('dtlsstatechange', onState);
      resolve();
    };
    const onState = (state: types.DtlsState) => {
      if (state !== 'new' && state !== 'connecting') done();
    };
    const timer = setTimeout(done, timeoutMs);
    transport.on('dtlsstatechange', onState);
  });
}

export class Sfu extends EventEmitter<SfuEvents> {
  readonly #channels = new Map<string, ChannelMedia>();
  readonly #creating = new Map<string, Promise<ChannelMedia>>();
  readonly #publishers = new Map<string, WhipSession>();
  readonly #relays = new Map<string, RelayOut>();
  readonly #viewers = new Map<string, Viewer>();
  readonly #log: SfuLogger;
  #closed = false;

  private constructor(
    readonly pool: WorkerPool,
    private readonly opts: SfuOptions,
  ) {
    super();
    this.#log = opts.logger ?? silentLogger;
    pool.onWorkerLost = (index) => this.#onWorkerLost(index);
  }

  static async create(opts: SfuOptions): Promise<Sfu> {
    const pool = await WorkerPool.create({ ...opts, logger: opts.logger ?? silentLogger });
    return new Sfu(pool, opts);
  }

  ready(): boolean {
    return !this.#closed && this.pool.ready();
  }

  isLive(streamId: string): boolean {
    return this.#channels.get(streamId)?.live ?? false;
  }

  viewerCount(streamId: string): number {
    return this.#channels.get(streamId)?.viewers.size ?? 0;
  }

  /** Stream ids of channels with a live publisher. */
  liveStreams(): string[] {
    return [...this.#channels.values()].filter((c) => c.live).map((c) => c.streamId);
  }

  sessionStream(sessionId: string): { streamId: string; kind: 'whip' | 'whep' } | undefined {
    const p = this.#publishers.get(sessionId);
    if (p) return { streamId: p.streamId, kind: 'whip' };
    const v = this.#viewers.get(sessionId);
    if (v && v.via === 'whep') return { streamId: v.streamId, kind: 'whep' };
    return undefined;
  }

  // ---- channels ----

  async #channel(streamId: string): Promise<ChannelMedia> {
    const existing = this.#channels.get(streamId);
    if (existing && !existing.router.closed) return existing;
    let pending = this.#creating.get(streamId);
    if (!pending) {
      pending = (async () => {
        const slot = this.pool.leastLoaded();
        const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS, appData: { streamId } });
        slot.load++;
        const [tapTransport, programTransport] = await Promise.all([router.createDirectTransport(), router.createDirectTransport()]);
        const socketShards: AudienceShard[] = [];
        const originShard: AudienceShard = {
          slot,
          ready: Promise.resolve({ router, piped: new Map() }),
          viewers: 0,
          origin: true,
          list: socketShards,
        };
        socketShards.push(originShard);
        const ch: ChannelMedia = {
          dvr: new DvrBuffer({
            windowMs: this.opts.dvrWindowMs ?? 30 * 60_000,
            maxBytes: this.opts.dvrMaxBytes ?? 512 * 1024 * 1024,
            ...(this.opts.dvrSpillDir ? { spillDir: this.opts.dvrSpillDir } : {}),
          }),
          streamId,
          slot,
          router,
          publisher: null,
          live: false,
          viewers: new Set(),
          egress: new Map([['socket', socketShards]]),
          program: {},
          tapTransport,
          programTransport,
        };
        // Viewers' keyframe requests reach the program producers as RTCP on this transport.
        programTransport.on('rtcp', (packet) => {
          if (hasKeyframeRequest(packet)) ch.program.video?.requestKeyFrame();
        });
        router.observer.once('close', () => {
          slot.load--;
          // still registered: not released by us, so its worker died under it
          if (this.#channels.get(streamId) === ch) this.#channelLost(ch, 'media worker died');
        });
        this.#channels.set(streamId, ch);
        return ch;
      })().finally(() => this.#creating.delete(streamId));
      this.#creating.set(streamId, pending);
    }
    return pending;
  }

  /** Closes a channel's routers once nobody publishes or watches. */
  #maybeRelease(ch: ChannelMedia): void {
    if (ch.publisher || ch.viewers.size > 0) return;
    for (const v of this.#viewers.values()) if (v.streamId === ch.streamId) return;
    if (this.#channels.get(ch.streamId) === ch) this.#channels.delete(ch.streamId);
    this.#closeAudience(ch);
    ch.router.close();
    ch.dvr.close();
  }

  async #transport(
    slot: PooledWorker,
    router: types.Router,
    offer: ParsedOffer,
    opts: { tcp: boolean; appData: Record<string, unknown> },
  ): Promise<types.WebRtcTransport> {
    const transport = await router.createWebRtcTransport({
      webRtcServer: slot.webRtcServer,
      enableUdp: true,
      // OBS is confused by several candidates: publishers get the UDP one only.
      enableTcp: opts.tcp,
      preferUdp: true,
      appData: opts.appData,
    });
    try {
      await transport.connect({
        dtlsParameters: { role: remoteDtlsRole(offer), fingerprints: [offer.fingerprint as types.DtlsFingerprint] },
      });
    } catch (err) {
      transport.close();
      throw err;
    }
    return transport;
  }

  // ---- WHIP ----

  /**
   * Starts a publisher session for a channel from a WHIP offer. A channel that
   * already has a publisher gets the new one (OBS reconnects with a fresh POST
   * while its old session may still look alive); viewers move to the new one.
   */
  async publish(streamId: string, offerSdp: string): Promise<SessionAnswer> {
    this.#assertOpen();
    const offer = parseOffer(offerSdp);
    const ch = await this.#channel(streamId);
    const tracks = planIngest(offer, ch.router.rtpCapabilities);
    const id = newId();
    const transport = await this.#transport(ch.slot, ch.router, offer, {
      tcp: false,
      appData: { streamId, sessionId: id, role: 'publisher' },
    });
    const producers = new Map<MediaKind, types.Producer>();
    try {
      for (const t of tracks) {
        const producer = await transport.produce({
          kind: t.kind,
          rtpParameters: t.rtpParameters,
          keyFrameRequestDelay: 1000,
          appData: { streamId },
        });
        producers.set(t.kind, producer);
      }
    } catch (err) {
      transport.close();
      this.#maybeRelease(ch);
      throw new SdpError(422, 'unsupported_media', `mediasoup refused the tracks: ${(err as Error).message}`);
    }
    const session: WhipSession = {
      id,
      streamId,
      transport,
      source: 'publisher',
      producers,
      createdAt: Date.now(),
      etag: offer.iceUfrag,
      bytes: 0,
      lastMediaAt: Date.now(),
      ended: false,
    };
    this.#publishers.set(id, session);
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.#endPublisherSession(session, `DTLS ${state}`);
    });
    const replaced = await this.#startIngest(ch, session);
    this.#log.info({ streamId, session: id, replaced, tracks: tracks.map((t) => t.accepted.codec.mimeType) }, 'publisher connected');
    const answer = buildAnswer({
      offer,
      accepted: tracks.map((t) => t.accepted),
      transport: transportInfo(transport),
      direction: 'recvonly',
    });
    return { sessionId: id, streamId, answer, etag: session.etag };
  }

  /** Makes a session the channel's ingest (replacing any previous one without going offline). True when one was replaced. */
  async #startIngest(ch: ChannelMedia, session: IngestSession): Promise<boolean> {
    const previous = ch.publisher;
    if (previous) this.#endPublisherSession(previous, `replaced by a new ${session.source}`, { keepLive: true });
    ch.publisher = session;
    this.#watchPublisher(ch, session);
    await this.#feedProgram(ch, session);
    return !!previous;
  }

  // ---- relays between nodes (PipeTransport) ----

  get #relayAddress(): string | undefined {
    return this.opts.relayAddress ?? this.opts.announcedAddress;
  }

  #pipeOptions(appData: Record<string, unknown>): types.PipeTransportOptions {
    const announced = this.#relayAddress;
    return {
      listenInfo: { protocol: 'udp', ip: this.opts.listenIp, ...(announced ? { announcedAddress: announced } : {}) },
      enableSrtp: true,
      enableRtx: true,
      appData,
    };
  }

  #endpoint(t: types.PipeTransport): PipeEndpoint {
    return { ip: this.#relayAddress ?? t.tuple.localAddress, port: t.tuple.localPort, srtpParameters: t.srtpParameters };
  }

  /**
   * Origin side: pipes a live channel's program tracks to another node's
   * PipeTransport at `remote`. The relay lasts until closed (`closeRelay`,
   * `closeRelaysTo`) or until the channel's router closes.
   */
  async serveRelay(streamId: string, peer: string, remote: PipeEndpoint): Promise<{ id: string; offer: RelayOffer }> {
    this.#assertOpen();
    const ch = this.#channels.get(streamId);
    if (!ch?.live) throw new SfuError('stream_offline', 'The stream is not live on this node');
    const transport = await ch.router.createPipeTransport(this.#pipeOptions({ streamId, role: 'relay-out', peer }));
    const tracks: RelayOffer['tracks'] = [];
    try {
      await transport.connect(remote);
      for (const track of Object.values(ch.program)) {
        if (track.producer.closed) continue;
        const consumer = await transport.consume({ producerId: track.producer.id });
        tracks.push({ kind: track.kind, rtpParameters: consumer.rtpParameters });
      }
    } catch (err) {
      transport.close();
      throw err;
    }
    const relay: RelayOut = { id: transport.id, streamId, peer, transport };
    this.#relays.set(relay.id, relay);
    transport.observer.once('close', () => this.#relays.delete(relay.id));
    this.#log.info({ streamId, relay: relay.id, peer }, 'relaying channel to another node');
    return { id: relay.id, offer: { endpoint: this.#endpoint(transport), tracks } };
  }

  closeRelay(id: string): boolean {
    const r = this.#relays.get(id);
    r?.transport.close();
    return !!r;
  }

  /** Stops every relay to a node (it left or was lost). */
  closeRelaysTo(peer: string): number {
    const gone = [...this.#relays.values()].filter((r) => r.peer === peer);
    for (const r of gone) r.transport.close();
    return gone.length;
  }

  /** The relays this node serves to other nodes. */
  relays(): { id: string; streamId: string; peer: string }[] {
    return [...this.#relays.values()].map((r) => ({ id: r.id, streamId: r.streamId, peer: r.peer }));
  }

  /**
   * Edge side: takes a channel from its origin node. `open` sends this node's
   * pipe end to the origin and returns the origin's (`serveRelay` there). The
   * relay becomes the channel's ingest: it feeds the program, the DVR buffer
   * and every viewer here, and replaces any previous publisher or relay
   * without viewers noticing. `onEnd` runs when the relay ends here.
   */
  async pull(streamId: string, open: (local: PipeEndpoint) => Promise<RelayOffer>, onEnd: () => void): Promise<void> {
    this.#assertOpen();
    const ch = await this.#channel(streamId);
    const transport = await ch.router.createPipeTransport(this.#pipeOptions({ streamId, role: 'relay-in' }));
    const producers = new Map<MediaKind, types.Producer>();
    try {
      const offer = await open(this.#endpoint(transport));
      await transport.connect(offer.endpoint);
      for (const t of offer.tracks)
        producers.set(t.kind, await transport.produce({ kind: t.kind, rtpParameters: t.rtpParameters, appData: { streamId } }));
      if (producers.size === 0) throw new SfuError('stream_offline', 'The origin sends no tracks');
    } catch (err) {
      transport.close();
      this.#maybeRelease(ch);
      throw err;
    }
    const session: IngestSession = {
      id: transport.id,
      streamId,
      transport,
      source: 'relay',
      onEnd,
      producers,
      createdAt: Date.now(),
      etag: '',
      bytes: 0,
      lastMediaAt: Date.now(),
      ended: false,
    };
    const replaced = await this.#startIngest(ch, session);
    this.#log.info({ streamId, relay: session.id, replaced }, 'relay from the origin node connected');
  }

  /** What feeds a channel here now. */
  ingestSource(streamId: string): IngestSource | null {
    return this.#channels.get(streamId)?.publisher?.source ?? null;
  }

  /** Points the channel's program tracks at a new publisher; viewers are re-attached only if a codec changed. */
  async #feedProgram(ch: ChannelMedia, s: IngestSession): Promise<void> {
    let recreated = false;
    for (const [kind, producer] of s.producers) {
      const current = ch.program[kind];
      if (current && !current.producer.closed && current.accepts(producer)) {
        await current.attach(producer);
        continue;
      }
      current?.close();
      const track = await ProgramTrack.create({
        kind,
        source: producer,
        router: ch.router,
        tapTransport: ch.tapTransport,
        programTransport: ch.programTransport,
      });
      ch.program[kind] = track;
      this.#record(ch, track);
      recreated = true;
    }
    for (const kind of ['audio', 'video'] as const) if (!s.producers.has(kind)) ch.program[kind]?.detach();
    if (recreated) {
      for (const v of ch.viewers) if (v.via === 'whep') void this.#attach(ch, v);
      this.emit('reconsume', ch.streamId);
    }
  }

  /** Feeds a program track into the channel's DVR buffer and wakes replays at the live edge. */
  #record(ch: ChannelMedia, track: ProgramTrack): void {
    const codec = track.kind === 'video' ? codecOf(track.codec.mimeType) : null;
    track.onPacket((packet, info) => {
      const keyframe = codec !== null && isKeyframeStart(codec, packet);
      if (keyframe) this.#switchCatchUpViewers(ch);
      ch.dvr.push({ at: info.arrivalMs, kind: info.kind, keyframe, data: Buffer.from(packet) });
      for (const v of ch.viewers) v.replay?.notify();
    });
  }

  /**
   * A live keyframe is about to reach the program producer: catch-up viewers
   * that reached the live edge resume their standby program consumers now
   * (the worker handles the resume before this packet), so they switch
   * exactly on a keyframe.
   */
  #switchCatchUpViewers(ch: ChannelMedia): void {
    for (const v of ch.viewers) {
      if (!v.standby || !v.replay || v.replay.behindLiveMs() > 500) continue;
      const standby = v.standby;
      v.standby = undefined;
      for (const [kind, c] of standby) {
        void c.resume().catch(() => {});
        const old = v.consumers.get(kind);
        v.consumers.set(kind, c);
        c.observer.once('close', () => {
          if (v.consumers.get(kind) === c) v.consumers.delete(kind);
        });
        setTimeout(() => old?.close(), 1000);
      }
      const replay = v.replay;
      v.replay = undefined;
      setTimeout(() => replay.close(), 1000);
      this.emit('dvr', v.id, { t: 'switch' });
    }
  }

  #watchPublisher(ch: ChannelMedia, s: IngestSession): void {
    const timeout = this.opts.publisherTimeoutMs;
    let polling = false;
    s.monitor = setInterval(() => {
      if (polling || s.ended) return;
      polling = true;
      void this.#inboundBytes(s)
        .then((bytes) => {
          if (s.ended) return;
          const now = Date.now();
          if (bytes > s.bytes) {
            s.bytes = bytes;
            s.lastMediaAt = now;
            if (!ch.live && ch.publisher === s) {
              ch.live = true;
              this.#log.info({ streamId: ch.streamId, source: s.source }, 'channel live');
              this.emit('live', ch.streamId, s.source);
            }
          } else if (now - s.lastMediaAt > timeout) {
            this.#endPublisherSession(s, s.bytes ? 'publisher sent no media (timeout)' : 'publisher never sent media');
          }
        })
        .catch(() => {})
        .finally(() => (polling = false));
    }, MONITOR_INTERVAL_MS);
  }

  async #inboundBytes(s: IngestSession): Promise<number> {
    let total = 0;
    for (const p of s.producers.values()) {
      if (p.closed) continue;
      for (const st of await p.getStats()) total += st.byteCount;
    }
    return total;
  }

  #endPublisherSession(s: IngestSession, reason: string, opts: { keepLive?: boolean } = {}): void {
    if (s.ended) return;
    s.ended = true;
    clearInterval(s.monitor);
    this.#publishers.delete(s.id);
    s.transport.close();
    s.onEnd?.();
    const ch = this.#channels.get(s.streamId);
    this.#log.info({ streamId: s.streamId, session: s.id, source: s.source, reason }, 'publisher session ended');
    if (!ch || ch.publisher !== s) return;
    ch.publisher = null;
    if (opts.keepLive) return;
    for (const p of Object.values(ch.program)) p.detach();
    if (ch.live) {
      ch.live = false;
      this.emit('offline', ch.streamId, reason, s.source);
    }
    this.#maybeRelease(ch);
  }

  /** WHIP DELETE. False when the session does not exist (already gone). */
  unpublish(sessionId: string): boolean {
    const s = this.#publishers.get(sessionId);
    if (!s) return false;
    this.#endPublisherSession(s, 'publisher stopped (DELETE)');
    return true;
  }

  /** Ends a channel's publisher (key rotated, account gone). */
  endPublisher(streamId: string, reason: string): boolean {
    const s = this.#channels.get(streamId)?.publisher;
    if (!s) return false;
    this.#endPublisherSession(s, reason);
    return true;
  }

  // ---- WHEP ----

  /** Starts a WHEP viewer session; the channel must be live. */
  async watch(streamId: string, offerSdp: string): Promise<SessionAnswer> {
    this.#assertOpen();
    const offer = parseOffer(offerSdp);
    const ch = this.#channels.get(streamId);
    if (!ch?.publisher || !ch.live) throw new SfuError('stream_offline', 'The stream is not live');
    const source = programCodecs(ch);
    const plan = planEgress(offer, source, ch.router.rtpCapabilities);
    const shard = this.#place(ch, egressRouterKey(plan.routerCodecs), plan.routerCodecs);
    let egress: EgressRouter;
    let transport: types.WebRtcTransport;
    const id = newId();
    try {
      egress = await shard.ready;
      transport = await this.#transport(shard.slot, egress.router, offer, {
        tcp: true,
        appData: { streamId, sessionId: id, role: 'viewer' },
      });
    } catch (err) {
      this.#unplace(shard);
      throw err;
    }
    // RTX only when the egress router's RTX payload type is the one the player offered.
    const caps: types.RtpCapabilities = {
      codecs: [...(plan.rtpCapabilities.codecs ?? [])],
      headerExtensions: plan.rtpCapabilities.headerExtensions ?? [],
    };
    for (const a of plan.accepted) {
      const offeredRtx = a.codec.rtxPayloadType;
      const routerRtx = egress.router.rtpCapabilities.codecs?.find(
        (c) => c.mimeType.toLowerCase().endsWith('/rtx') && c.kind === a.media.kind && c.parameters?.apt === a.codec.payloadType,
      );
      if (offeredRtx !== undefined && routerRtx?.preferredPayloadType === offeredRtx) {
        a.rtxPayloadType = offeredRtx;
        caps.codecs!.push({ ...routerRtx });
      }
    }
    const mids: Partial<Record<MediaKind, string>> = {};
    for (const a of plan.accepted) mids[a.media.kind] = a.media.mid;
    const viewer: Viewer = {
      id,
      streamId,
      via: 'whep',
      transport,
      rtpCapabilities: caps,
      router: egress.router,
      shard,
      mids,
      consumers: new Map(),
      etag: offer.iceUfrag,
      closed: false,
    };
    await this.#addViewer(ch, viewer);
    // Players without MID demuxing (libdatachannel, GStreamer) need the SSRCs signalled.
    for (const a of plan.accepted) {
      const c = viewer.consumers.get(a.media.kind);
      const enc = c?.rtpParameters.encodings?.[0];
      if (c && enc?.ssrc) {
        a.sendSsrcs = {
          ssrc: enc.ssrc,
          ...(enc.rtx?.ssrc ? { rtxSsrc: enc.rtx.ssrc } : {}),
          cname: c.rtpParameters.rtcp?.cname ?? 'whipcast',
        };
      }
    }
    const answer = buildAnswer({ offer, accepted: plan.accepted, transport: transportInfo(transport), direction: 'sendonly' });
    return { sessionId: id, streamId, answer, etag: viewer.etag };
  }

  async #addViewer(ch: ChannelMedia, viewer: Viewer): Promise<void> {
    this.#viewers.set(viewer.id, viewer);
    ch.viewers.add(viewer);
    viewer.transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.#removeViewer(viewer, `DTLS ${state}`);
    });
    viewer.transport.observer.once('close', () => this.#removeViewer(viewer, 'transport closed'));
    this.emit('viewers', ch.streamId, ch.viewers.size);
    await this.#attach(ch, viewer);
  }

  /** Consumes the channel's current producers into a viewer's transport, on the viewer's own mids. */
  async #attach(ch: ChannelMedia, viewer: Viewer): Promise<void> {
    if (viewer.closed) return;
    for (const [kind, mid] of Object.entries(viewer.mids) as [MediaKind, string][]) {
      const producer = ch.program[kind]?.producer;
      if (!producer || producer.closed) continue;
      if (viewer.consumers.get(kind)?.producerId === producer.id) continue;
      try {
        const source = await this.#sourceFor(viewer, producer);
        if (viewer.closed || producer.closed) return;
        viewer.consumers.get(kind)?.close();
        const consumer = await viewer.transport.consume({
          producerId: source.id,
          rtpCapabilities: viewer.rtpCapabilities,
          mid,
          paused: false,
        });
        viewer.consumers.set(kind, consumer);
        consumer.observer.once('close', () => {
          if (viewer.consumers.get(kind) === consumer) viewer.consumers.delete(kind);
        });
      } catch (err) {
        this.#log.warn({ err, streamId: ch.streamId, viewer: viewer.id, kind }, 'could not deliver track to viewer');
      }
    }
  }

  /**
   * Places a viewer on one of the channel's audience routers for a delivery
   * scheme: the first with room, else a new router on the least-loaded worker.
   * Synchronous, so concurrent joins count against the limit at once.
   */
  #place(ch: ChannelMedia, key: string, codecs: types.RouterRtpCodecCapability[]): AudienceShard {
    const max = this.opts.routerMaxViewers ?? 250;
    let shards = ch.egress.get(key);
    if (!shards) ch.egress.set(key, (shards = []));
    let shard = shards.find((x) => x.viewers < max && !x.slot.worker.closed);
    if (!shard) {
      // the channel's own worker first (no pipe needed for its program), then the least loaded
      const slot = shards.length === 0 && !ch.slot.worker.closed ? ch.slot : this.pool.leastLoaded();
      const ready = (async (): Promise<EgressRouter> => {
        const router = await slot.worker.createRouter({ mediaCodecs: codecs, appData: { streamId: ch.streamId, egress: key } });
        if (ch.router.closed) router.close();
        else ch.router.observer.once('close', () => router.close());
        return { router, piped: new Map() };
      })();
      const created: AudienceShard = { slot, ready, viewers: 0, origin: false, list: shards };
      slot.load++; // the router, given back when it closes or could not be made
      const gone = () => {
        dropShard(created);
        slot.load--;
      };
      ready.then((e) => e.router.observer.once('close', gone), gone);
      shards.push(created);
      shard = created;
      if (shards.length > 1)
        this.#log.info(
          { streamId: ch.streamId, scheme: key, worker: slot.index, routers: shards.length },
          'audience spread to another router',
        );
    }
    shard.viewers++;
    shard.slot.load++;
    return shard;
  }

  /** Gives a viewer's place back; an empty audience router (not the channel's own) is closed. */
  #unplace(shard: AudienceShard): void {
    shard.viewers--;
    shard.slot.load--;
    if (shard.viewers === 0 && !shard.origin) closeShard(shard);
  }

  #closeAudience(ch: ChannelMedia): void {
    for (const shards of ch.egress.values()) for (const shard of [...shards]) closeShard(shard);
  }

  /** The producer a viewer consumes for a channel producer: itself on the channel's router, else its pipe into the viewer's router. */
  async #sourceFor(viewer: Viewer, producer: types.Producer): Promise<types.Producer> {
    if (viewer.shard.origin) return producer;
    const egress = await viewer.shard.ready;
    const ch = this.#channels.get(viewer.streamId);
    if (!ch) throw new SfuError('stream_offline', 'The stream is not live');
    let piped = egress.piped.get(producer.id);
    if (!piped) {
      piped = ch.router.pipeToRouter({ producerId: producer.id, router: egress.router, keepId: false }).then((r) => {
        const p = r.pipeProducer!;
        p.observer.once('close', () => egress.piped.delete(producer.id));
        return p;
      });
      egress.piped.set(producer.id, piped);
      piped.catch(() => egress.piped.delete(producer.id));
    }
    return piped;
  }

  /** The channel of a viewer (WHEP session or socket transport). */
  viewerStream(id: string): string | undefined {
    return this.#viewers.get(id)?.streamId;
  }

  /** The worker a viewer (WHEP session or socket transport) was placed on. */
  viewerWorker(id: string): number | undefined {
    return this.#viewers.get(id)?.shard.slot.index;
  }

  /** Per worker: audience routers and viewers of a channel. */
  placement(streamId: string): AudiencePlacement[] {
    const ch = this.#channels.get(streamId);
    if (!ch) return [];
    const by = new Map<number, AudiencePlacement>();
    for (const shards of ch.egress.values())
      for (const shard of shards) {
        const p = by.get(shard.slot.index) ?? { worker: shard.slot.index, channel: shard.slot === ch.slot, routers: 0, viewers: 0 };
        p.routers++;
        p.viewers += shard.viewers;
        by.set(shard.slot.index, p);
      }
    return [...by.values()].sort((x, y) => x.worker - y.worker);
  }

  /** `notify`: the server, not the client, ended it (socket clients are told, to rebuild). */
  #removeViewer(viewer: Viewer, reason: string, opts: { notify?: boolean } = {}): void {
    if (viewer.closed) return;
    viewer.closed = true;
    this.#stopReplay(viewer);
    this.#viewers.delete(viewer.id);
    viewer.transport.close();
    const ch = this.#channels.get(viewer.streamId);
    this.#log.debug({ streamId: viewer.streamId, viewer: viewer.id, reason }, 'viewer left');
    if (viewer.via === 'socket' && opts.notify) this.emit('transportClosed', viewer.id, reason);
    this.#unplace(viewer.shard);
    if (!ch) return;
    if (ch.viewers.delete(viewer)) this.emit('viewers', ch.streamId, ch.viewers.size);
    this.#maybeRelease(ch);
  }

  /** WHEP DELETE. */
  stopWatching(sessionId: string): boolean {
    const v = this.#viewers.get(sessionId);
    if (!v || v.via !== 'whep') return false;
    this.#removeViewer(v, 'viewer stopped (DELETE)');
    return true;
  }

  /** mediasoup stats of a session's transport and its producers/consumers (diagnostics, benchmarks). */
  async sessionStats(sessionId: string): Promise<{ transport: unknown[]; tracks: Record<string, unknown[]> } | undefined> {
    const p = this.#publishers.get(sessionId);
    const v = this.#viewers.get(sessionId);
    const s = p ?? v;
    if (!s) return undefined;
    const tracks: Record<string, unknown[]> = {};
    for (const [kind, t] of p ? p.producers : v!.consumers) tracks[kind] = await t.getStats();
    return { transport: await s.transport.getStats(), tracks };
  }

  // ---- socket viewers (mediasoup-client) ----

  /** The router capabilities a mediasoup-client Device loads for a channel. */
  async capabilities(streamId: string): Promise<{ routerRtpCapabilities: types.RtpCapabilities; live: boolean }> {
    this.#assertOpen();
    const ch = await this.#channel(streamId);
    const live = ch.live;
    this.#maybeRelease(ch);
    return { routerRtpCapabilities: ch.router.rtpCapabilities, live };
  }

  /** A receive transport for a socket viewer. It counts as a viewer once it consumes. */
  async createViewerTransport(streamId: string): Promise<TransportView> {
    this.#assertOpen();
    const ch = await this.#channel(streamId);
    const shard = this.#place(ch, 'socket', MEDIA_CODECS);
    let router: types.Router;
    let transport: types.WebRtcTransport;
    try {
      router = (await shard.ready).router;
      transport = await router.createWebRtcTransport({
        webRtcServer: shard.slot.webRtcServer,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        appData: { streamId, role: 'viewer' },
      });
    } catch (err) {
      this.#unplace(shard);
      throw err;
    }
    const viewer: Viewer = {
      id: transport.id,
      streamId,
      via: 'socket',
      transport,
      rtpCapabilities: {},
      router,
      shard,
      mids: {},
      consumers: new Map(),
      etag: '',
      closed: false,
    };
    this.#viewers.set(viewer.id, viewer);
    transport.on('dtlsstatechange', (state) => {
      if (state === 'failed' || state === 'closed') this.#removeViewer(viewer, `DTLS ${state}`);
    });
    // its router closed under it (worker died, audience torn down): the client must build a new one
    transport.observer.once('close', () => this.#removeViewer(viewer, 'transport closed by the server', { notify: true }));
    return {
      id: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: transport.iceCandidates,
      dtlsParameters: transport.dtlsParameters,
    };
  }

  #socketViewer(transportId: string): Viewer {
    const v = this.#viewers.get(transportId);
    if (!v || v.via !== 'socket' || v.closed) throw new SfuError('not_found', 'No such transport');
    return v;
  }

  async connectViewerTransport(transportId: string, dtlsParameters: types.DtlsParameters): Promise<void> {
    await this.#socketViewer(transportId).transport.connect({ dtlsParameters });
  }

  /** Consumes the channel's program tracks (paused: resume after the client set them up). */
  async consume(transportId: string, rtpCapabilities: types.RtpCapabilities): Promise<ConsumerInfo[]> {
    const viewer = this.#socketViewer(transportId);
    const ch = this.#channels.get(viewer.streamId);
    if (!ch?.live) throw new SfuError('stream_offline', 'The stream is not live');
    viewer.rtpCapabilities = rtpCapabilities;
    this.#stopReplay(viewer);
    if (this.opts.instantStart !== false) {
      const started = await this.#catchUp(ch, viewer);
      if (started) return started;
    }
    return this.#consumeProgram(ch, viewer, true);
  }

  /** Program consumers for a viewer (paused: the client resumes them). `standby` keeps them aside without replacing current ones. */
  async #consumeProgram(
    ch: ChannelMedia,
    viewer: Viewer,
    paused: boolean,
    standby?: Map<MediaKind, types.Consumer>,
  ): Promise<ConsumerInfo[]> {
    const rtpCapabilities = viewer.rtpCapabilities;
    const out: ConsumerInfo[] = [];
    for (const kind of ['audio', 'video'] as const) {
      const producer = ch.program[kind]?.producer;
      if (!producer || producer.closed) continue;
      if (!ch.router.canConsume({ producerId: producer.id, rtpCapabilities })) continue;
      const source = await this.#sourceFor(viewer, producer);
      if (viewer.closed) throw new SfuError('not_found', 'No such transport');
      const consumer = await viewer.transport.consume({ producerId: source.id, rtpCapabilities, paused });
      if (standby) standby.set(kind, consumer);
      else {
        viewer.consumers.get(kind)?.close();
        viewer.consumers.set(kind, consumer);
        consumer.observer.once('close', () => {
          if (viewer.consumers.get(kind) === consumer) viewer.consumers.delete(kind);
        });
      }
      out.push({ id: consumer.id, producerId: producer.id, kind, rtpParameters: consumer.rtpParameters });
    }
    if (out.length === 0) throw new SfuError('unavailable', 'Nothing this device can receive');
    this.#countViewer(ch, viewer);
    return out;
  }

  #countViewer(ch: ChannelMedia, viewer: Viewer): void {
    if (ch.viewers.has(viewer)) return;
    ch.viewers.add(viewer);
    this.emit('viewers', ch.streamId, ch.viewers.size);
  }

  #stopReplay(viewer: Viewer): void {
    viewer.replay?.close();
    viewer.replay = undefined;
    for (const c of viewer.standby?.values() ?? []) c.close();
    viewer.standby = undefined;
  }

  /** Consumers on a replay of the buffer from `from`, replacing the viewer's current ones. */
  async #replayConsumers(ch: ChannelMedia, viewer: Viewer, from: number, catchUpRate: number): Promise<ConsumerInfo[]> {
    const tracks = (['audio', 'video'] as const)
      .map((kind) => ch.program[kind])
      .filter((p): p is ProgramTrack => !!p && !p.producer.closed)
      .map((p) => ({ kind: p.kind, codec: p.codec, ssrc: p.ssrc }));
    const replay = await ReplaySession.create({ buffer: ch.dvr, router: viewer.router, tracks, from, catchUpRate });
    const out: ConsumerInfo[] = [];
    try {
      for (const [kind, producer] of replay.producers) {
        if (!viewer.router.canConsume({ producerId: producer.id, rtpCapabilities: viewer.rtpCapabilities })) continue;
        const consumer = await viewer.transport.consume({ producerId: producer.id, rtpCapabilities: viewer.rtpCapabilities, paused: true });
        viewer.consumers.get(kind)?.close();
        viewer.consumers.set(kind, consumer);
        consumer.observer.once('close', () => {
          if (viewer.consumers.get(kind) === consumer) viewer.consumers.delete(kind);
        });
        out.push({ id: consumer.id, producerId: producer.id, kind, rtpParameters: consumer.rtpParameters });
      }
    } catch (err) {
      replay.close();
      throw err;
    }
    viewer.replay = replay;
    this.#countViewer(ch, viewer);
    return out;
  }

  /** Instant start: replay the cached GOP faster than real time, then hand over to the live program at a keyframe. */
  async #catchUp(ch: ChannelMedia, viewer: Viewer): Promise<ConsumerInfo[] | null> {
    const last = ch.dvr.lastKeyframe();
    const kf = last === null ? undefined : ch.dvr.at(last);
    if (!kf || Date.now() - kf.at > 10_000 || !ch.program.video) return null;
    const out = await this.#replayConsumers(ch, viewer, last!, 2);
    const standbyConsumers = new Map<MediaKind, types.Consumer>();
    const standby = await this.#consumeProgram(ch, viewer, true, standbyConsumers).catch(() => null);
    if (!standby) return out;
    viewer.standby = standbyConsumers;
    return [...out, ...standby.map((s) => ({ ...s, standby: true }))];
  }

  // ---- DVR (socket viewers) ----

  /** Seeks a viewer into the past: `offsetMs` behind live, or `deltaMs` from where it is. Returns its new consumers. */
  async dvrSeek(
    transportId: string,
    target: { offsetMs?: number; deltaMs?: number },
  ): Promise<{ consumers: ConsumerInfo[]; behindLiveMs: number; windowMs: number; live: boolean }> {
    const viewer = this.#socketViewer(transportId);
    const ch = this.#channels.get(viewer.streamId);
    if (!ch || !ch.viewers.has(viewer)) throw new SfuError('not_found', 'Consume the stream first');
    const range = ch.dvr.range();
    const now = Date.now();
    if (!range) throw new SfuError('stream_offline', 'Nothing recorded yet');
    const current = viewer.replay ? viewer.replay.position() : now;
    let t = target.offsetMs !== undefined ? now - target.offsetMs : current + (target.deltaMs ?? 0);
    t = Math.max(range.start, t);
    if (t >= now - 1000) {
      return { consumers: await this.dvrLive(transportId), behindLiveMs: 0, windowMs: now - range.start, live: true };
    }
    const from = ch.dvr.keyframeAtOrBefore(t);
    if (from === null) throw new SfuError('not_found', 'No keyframe recorded in the window');
    this.#stopReplay(viewer);
    const consumers = await this.#replayConsumers(ch, viewer, from, 1);
    const start = ch.dvr.at(from)!.at;
    return { consumers, behindLiveMs: now - start, windowMs: now - range.start, live: false };
  }

  /** Back to live: consumers on the program again. */
  async dvrLive(transportId: string): Promise<ConsumerInfo[]> {
    const viewer = this.#socketViewer(transportId);
    const ch = this.#channels.get(viewer.streamId);
    if (!ch?.live) throw new SfuError('stream_offline', 'The stream is not live');
    this.#stopReplay(viewer);
    // like a new viewer: from the cached GOP, not waiting for the publisher's next keyframe
    const caughtUp = this.opts.instantStart !== false ? await this.#catchUp(ch, viewer) : null;
    return caughtUp ?? this.#consumeProgram(ch, viewer, true);
  }

  dvrPause(transportId: string): void {
    const v = this.#socketViewer(transportId);
    if (!v.replay) throw new SfuError('not_found', 'Seek first: live playback cannot be held');
    v.replay.pause();
  }

  dvrResume(transportId: string): void {
    const v = this.#socketViewer(transportId);
    if (!v.replay) throw new SfuError('not_found', 'Not in DVR mode');
    v.replay.play();
  }

  /** Where a viewer is: null when watching live. */
  dvrPosition(transportId: string): { behindLiveMs: number; windowMs: number; paused: boolean } | null {
    const v = this.#viewers.get(transportId);
    if (!v?.replay || v.standby) return null;
    const range = this.#channels.get(v.streamId)?.dvr.range();
    return { behindLiveMs: Math.round(v.replay.behindLiveMs()), windowMs: range ? Date.now() - range.start : 0, paused: v.replay.paused };
  }

  /** DVR window of a channel (ms) and memory used. */
  dvrStats(streamId: string): { windowMs: number; bytes: number; diskBytes: number; packets: number } | null {
    const ch = this.#channels.get(streamId);
    if (!ch) return null;
    const r = ch.dvr.range();
    return { windowMs: r ? r.end - r.start : 0, bytes: ch.dvr.bytes, diskBytes: ch.dvr.diskBytes, packets: ch.dvr.size };
  }

  #consumer(transportId: string, consumerId: string): types.Consumer {
    const v = this.#socketViewer(transportId);
    const c = [...v.consumers.values(), ...(v.standby?.values() ?? [])].find((x) => x.id === consumerId);
    if (!c) throw new SfuError('not_found', 'No such consumer');
    return c;
  }

  async resumeConsumer(transportId: string, consumerId: string): Promise<void> {
    const c = this.#consumer(transportId, consumerId);
    const viewer = this.#socketViewer(transportId);
    if (viewer.replay && !viewer.replay.started && [...viewer.replay.producers.values()].some((p) => p.id === c.producerId)) {
      await c.resume();
      // Start the replay clock once the video consumer is ready (or the audio one when there is no video)
      // and DTLS is up: packets sent before that are lost, and the first of them is the keyframe.
      if (c.kind === 'video' || !viewer.replay.producers.has('video')) {
        const replay = viewer.replay;
        await dtlsConnected(viewer.transport, 10_000);
        if (viewer.replay === replay && !replay.started) replay.play();
      }
      return;
    }
    if (viewer.standby && [...viewer.standby.values()].includes(c)) return; // resumed at the switch
    await c.resume();
    if (c.kind === 'video') {
      // A new viewer needs a keyframe; OBS ignores the request, the GOP cache (DVR) covers it.
      await c.requestKeyFrame();
    }
  }

  async pauseConsumer(transportId: string, consumerId: string): Promise<void> {
    await this.#consumer(transportId, consumerId).pause();
  }

  async restartViewerIce(transportId: string): Promise<types.IceParameters> {
    return this.#socketViewer(transportId).transport.restartIce();
  }

  closeViewerTransport(transportId: string): boolean {
    const v = this.#viewers.get(transportId);
    if (!v || v.via !== 'socket') return false;
    this.#removeViewer(v, 'closed by the client');
    return true;
  }

  // ---- ICE restart (WHIP/WHEP PATCH) ----

  etagOf(sessionId: string): string | undefined {
    return this.#publishers.get(sessionId)?.etag ?? this.#viewers.get(sessionId)?.etag;
  }

  async restartIce(sessionId: string, remote: { ufrag: string; pwd: string }): Promise<IceRestartResult> {
    const s = this.#publishers.get(sessionId) ?? this.#viewers.get(sessionId);
    if (!s) throw new SfuError('not_found', 'No such session');
    const iceParameters = await s.transport.restartIce();
    s.etag = remote.ufrag;
    return { etag: s.etag, iceParameters, iceCandidates: s.transport.iceCandidates };
  }

  // ---- lifecycle ----

  #onWorkerLost(index: number): void {
    for (const ch of [...this.#channels.values()]) if (ch.slot.index === index) this.#channelLost(ch, 'media worker died');
  }

  /** A channel's router is gone with its worker: offline now; OBS's fresh POST and the viewers' rebuilds bring it back. */
  #channelLost(ch: ChannelMedia, reason: string): void {
    if (ch.publisher) this.#endPublisherSession(ch.publisher, reason);
    if (ch.live) {
      ch.live = false;
      this.emit('offline', ch.streamId, reason, 'publisher');
    }
    // viewers on other workers lose the program too
    for (const v of [...this.#viewers.values()]) if (v.streamId === ch.streamId) this.#removeViewer(v, reason, { notify: true });
    this.#closeAudience(ch);
    ch.dvr.close();
    if (this.#channels.get(ch.streamId) === ch) this.#channels.delete(ch.streamId);
  }

  #assertOpen(): void {
    if (!this.ready()) throw new SfuError('unavailable', 'Media server is not ready');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#publishers.values()]) this.#endPublisherSession(s, 'server shutting down');
    for (const v of [...this.#viewers.values()]) this.#removeViewer(v, 'server shutting down');
    this.pool.close();
  }

  /** For tests and the viewer API: the channel router's capabilities. */
  async routerCapabilities(streamId: string): Promise<types.RtpCapabilities> {
    return (await this.#channel(streamId)).router.rtpCapabilities;
  }
}

function transportInfo(t: types.WebRtcTransport): TransportInfo {
  return { iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
}

function programCodecs(ch: ChannelMedia): SourceCodecs {
  const out: SourceCodecs = {};
  for (const [kind, p] of Object.entries(ch.program) as [MediaKind, ProgramTrack][]) if (!p.producer.closed) out[kind] = p.codec;
  return out;
}

/** True when a (compound) RTCP packet holds a PLI or FIR. */
function hasKeyframeRequest(buf: Buffer): boolean {
  let off = 0;
  while (off + 4 <= buf.length) {
    const fmt = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    if (pt === 206 && (fmt === 1 || fmt === 4)) return true;
    off += (buf.readUInt16BE(off + 2) + 1) * 4;
  }
  return false;
}
