/**
 * A channel's time-shift buffer: every packet of the program (audio and
 * video) kept with its arrival time, video keyframes indexed, for a window
 * of `windowMs`, bounded by `maxBytes`. Survives publisher changes: the
 * program stream is continuous, a publisher gap is just a gap in time.
 *
 * Memory: bytes ≈ Σ(packet sizes) + PACKET_OVERHEAD × packets
 *       ≈ (bitrate / 8) × window + 96 B × packets/s × window.
 * At 3 Mbit/s + Opus (≈ 330 packets/s) a 30-minute window is ≈ 675 MB + 57 MB.
 *
 * When that exceeds `maxBytes` and a `spillDir` is given, the oldest payloads
 * move to disk (segment files, deleted as the window passes them) and only
 * their index stays in memory: memory ≤ maxBytes, disk ≈ the rest of the
 * window. Without a spill directory, or when even the index does not fit,
 * the window shrinks (oldest data first).
 */
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { MediaKind } from '../sdp/offer.ts';

export const PACKET_OVERHEAD = 96;

export interface BufferedPacket {
  at: number;
  kind: MediaKind;
  /** Starts a keyframe of its layer. */
  keyframe: boolean;
  /** Its simulcast layer counted from the top (0 = best; absent = 0). Only top-layer keyframes are indexed. */
  rank?: number;
  data: Buffer;
}

export interface DvrBufferOptions {
  windowMs: number;
  maxBytes: number;
  /** Directory for spilled payloads; none = the window shrinks to fit `maxBytes`. */
  spillDir?: string;
  /** Size of one spill segment file (default 32 MiB). */
  segmentBytes?: number;
}

interface Entry {
  at: number;
  kind: MediaKind;
  keyframe: boolean;
  rank: number;
  /** In memory, or null once spilled to `segment` at `offset`. */
  data: Buffer | null;
  length: number;
  segment?: Segment;
  offset?: number;
}

interface Segment {
  fd: number;
  size: number;
  /** Absolute index of the last packet written to it. */
  last: number;
}

let segmentCounter = 0;

export class DvrBuffer {
  /** Packets in arrival order; `#head` is the index of the oldest live entry (slots before it are emptied until compacted). */
  #packets: (Entry | undefined)[] = [];
  #head = 0;
  /** Indices (absolute, see #base) of video keyframe-start packets. */
  #keyframes: number[] = [];
  #base = 0; // absolute index of #packets[0]
  #bytes = 0;
  /** Absolute index of the oldest packet still in memory (everything before it is on disk). */
  #spilled = 0;
  #segments: Segment[] = [];
  #diskBytes = 0;

  constructor(readonly opts: DvrBufferOptions) {}

  /** Memory used: payloads in memory + the per-packet index. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Payload bytes spilled to disk (within the window). */
  get diskBytes(): number {
    return this.#diskBytes;
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
    const rank = p.rank ?? 0;
    this.#packets.push({ at: p.at, kind: p.kind, keyframe: p.keyframe, rank, data: p.data, length: p.data.length });
    if (p.keyframe && rank === 0) this.#keyframes.push(abs);
    this.#bytes += p.data.length + PACKET_OVERHEAD;
    if (this.#bytes > this.opts.maxBytes && this.opts.spillDir) this.#spill();
    this.#evict(p.at);
  }

  /** Moves the oldest in-memory payloads to disk, in one write, until memory is 10% under budget. */
  #spill(): void {
    const target = this.opts.maxBytes * 0.9;
    const from = Math.max(this.#spilled, this.start);
    const chunks: Buffer[] = [];
    let abs = from;
    let freed = 0;
    // keep the newest second in memory: instant start and live-edge readers touch it constantly
    const keepAfter = this.#packets[this.#packets.length - 1]!.at - 1000;
    while (abs < this.end && this.#bytes - freed > target) {
      const e = this.#get(abs)!;
      if (e.at > keepAfter) break;
      chunks.push(e.data!);
      freed += e.length;
      abs++;
    }
    if (!chunks.length) return;
    let seg = this.#segments.at(-1);
    if (!seg || seg.size >= (this.opts.segmentBytes ?? 32 << 20)) {
      mkdirSync(this.opts.spillDir!, { recursive: true });
      const path = join(this.opts.spillDir!, `dvr-${process.pid}-${++segmentCounter}.seg`);
      const fd = openSync(path, 'w+');
      unlinkSync(path); // the open descriptor keeps it; nothing is left behind on a crash
      seg = { fd, size: 0, last: from };
      this.#segments.push(seg);
    }
    const block = Buffer.concat(chunks);
    writeSync(seg.fd, block, 0, block.length, seg.size);
    let offset = seg.size;
    for (let i = from; i < abs; i++) {
      const e = this.#get(i)!;
      e.segment = seg;
      e.offset = offset;
      offset += e.length;
      e.data = null;
    }
    seg.size = offset;
    seg.last = abs - 1;
    this.#spilled = abs;
    this.#bytes -= freed;
    this.#diskBytes += freed;
  }

  #evict(now: number): void {
    while (this.size > 0) {
      const oldest = this.#packets[this.#head]!;
      if (now - oldest.at <= this.opts.windowMs && this.#bytes <= this.opts.maxBytes) break;
      if (oldest.data) this.#bytes -= oldest.length;
      else this.#diskBytes -= oldest.length;
      this.#bytes -= PACKET_OVERHEAD;
      this.#packets[this.#head] = undefined;
      this.#head++;
    }
    const headAbs = this.#base + this.#head;
    while (this.#segments.length && this.#segments[0]!.last < headAbs && this.#segments[0] !== this.#segments.at(-1)) {
      closeSync(this.#segments.shift()!.fd);
    }
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

  #get(abs: number): Entry | undefined {
    const i = abs - this.#base;
    return i >= this.#head && i < this.#packets.length ? this.#packets[i] : undefined;
  }

  /** The packet at an absolute index (read back from disk if spilled), or undefined if evicted / not yet arrived. */
  at(abs: number): BufferedPacket | undefined {
    const e = this.#get(abs);
    if (!e) return undefined;
    if (e.data) return { at: e.at, kind: e.kind, keyframe: e.keyframe, rank: e.rank, data: e.data };
    const data = Buffer.allocUnsafe(e.length);
    readSync(e.segment!.fd, data, 0, e.length, e.offset!);
    return { at: e.at, kind: e.kind, keyframe: e.keyframe, rank: e.rank, data };
  }

  /** Frees the spill files. */
  close(): void {
    for (const seg of this.#segments.splice(0)) closeSync(seg.fd);
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
