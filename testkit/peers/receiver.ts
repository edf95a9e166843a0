/**
 * What a bot viewer does with the RTP it receives: counts it, reassembles
 * H.264 frames (without decoding), reads capture stamps for latency and
 * tracks loss from sequence gaps. Cheap enough to run hundreds per process.
 */
import { H264Depacketizer, nowUs, type CaptureStamp, type ReceivedFrame } from '../rtp/h264.ts';
import { isRtcp, parseRtp } from '../rtp/packet.ts';
import { MEDIASOUP_PROBATION_SSRC } from '../rtp/transport-cc.ts';

export interface StreamStats {
  packets: number;
  bytes: number;
  /** Sequence numbers never received (gaps), net of late arrivals. */
  lost: number;
  ssrcs: Set<number>;
  payloadTypes: Set<number>;
}

export interface VideoStats extends StreamStats {
  frames: number;
  keyframes: number;
  incompleteFrames: number;
  /** The first complete frame was a keyframe with SPS and PPS. */
  firstFrameDecodable: boolean | null;
  /** ms from `startedAt` to the first complete decodable keyframe. */
  timeToFirstFrameMs: number | null;
  /** Capture stamp of that first decodable keyframe (when it carried one). */
  firstFrameStamp: CaptureStamp | null;
  /** Glass-to-glass latency samples, ms (from SEI capture stamps). */
  latenciesMs: number[];
  lastStamp: CaptureStamp | null;
  /** When the last frame ended (marker bit), performance.now() ms; null before the first. */
  lastFrameAt: number | null;
  /** Gaps longer than 1 s between frames, and their total length (ms). */
  freezes: number;
  frozenMs: number;
  /** The picture size the last packet that announced one carried (an SPS: each keyframe), with a `pictureSize` reader. */
  size: PictureSize | null;
}

export interface PictureSize {
  width: number;
  height: number;
}

/** Reads the picture size a video RTP packet announces (an H.264 SPS, a VP8 keyframe header), or null. */
export type PictureSizeReader = (packet: Uint8Array) => PictureSize | null;

/** A gap between frames longer than this is a freeze (what a viewer sees as a stall). */
export const FREEZE_MS = 1000;

/** One RTP packet as it arrived: its kind, SSRC, sequence number, marker bit and performance.now() ms. */
export type PacketListener = (kind: 'audio' | 'video', ssrc: number, seq: number, marker: boolean, at: number) => void;

/** Empty counters of one kind of media. */
export const newStreamStats = (): StreamStats => ({ packets: 0, bytes: 0, lost: 0, ssrcs: new Set(), payloadTypes: new Set() });

/** Empty video counters. */
export const newVideoStats = (): VideoStats => ({
  ...newStreamStats(),
  frames: 0,
  keyframes: 0,
  incompleteFrames: 0,
  firstFrameDecodable: null,
  timeToFirstFrameMs: null,
  firstFrameStamp: null,
  latenciesMs: [],
  lastStamp: null,
  lastFrameAt: null,
  freezes: 0,
  frozenMs: 0,
  size: null,
});

/** What a bot viewer counted: a MediaReceiver's, or a native bot's (testkit/peers/native-bots.ts). */
export interface ReceivedCounts {
  readonly audio: StreamStats;
  readonly video: VideoStats;
}

export class MediaReceiver implements ReceivedCounts {
  readonly audio: StreamStats = newStreamStats();
  readonly video: VideoStats = newVideoStats();
  startedAt = performance.now();
  readonly #lastSeq = new Map<number, number>();
  readonly #depacketizers = new Map<number, H264Depacketizer>();
  readonly #frameListeners = new Set<(f: ReceivedFrame) => void>();
  readonly #packetListeners = new Set<PacketListener>();
  #keepLatencies: number;
  readonly #frames: boolean;
  readonly #pictureSize: PictureSizeReader | null;

  /**
   * `kinds` tells which payload types are Opus and H.264 (others count as packets only).
   * `frames: false` only counts (packets, bytes, sequence gaps, frame ends from the marker bit):
   * no parsing, reassembly, stamps or latency — a cheaper bot for large benchmarks.
   */
  /**
   * `pictureSize` reads the size video packets announce into `video.size` (which simulcast layer a viewer gets).
   * Probes of the link's bandwidth (mediasoup's probation SSRC, padding-only packets) carry no media and are not counted.
   */
  constructor(
    readonly kinds: { audio: Set<number>; h264: Set<number> },
    opts: { maxLatencySamples?: number; frames?: boolean; pictureSize?: PictureSizeReader } = {},
  ) {
    this.#keepLatencies = opts.maxLatencySamples ?? 100_000;
    this.#frames = opts.frames ?? true;
    this.#pictureSize = opts.pictureSize ?? null;
  }

  onFrame(cb: (f: ReceivedFrame) => void): () => void {
    this.#frameListeners.add(cb);
    return () => this.#frameListeners.delete(cb);
  }

  /** Calls `cb` for every RTP packet of a known kind as it arrives (e.g. to feed a soak checker). */
  onPacket(cb: PacketListener): () => void {
    this.#packetListeners.add(cb);
    return () => this.#packetListeners.delete(cb);
  }

  #arrived(kind: 'audio' | 'video', ssrc: number, seq: number, marker: boolean): void {
    if (!this.#packetListeners.size) return;
    const at = performance.now();
    for (const cb of this.#packetListeners) cb(kind, ssrc, seq, marker, at);
  }

  /** Feed one received packet (RTP or RTCP; RTCP is ignored). */
  push(buf: Uint8Array): void {
    if (!this.#frames) return this.#count(buf);
    if (isRtcp(buf)) return;
    const p = parseRtp(buf);
    if (!p || p.ssrc === MEDIASOUP_PROBATION_SSRC || (p.payload.length === 0 && buf[0]! & 0x20)) return;
    const isAudio = this.kinds.audio.has(p.payloadType);
    const s: StreamStats = isAudio ? this.audio : this.video;
    this.#arrived(isAudio ? 'audio' : 'video', p.ssrc, p.sequenceNumber, p.marker);
    s.packets++;
    s.bytes += buf.length;
    s.ssrcs.add(p.ssrc);
    s.payloadTypes.add(p.payloadType);
    const last = this.#lastSeq.get(p.ssrc);
    if (last !== undefined) {
      const delta = (p.sequenceNumber - last) & 0xffff;
      if (delta > 0 && delta < 0x8000) {
        s.lost += delta - 1;
        this.#lastSeq.set(p.ssrc, p.sequenceNumber);
      } else if (delta !== 0 && s.lost > 0) {
        s.lost--; // a late (reordered or retransmitted) packet filled a gap
      }
    } else this.#lastSeq.set(p.ssrc, p.sequenceNumber);
    if (!isAudio && this.#pictureSize) this.video.size = this.#pictureSize(buf) ?? this.video.size;
    if (!isAudio && this.kinds.h264.has(p.payloadType)) {
      let d = this.#depacketizers.get(p.ssrc);
      if (!d) {
        d = new H264Depacketizer((f) => this.#frame(f));
        this.#depacketizers.set(p.ssrc, d);
      }
      d.push(p.payload, p.timestamp, p.sequenceNumber, p.marker);
    }
  }

  /** The counting-only path: reads the RTP header bytes it needs, nothing else. */
  #count(buf: Uint8Array): void {
    if (buf.length < 12 || buf[0]! >> 6 !== 2 || isRtcp(buf) || notMedia(buf)) return;
    const pt = buf[1]! & 0x7f;
    const isAudio = this.kinds.audio.has(pt);
    if (!isAudio && this.#pictureSize) this.video.size = this.#pictureSize(buf) ?? this.video.size;
    const s: StreamStats = isAudio ? this.audio : this.video;
    s.packets++;
    s.bytes += buf.length;
    const ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
    const seq = (buf[2]! << 8) | buf[3]!;
    this.#arrived(isAudio ? 'audio' : 'video', ssrc, seq, (buf[1]! & 0x80) !== 0);
    const last = this.#lastSeq.get(ssrc);
    if (last === undefined) {
      s.ssrcs.add(ssrc);
      s.payloadTypes.add(pt);
      this.#lastSeq.set(ssrc, seq);
    } else {
      const delta = (seq - last) & 0xffff;
      if (delta > 0 && delta < 0x8000) {
        s.lost += delta - 1;
        this.#lastSeq.set(ssrc, seq);
      } else if (delta !== 0 && s.lost > 0) s.lost--;
    }
    if (!isAudio && buf[1]! & 0x80) {
      this.video.frames++;
      this.#frameEnded();
    }
  }

  #frameEnded(): void {
    const v = this.video;
    const now = performance.now();
    if (v.lastFrameAt !== null && now - v.lastFrameAt > FREEZE_MS) {
      v.freezes++;
      v.frozenMs += now - v.lastFrameAt;
    }
    v.lastFrameAt = now;
  }

  #frame(f: ReceivedFrame): void {
    const v = this.video;
    if (f.incomplete) {
      v.incompleteFrames++;
      return;
    }
    v.frames++;
    this.#frameEnded();
    if (f.keyframe) v.keyframes++;
    if (v.firstFrameDecodable === null) v.firstFrameDecodable = f.decodable;
    if (v.timeToFirstFrameMs === null && f.decodable) {
      v.timeToFirstFrameMs = performance.now() - this.startedAt;
      v.firstFrameStamp = f.stamp;
    }
    if (f.stamp) {
      v.lastStamp = f.stamp;
      if (v.latenciesMs.length < this.#keepLatencies) v.latenciesMs.push((nowUs() - f.stamp.captureUs) / 1000);
    }
    for (const cb of this.#frameListeners) cb(f);
  }
}

/** Not media: mediasoup's bandwidth probes (their own SSRC), or a packet whose payload is all padding (RFC 3550 P bit). */
function notMedia(buf: Uint8Array): boolean {
  if (((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0 === MEDIASOUP_PROBATION_SSRC) return true;
  if (!(buf[0]! & 0x20)) return false;
  let header = 12 + (buf[0]! & 0x0f) * 4;
  if (buf[0]! & 0x10 && buf.length >= header + 4) header += 4 + ((buf[header + 2]! << 8) | buf[header + 3]!) * 4;
  return buf.length - header <= buf[buf.length - 1]!;
}

/** Resolves when `check()` is true, polling; rejects with `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
