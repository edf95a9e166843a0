/**
 * A channel's time-shift buffer: every packet of the program (audio and
 * video) kept with its arrival time, video keyframes indexed, for a window
 * of `windowMs`, bounded by `maxBytes`. Survives publisher changes: the
 * program stream is continuous, a publisher gap is just a gap in time.
 *
 * Memory: bytes ≈ Σ(packet sizes) + PACKET_OVERHEAD × packets
 *       ≈ (bitrate / 8) × window + 96 B × packets/s × window.
 * At 3 Mbit/s + Opus (≈ 330 packets/s) a 30-minute window is ≈ 675 MB + 57 MB.
 * When the budget is smaller the window shrinks (oldest data first).
 */
import type { MediaKind } from '../sdp/offer.ts';

export const PACKET_OVERHEAD = 96;

export interface BufferedPacket {
  at: number;
  kind: MediaKind;
  keyframe: boolean;
  data: Buffer;
}

export interface DvrBufferOptions {
  windowMs: number;
  maxBytes: number;
}

export class DvrBuffer {
  /** Packets in arrival order; `#head` is the index of the oldest live entry. */
  #packets: BufferedPacket[] = [];
  #head = 0;
  /** Indices (absolute, see #base) of video keyframe-start packets. */
  #keyframes: number[] = [];
  #base = 0; // absolute index of #packets[0]
  #bytes = 0;

  constructor(readonly opts: DvrBufferOptions) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#packets.length - this.#head;
  }

  /** Arrival time of the oldest and newest packet, or null when empty. */
  range(): { start: number; end: number } | null {
    if (this.size === 0) return null;
    return { start: this.#packets[this.#head]!.at, end: this.#packets[this.#packets.length - 1]!.at };
  }

  push(p: BufferedPacket): void {
    const abs = this.#base + this.#packets.length;
    this.#packets.push(p);
    if (p.keyframe) this.#keyframes.push(abs);
    this.#bytes += p.data.length + PACKET_OVERHEAD;
    this.#evict(p.at);
  }

  #evict(now: number): void {
    while (this.size > 0) {
      const oldest = this.#packets[this.#head]!;
      if (now - oldest.at <= this.opts.windowMs && this.#bytes <= this.opts.maxBytes) break;
      this.#bytes -= oldest.data.length + PACKET_OVERHEAD;
      this.#packets[this.#head] = undefined as unknown as BufferedPacket;
      this.#head++;
    }
    const headAbs = this.#base + this.#head;
    while (this.#keyframes.length && this.#keyframes[0]! < headAbs) this.#keyframes.shift();
    if (this.#head > 4096 && this.#head * 2 > this.#packets.length) {
      this.#packets = this.#packets.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }

  /** Absolute index of the last keyframe at or before time `t` (or the first keyframe after the window start). */
  keyframeAtOrBefore(t: number): number | null {
    let lo = 0;
    let hi = this.#keyframes.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#get(this.#keyframes[mid]!)!.at <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found >= 0) return this.#keyframes[found]!;
    return this.#keyframes[0] ?? null;
  }

  /** The newest keyframe (for instant start), if any. */
  lastKeyframe(): number | null {
    return this.#keyframes.at(-1) ?? null;
  }

  #get(abs: number): BufferedPacket | undefined {
    const i = abs - this.#base;
    return i >= this.#head && i < this.#packets.length ? this.#packets[i] : undefined;
  }

  /** The packet at an absolute index, or undefined if evicted / not yet arrived. */
  at(abs: number): BufferedPacket | undefined {
    return this.#get(abs);
  }

  /** Absolute index one past the newest packet. */
  get end(): number {
    return this.#base + this.#packets.length;
  }

  /** Absolute index of the oldest packet. */
  get start(): number {
    return this.#base + this.#head;
  }

  /** Oldest index whose arrival is >= t. */
  indexAtOrAfter(t: number): number {
    let lo = this.start;
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#get(mid)!.at < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
