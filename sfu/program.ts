/**
 * A channel's "program" track: one stable mediasoup Producer per kind that
 * every viewer consumes. It is fed through a DirectTransport from whichever
 * publisher is current, with SSRC, sequence numbers and timestamps rewritten
 * so the viewers' decoders see one continuous stream: a publisher that
 * reconnects (OBS's fresh POST) or is replaced does not break any viewer's
 * session, WHEP players included. The same tap feeds the DVR buffer.
 */
import { randomInt } from 'node:crypto';
import type { types } from 'mediasoup';
import { sameCodec } from './codecs.ts';
import type { MediaKind } from './sdp/offer.ts';

/** A packet on its way to the program, after rewriting: listeners (DVR, GOP cache) see it too. */
export type PacketListener = (packet: Buffer, info: { kind: MediaKind; arrivalMs: number }) => void;

export class ProgramTrack {
  #tap: types.Consumer | null = null;
  #source: types.Producer | null = null;
  #seqOffset = 0;
  #tsOffset = 0;
  #lastSeq = -1;
  #lastTs = 0;
  #lastWallMs = 0;
  #needsRebase = true;
  #lastKeyframeRequest = 0;
  #listeners = new Set<PacketListener>();

  private constructor(
    readonly ssrc: number,
    readonly kind: MediaKind,
    readonly producer: types.Producer,
    readonly codec: types.RtpCodecParameters,
    private readonly tapTransport: types.DirectTransport,
    private readonly router: types.Router,
  ) {}

  /** Creates the program producer for a source's codec. */
  static async create(opts: {
    kind: MediaKind;
    source: types.Producer;
    router: types.Router;
    tapTransport: types.DirectTransport;
    programTransport: types.DirectTransport;
  }): Promise<ProgramTrack> {
    const tapCodec = consumableCodec(opts.source, opts.router);
    const ssrc = randomInt(1, 2 ** 31);
    const producer = await opts.programTransport.produce({
      kind: opts.kind,
      rtpParameters: {
        codecs: [tapCodec],
        encodings: [{ ssrc }],
        headerExtensions: [],
        rtcp: { cname: 'whipcast', reducedSize: true },
      },
      appData: { program: true },
    });
    const track = new ProgramTrack(ssrc, opts.kind, producer, tapCodec, opts.tapTransport, opts.router);
    await track.attach(opts.source);
    return track;
  }

  /** True when `source` can feed this program without viewers renegotiating. */
  accepts(source: types.Producer): boolean {
    const c = consumableCodec(source, this.router);
    return c.clockRate === this.codec.clockRate && sameCodec(c, this.codec);
  }

  /** Switches the program to a new source; the stream stays continuous for viewers. */
  async attach(source: types.Producer): Promise<void> {
    this.#tap?.close();
    this.#source = source;
    this.#needsRebase = true;
    const tap = await this.tapTransport.consume({
      producerId: source.id,
      rtpCapabilities: { codecs: this.router.rtpCapabilities.codecs, headerExtensions: [] },
    });
    if (this.#source !== source) {
      tap.close();
      return;
    }
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

  onPacket(listener: PacketListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Asks the current source for a keyframe (at most once a second; OBS ignores it anyway). */
  requestKeyFrame(): void {
    const now = Date.now();
    if (!this.#tap || now - this.#lastKeyframeRequest < 1000) return;
    this.#lastKeyframeRequest = now;
    void this.#tap.requestKeyFrame().catch(() => {});
  }

  #forward(packet: Buffer): void {
    if (packet.length < 12 || this.producer.closed) return;
    const now = Date.now();
    const seq = packet.readUInt16BE(2);
    const ts = packet.readUInt32BE(4);
    if (this.#needsRebase) {
      // First packet from a new source: continue where the previous one left off.
      this.#needsRebase = false;
      const nextSeq = this.#lastSeq < 0 ? randomInt(0, 0x8000) : (this.#lastSeq + 1) & 0xffff;
      this.#seqOffset = (nextSeq - seq) & 0xffff;
      const elapsed = this.#lastSeq < 0 ? 0 : Math.max(1, Math.round(((now - this.#lastWallMs) * this.codec.clockRate) / 1000));
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
    for (const l of this.#listeners) l(packet, { kind: this.kind, arrivalMs: now });
    this.producer.send(packet);
  }

  close(): void {
    this.detach();
    this.producer.close();
    this.#listeners.clear();
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
    rtcpFeedback: [
      { type: 'nack', parameter: '' },
      ...(source.kind === 'video'
        ? [
            { type: 'nack', parameter: 'pli' },
            { type: 'ccm', parameter: 'fir' },
          ]
        : []),
    ],
  };
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
