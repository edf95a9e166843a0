/**
 * A channel's "program" track: one stable mediasoup Producer per kind that
 * every viewer consumes. It is fed through a DirectTransport from whichever
 * publisher is current, with SSRC, sequence numbers and timestamps rewritten
 * so the viewers' decoders see one continuous stream: a publisher that
 * reconnects (OBS's fresh POST) or is replaced does not break any viewer's
 * session, WHEP players included. The same tap feeds the DVR buffer.
 *
 * A simulcast publisher's layers are all kept: the program producer has one
 * encoding per layer (`ProgramLayer`, each rewritten on its own), so viewers'
 * consumers are simulcast consumers and mediasoup picks, per viewer, the layer
 * its bandwidth allows. Layers fed by whipcast itself (a transcoded ladder)
 * are declared at creation (`injectedLayers`) and fed with `inject()`.
 */
import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import { sameCodec } from './codecs.ts';
import { codecOf, type VideoCodec } from './dvr/keyframe.ts';
import { packetPictureSize, type PictureSize } from './layer-size.ts';
import type { MediaKind } from './sdp/offer.ts';
import { SenderReports } from './sender-reports.ts';

/** Where a program packet belongs. */
export interface PacketInfo {
  kind: MediaKind;
  arrivalMs: number;
  /** Its layer counted from the top: 0 = the best quality (the only layer of a single-layer program). */
  rank: number;
}

/** A packet on its way to the program, after rewriting: listeners (DVR, GOP cache, recordings) see it too. */
export type PacketListener = (packet: Buffer, info: PacketInfo) => void;

/** mediasoup measures a received stream's bitrate over this window (its `RtpStreamRecv` transmission counter), ms. */
const RECEIVE_RATE_WINDOW_MS = 2500;
/** A layer's measured rate is scaled to its time fed only once it has been fed this long (less is mostly its first keyframe). */
const MIN_FED_MS = 500;

/** One layer (encoding) of a program track: its own SSRC, sequence numbers and timestamps, continuous across publishers. */
export class ProgramLayer {
  /** The SSRC viewers receive this layer with. */
  readonly ssrc = randomInt(1, 2 ** 31);
  #seqOffset = 0;
  #tsOffset = 0;
  #lastSeq = -1;
  #lastTs = 0;
  #lastWallMs = 0;
  /** When it was first fed after a gap of a rate window or more (0: never fed). */
  #fedSince = 0;
  #needsRebase = true;
  /** The picture size its packets last announced (video; null until a keyframe's SPS / header passed). */
  size: PictureSize | null = null;

  constructor(
    /** Its index in the producer's encodings (mediasoup's spatial layer: 0 = lowest). */
    readonly index: number,
    /** Its rank from the top (0 = best). */
    readonly rank: number,
    /** Fed by whipcast (a transcoded ladder), not by the publisher. */
    readonly injected: boolean,
    private readonly clockRate: number,
  ) {}

  /** How long it has been fed without a gap of a rate window, ms (0: never fed). */
  fedForMs(now = Date.now()): number {
    return this.#fedSince ? now - this.#fedSince : 0;
  }

  /** The next packet comes from a new source: continue where the previous one left off. */
  rebase(): void {
    this.#needsRebase = true;
  }

  /** Rewrites a packet in place (SSRC, sequence number, timestamp). */
  rewrite(packet: Buffer, now: number): void {
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    if (this.#lastSeq < 0 || now - this.#lastWallMs > RECEIVE_RATE_WINDOW_MS) this.#fedSince = now;
    if (this.#needsRebase) {
      this.#needsRebase = false;
      const nextSeq = this.#lastSeq < 0 ? randomInt(0, 0x8000) : (this.#lastSeq + 1) & 0xffff;
      this.#seqOffset = (nextSeq - seq) & 0xffff;
      const elapsed = this.#lastSeq < 0 ? 0 : Math.max(1, Math.round(((now - this.#lastWallMs) * this.clockRate) / 1000));
      const nextTs = this.#lastSeq < 0 ? randomInt(0, 2 ** 31) : (this.#lastTs + elapsed) >>> 0;
      this.#tsOffset = (nextTs - ts) >>> 0;
    }
    const outSeq = (seq + this.#seqOffset) & 0xffff;
    const outTs = (ts + this.#tsOffset) >>> 0;
    packet.writeUInt16BE(outSeq, 2);
    packet.writeUInt32BE(outTs, 4);
    packet.writeUInt32BE(this.ssrc, 8);
    if (((outSeq - this.#lastSeq) & 0xffff) < 0x8000 || this.#lastSeq < 0) {
      this.#lastSeq = outSeq;
      this.#lastTs = outTs;
      this.#lastWallMs = now;
    }
  }
}

export interface ProgramTrackOptions {
  kind: MediaKind;
  /** The publisher's producer (one encoding, or one per simulcast layer). */
  source: types.Producer;
  router: types.Router;
  /** Where the taps of publishers' producers are consumed. */
  tapTransport: types.DirectTransport;
  /** Where the program producers live. */
  programTransport: types.DirectTransport;
  /** Layers whipcast feeds itself (`inject()`), below the publisher's (default 0). */
  injectedLayers?: number;
}

/** A program track with no publisher (`ProgramTrack.createFed`). */
export interface FedProgramTrackOptions {
  kind: MediaKind;
  /** Its codec, e.g. `video/VP8`: one the router offers. */
  mimeType: string;
  router: types.Router;
  /** Unused by a fed track (it has no publisher to tap); the channel's. */
  tapTransport: types.DirectTransport;
  /** Where its producer lives. */
  programTransport: types.DirectTransport;
  /** Its layers, all fed by `inject()` (default 1). */
  layers?: number;
}

export class ProgramTrack {
  #tap: types.Consumer | null = null;
  #source: types.Producer | null = null;
  /** The tap's SSRC of each publisher layer → its program layer. */
  #tapLayers = new Map<number, ProgramLayer>();
  #lastKeyframeRequest = 0;
  #listeners = new Set<PacketListener>();
  #layerListeners = new Set<PacketListener>();
  readonly #reports: SenderReports;
  /** The video codec whose packets announce picture sizes (null: audio, or a codec read for none). */
  readonly #sizedCodec: VideoCodec | null;

  private constructor(
    readonly kind: MediaKind,
    readonly producer: types.Producer,
    readonly codec: types.RtpCodecParameters,
    /** Its layers, lowest first (the producer's encodings). */
    readonly layers: readonly ProgramLayer[],
    private readonly tapTransport: types.DirectTransport,
    private readonly router: types.Router,
    programTransport: types.DirectTransport,
  ) {
    this.#reports = new SenderReports({ send: (rtcp) => !programTransport.closed && programTransport.sendRtcp(rtcp) });
    this.#sizedCodec = kind === 'video' ? codecOf(codec.mimeType) : null;
  }

  /** Creates the program producer for a source's codec and layers. */
  static async create(opts: ProgramTrackOptions): Promise<ProgramTrack> {
    const tapCodec = consumableCodec(opts.source, opts.router);
    const published = opts.source.rtpParameters.encodings?.length || 1;
    const injected = opts.injectedLayers ?? 0;
    const total = published + injected;
    // lowest first: injected layers, then the publisher's (its encodings are lowest first too)
    const layers = Array.from({ length: total }, (_, i) => new ProgramLayer(i, total - 1 - i, i < injected, tapCodec.clockRate));
    const sourceEncodings = opts.source.rtpParameters.encodings ?? [];
    const producer = await produce(opts.programTransport, opts.kind, tapCodec, layers, (l) =>
      l.injected ? undefined : sourceEncodings[l.index - injected]?.scalabilityMode,
    );
    const track = new ProgramTrack(opts.kind, producer, tapCodec, layers, opts.tapTransport, opts.router, opts.programTransport);
    await track.attach(opts.source);
    return track;
  }

  /**
   * A program track whipcast feeds alone (`inject()` into each of its layers), no publisher: e.g. a VP8 copy of an
   * H.264 program for viewers whose browser cannot decode H.264.
   */
  static async createFed(opts: FedProgramTrackOptions): Promise<ProgramTrack> {
    const cap = opts.router.rtpCapabilities.codecs?.find(
      (c) => c.kind === opts.kind && c.mimeType.toLowerCase() === opts.mimeType.toLowerCase(),
    );
    if (!cap?.preferredPayloadType) throw new Error(`the router offers no ${opts.mimeType}`);
    const codec: types.RtpCodecParameters = {
      mimeType: cap.mimeType,
      payloadType: cap.preferredPayloadType,
      clockRate: cap.clockRate,
      ...(cap.channels ? { channels: cap.channels } : {}),
      parameters: cap.parameters ?? {},
      rtcpFeedback: feedbackFor(opts.kind),
    };
    const total = opts.layers ?? 1;
    const layers = Array.from({ length: total }, (_, i) => new ProgramLayer(i, total - 1 - i, true, codec.clockRate));
    const producer = await produce(opts.programTransport, opts.kind, codec, layers, () => undefined);
    return new ProgramTrack(opts.kind, producer, codec, layers, opts.tapTransport, opts.router, opts.programTransport);
  }

  /** The SSRC of its top layer. */
  get ssrc(): number {
    return this.layers.at(-1)!.ssrc;
  }

  /**
   * The bitrate of its lowest layer that is being fed now (bits/s, as the worker measures it), or 0 when none is.
   * The worker's rate is over its last 2.5 s: a layer fed for less (just after go-live) has its rate over the time
   * it has been fed.
   */
  async lowestLayerBitrate(): Promise<number> {
    const stats = await this.producer.getStats().catch(() => []);
    for (const layer of this.layers) {
      const bitrate = stats.find((s) => s.ssrc === layer.ssrc)?.bitrate ?? 0;
      if (bitrate <= 0) continue;
      const fed = layer.fedForMs();
      return fed < RECEIVE_RATE_WINDOW_MS ? Math.round((bitrate * RECEIVE_RATE_WINDOW_MS) / Math.max(fed, MIN_FED_MS)) : bitrate;
    }
    return 0;
  }

  /** The bitrate of each layer, lowest first (bits/s, as the worker measures it; 0 for a layer not fed now). */
  async layerBitrates(): Promise<number[]> {
    const stats = await this.producer.getStats().catch(() => []);
    return this.layers.map((layer) => stats.find((s) => s.ssrc === layer.ssrc)?.bitrate ?? 0);
  }

  /** The layers the publisher feeds, lowest first. */
  get publishedLayers(): ProgramLayer[] {
    return this.layers.filter((l) => !l.injected);
  }

  /** True when `source` can feed this program without viewers renegotiating (same codec, same number of layers). */
  accepts(source: types.Producer): boolean {
    const c = consumableCodec(source, this.router);
    return (
      c.clockRate === this.codec.clockRate &&
      sameCodec(c, this.codec) &&
      (source.rtpParameters.encodings?.length || 1) === this.publishedLayers.length
    );
  }

  /** Switches the program to a new source; the stream stays continuous for viewers, layer by layer. */
  async attach(source: types.Producer): Promise<void> {
    this.#tap?.close();
    this.#source = source;
    for (const l of this.publishedLayers) l.rebase();
    // a pipe consumer carries every layer of the source, each on its own SSRC (encodings in the producer's order)
    const tap = await this.tapTransport.consume({
      producerId: source.id,
      rtpCapabilities: { codecs: this.router.rtpCapabilities.codecs, headerExtensions: [] },
      pipe: true,
    });
    if (this.#source !== source) {
      tap.close();
      return;
    }
    const published = this.publishedLayers;
    this.#tapLayers = new Map();
    tap.rtpParameters.encodings?.forEach((e, i) => {
      const layer = published[i];
      if (e.ssrc !== undefined && layer) this.#tapLayers.set(e.ssrc, layer);
    });
    this.#tap = tap;
    tap.on('rtp', (packet) => this.#forward(packet));
    tap.observer.once('close', () => {
      if (this.#tap === tap) this.#tap = null;
    });
  }

  detach(): void {
    this.#tap?.close();
    this.#tap = null;
    this.#source = null;
  }

  /** Top-layer packets (what recordings and thumbnails want): the program at its best quality. */
  onPacket(listener: PacketListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Packets of every layer (the DVR buffer keeps them all). */
  onLayerPacket(listener: PacketListener): () => void {
    this.#layerListeners.add(listener);
    return () => this.#layerListeners.delete(listener);
  }

  /** Asks the current source for a keyframe (at most once a second; OBS ignores it anyway). */
  requestKeyFrame(): void {
    const now = Date.now();
    if (!this.#tap || now - this.#lastKeyframeRequest < 1000) return;
    this.#lastKeyframeRequest = now;
    void this.#tap.requestKeyFrame().catch(() => {});
  }

  /** Feeds a packet of a layer whipcast produces itself (declared with `injectedLayers`). */
  inject(layer: ProgramLayer, packet: Buffer): void {
    if (!layer.injected || this.layers[layer.index] !== layer) throw new Error('not an injected layer of this track');
    this.#send(layer, packet);
  }

  #forward(packet: Buffer): void {
    const layer = this.#tapLayers.get(packet.length >= 12 ? packet.readUInt32BE(8) : 0);
    if (layer) this.#send(layer, packet);
  }

  #send(layer: ProgramLayer, packet: Buffer): void {
    if (packet.length < 12 || this.producer.closed) return;
    const now = Date.now();
    layer.rewrite(packet, now);
    if (this.#sizedCodec) {
      const size = packetPictureSize(this.#sizedCodec, packet);
      if (size) layer.size = size;
    }
    this.#reports.onPacket(packet);
    const info: PacketInfo = { kind: this.kind, arrivalMs: now, rank: layer.rank };
    if (layer.rank === 0) for (const l of this.#listeners) l(packet, info);
    for (const l of this.#layerListeners) l(packet, info);
    this.producer.send(packet);
  }

  close(): void {
    this.detach();
    this.producer.close();
    this.#listeners.clear();
    this.#layerListeners.clear();
  }
}

/** The codec (with the router's payload type) a source producer is consumed with. */
function consumableCodec(source: types.Producer, router: types.Router): types.RtpCodecParameters {
  const src = source.rtpParameters.codecs.find((c) => !c.mimeType.toLowerCase().endsWith('/rtx'))!;
  const cap = router.rtpCapabilities.codecs?.find(
    (c) => c.kind === source.kind && c.clockRate === src.clockRate && sameCodec(c, src) && !c.mimeType.toLowerCase().endsWith('/rtx'),
  );
  return {
    mimeType: src.mimeType,
    payloadType: cap?.preferredPayloadType ?? src.payloadType,
    clockRate: src.clockRate,
    ...(src.channels ? { channels: src.channels } : {}),
    // Opus in-band FEC is signalled to every viewer even when a publisher's SDP left it out, so receivers use
    // the FEC a publisher's encoder puts in its packets (OBS does).
    parameters: src.mimeType.toLowerCase() === 'audio/opus' ? { ...src.parameters, useinbandfec: 1 } : (src.parameters ?? {}),
    rtcpFeedback: feedbackFor(source.kind),
  };
}

/** Retransmissions for every kind; keyframe requests for video. */
function feedbackFor(kind: MediaKind): types.RtcpFeedback[] {
  return [
    { type: 'nack', parameter: '' },
    ...(kind === 'video'
      ? [
          { type: 'nack', parameter: 'pli' },
          { type: 'ccm', parameter: 'fir' },
        ]
      : []),
  ];
}

/** The program producer: one encoding per layer, lowest first. */
function produce(
  transport: types.DirectTransport,
  kind: MediaKind,
  codec: types.RtpCodecParameters,
  layers: readonly ProgramLayer[],
  scalabilityModeOf: (layer: ProgramLayer) => string | undefined,
): Promise<types.Producer> {
  return transport.produce({
    kind,
    rtpParameters: {
      codecs: [codec],
      encodings: layers.map((l) => {
        const scalabilityMode = scalabilityModeOf(l);
        return { ssrc: l.ssrc, ...(scalabilityMode ? { scalabilityMode } : {}) };
      }),
      headerExtensions: [],
      rtcp: { cname: 'whipcast', reducedSize: true },
    },
    appData: { program: true },
  });
}

/** True when a (compound) RTCP packet holds a PLI or FIR. */
export function hasKeyframeRequest(buf: Buffer): boolean {
  let off = 0;
  while (off + 4 <= buf.length) {
    const fmt = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    if (pt === 206 && (fmt === 1 || fmt === 4)) return true;
    off += (buf.readUInt16BE(off + 2) + 1) * 4;
  }
  return false;
}
