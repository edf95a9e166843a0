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
 * Off the JavaScript heap: payloads are copied into 1 MiB blocks and the
 * index lives in typed arrays, so the buffer holds a few objects per MiB
 * instead of two per packet. (It used to keep each packet as its own Buffer
 * and index object: millions of them for ten channels over ten minutes,
 * which every major garbage collection walked, on the thread that forwards
 * every packet.)
 *
 * When that exceeds `maxBytes` and a `spillDir` is given, the oldest blocks
 * move to disk (segment files, deleted as the window passes them) and only
 * their index stays in memory: memory ≤ maxBytes, disk ≈ the rest of the
 * window. Without a spill directory, or when even the index does not fit,
 * the window shrinks (oldest data first).
 */
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { MediaKind } from '../sdp/offer.ts';

export const PACKET_OVERHEAD = 96;
/** One packet's index slot: arrival (f64), length, block, offset (u32 each), flags and rank (u8 each). */
const INDEX_SLOT_BYTES = 8 + 4 + 4 + 4 + 1 + 1;

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

/** Payloads are appended to blocks of this size (a bigger packet gets a block of its own). */
const BLOCK_BYTES = 1 << 20;
const KIND_VIDEO = 1;
const KEYFRAME = 2;

interface Segment {
  fd: number;
  size: number;
  /** Spilled blocks whose payloads it still holds. */
  blocks: number;
}

/** Payloads of consecutive packets: in memory, or spilled to a segment file at `segmentOffset`. */
interface Block {
  mem: Buffer | null;
  /** Bytes appended. */
  used: number;
  /** Payload bytes of packets still in the window. */
  live: number;
  /** Absolute index of the last packet appended. */
  last: number;
  segment: Segment | null;
  segmentOffset: number;
}

let segmentCounter = 0;

export class DvrBuffer {
  // The index, one slot per packet: slot i holds the packet of absolute index #base + i; slots before #head are evicted.
  #at = new Float64Array(1024);
  #length = new Uint32Array(1024);
  /** Absolute block number and offset in it of each packet's payload. */
  #block = new Uint32Array(1024);
  #offset = new Uint32Array(1024);
  #flags = new Uint8Array(1024);
  #rank = new Uint8Array(1024);
  #count = 0;
  #head = 0;
  #base = 0; // absolute index of slot 0
  /** Indices (absolute) of top-layer video keyframe-start packets. */
  #keyframes: number[] = [];
  #keyframeHead = 0;
  /** Blocks in order; #blocks[0] has absolute block number #blockBase. */
  #blocks: Block[] = [];
  #blockBase = 0;
  /** Blocks before this (relative to #blocks) are spilled. */
  #spilledBlocks = 0;
  #segments: Segment[] = [];
  #bytes = 0;
  #diskBytes = 0;

  constructor(readonly opts: DvrBufferOptions) {}

  /** Memory used: payloads in memory + the per-packet index. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Memory it actually holds, bytes: what was written into its in-memory blocks (evicted packets' bytes too, until
   * their block goes) and the index slots used. ≤ {@link bytes}, which charges each packet a flat overhead.
   */
  get heldBytes(): number {
    let held = 0;
    for (const b of this.#blocks) if (b.mem) held += b.used;
    return held + this.#count * INDEX_SLOT_BYTES + (this.#keyframes.length - this.#keyframeHead) * 8;
  }

  /** Payload bytes spilled to disk (within the window). */
  get diskBytes(): number {
    return this.#diskBytes;
  }

  get size(): number {
    return this.#count - this.#head;
  }

  /** Arrival time of the oldest and newest packet, or null when empty. */
  range(): { start: number; end: number } | null {
    if (this.size === 0) return null;
    return { start: this.#at[this.#head]!, end: this.#at[this.#count - 1]! };
  }

  /** Stores a packet (its bytes are copied: the caller may reuse `data`). */
  push(p: BufferedPacket): void {
    const abs = this.#base + this.#count;
    const rank = p.rank ?? 0;
    const len = p.data.length;
    const blockNo = this.#append(p.data, abs);
    if (this.#count === this.#at.length) this.#makeRoom();
    const i = this.#count++;
    this.#at[i] = p.at;
    this.#length[i] = len;
    this.#block[i] = blockNo;
    this.#offset[i] = this.#blocks[blockNo - this.#blockBase]!.used - len;
    this.#flags[i] = (p.kind === 'video' ? KIND_VIDEO : 0) | (p.keyframe ? KEYFRAME : 0);
    this.#rank[i] = rank;
    if (p.keyframe && rank === 0) this.#keyframes.push(abs);
    this.#bytes += len + PACKET_OVERHEAD;
    if (this.opts.spillDir) while (this.#bytes > this.opts.maxBytes && this.#spillOne()) continue;
    this.#evict(p.at);
  }

  /** Copies a payload into the newest block (a new one when it does not fit); returns the block's absolute number. */
  #append(data: Buffer, abs: number): number {
    let block = this.#blocks.at(-1);
    if (!block || !block.mem || block.used + data.length > block.mem.length) {
      block = { mem: Buffer.allocUnsafe(Math.max(BLOCK_BYTES, data.length)), used: 0, live: 0, last: abs, segment: null, segmentOffset: 0 };
      this.#blocks.push(block);
    }
    data.copy(block.mem!, block.used);
    block.used += data.length;
    block.live += data.length;
    block.last = abs;
    return this.#blockBase + this.#blocks.length - 1;
  }

  /** Index arrays full: drop evicted slots, or grow. */
  #makeRoom(): void {
    const live = this.#count - this.#head;
    const grow = live * 2 > this.#at.length;
    const cap = grow ? this.#at.length * 2 : this.#at.length;
    const move = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const out = grow ? make(cap) : a;
      out.set(a.subarray(this.#head, this.#count), 0);
      return out;
    };
    this.#at = move(this.#at, (n) => new Float64Array(n));
    this.#length = move(this.#length, (n) => new Uint32Array(n));
    this.#block = move(this.#block, (n) => new Uint32Array(n));
    this.#offset = move(this.#offset, (n) => new Uint32Array(n));
    this.#flags = move(this.#flags, (n) => new Uint8Array(n));
    this.#rank = move(this.#rank, (n) => new Uint8Array(n));
    this.#base += this.#head;
    this.#count = live;
    this.#head = 0;
  }

  /**
   * Moves the oldest in-memory block to disk, in one write; false when none may go (the newest
   * block, and blocks holding the newest second, stay: instant start and live-edge readers touch them).
   */
  #spillOne(): boolean {
    const block = this.#blocks[this.#spilledBlocks];
    if (!block || block === this.#blocks.at(-1) || !block.mem) return false;
    const newest = this.#at[this.#count - 1]!;
    const lastSlot = block.last - this.#base;
    if (lastSlot >= this.#head && newest - this.#at[lastSlot]! < 1000) return false;
    let seg = this.#segments.at(-1);
    if (!seg || seg.size >= (this.opts.segmentBytes ?? 32 << 20)) {
      mkdirSync(this.opts.spillDir!, { recursive: true });
      const path = join(this.opts.spillDir!, `dvr-${process.pid}-${++segmentCounter}.seg`);
      const fd = openSync(path, 'w+');
      unlinkSync(path); // the open descriptor keeps it; nothing is left behind on a crash
      // segments whose blocks all left the window while they were being written to go now
      for (const old of this.#segments.filter((x) => x.blocks === 0)) closeSync(old.fd);
      this.#segments = this.#segments.filter((x) => x.blocks > 0);
      seg = { fd, size: 0, blocks: 0 };
      this.#segments.push(seg);
    }
    writeSync(seg.fd, block.mem, 0, block.used, seg.size);
    block.segment = seg;
    block.segmentOffset = seg.size;
    block.mem = null;
    seg.size += block.used;
    seg.blocks++;
    this.#spilledBlocks++;
    this.#bytes -= block.live;
    this.#diskBytes += block.live;
    return true;
  }

  #evict(now: number): void {
    while (this.#head < this.#count) {
      const i = this.#head;
      if (now - this.#at[i]! <= this.opts.windowMs && this.#bytes <= this.opts.maxBytes) break;
      const len = this.#length[i]!;
      const block = this.#blocks[this.#block[i]! - this.#blockBase]!;
      block.live -= len;
      if (block.mem) this.#bytes -= len;
      else this.#diskBytes -= len;
      this.#bytes -= PACKET_OVERHEAD;
      this.#head++;
    }
    const headAbs = this.#base + this.#head;
    // blocks whose packets all left the window go, and segments once no block is in them
    while (this.#blocks.length > 1 && this.#blocks[0]!.last < headAbs) {
      const gone = this.#blocks.shift()!;
      this.#blockBase++;
      if (this.#spilledBlocks > 0) this.#spilledBlocks--;
      const seg = gone.segment;
      if (seg && --seg.blocks === 0 && seg !== this.#segments.at(-1)) {
        closeSync(seg.fd);
        this.#segments.splice(this.#segments.indexOf(seg), 1);
      }
    }
    while (this.#keyframeHead < this.#keyframes.length && this.#keyframes[this.#keyframeHead]! < headAbs) this.#keyframeHead++;
    if (this.#keyframeHead > 1024 && this.#keyframeHead * 2 > this.#keyframes.length) {
      this.#keyframes = this.#keyframes.slice(this.#keyframeHead);
      this.#keyframeHead = 0;
    }
  }

  /** Absolute index of the last keyframe at or before time `t` (or the first keyframe after the window start). */
  keyframeAtOrBefore(t: number): number | null {
    let lo = this.#keyframeHead;
    let hi = this.#keyframes.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#at[this.#keyframes[mid]! - this.#base]! <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found >= 0) return this.#keyframes[found]!;
    return this.#keyframes[this.#keyframeHead] ?? null;
  }

  /** The newest keyframe (for instant start), if any. */
  lastKeyframe(): number | null {
    return this.#keyframes.length > this.#keyframeHead ? this.#keyframes.at(-1)! : null;
  }

  /** The slot of an absolute index, or -1 if evicted / not yet arrived. */
  #slot(abs: number): number {
    const i = abs - this.#base;
    return i >= this.#head && i < this.#count ? i : -1;
  }

  /** Arrival time of the packet at an absolute index (no copy, no object), or NaN if evicted / not yet arrived. */
  arrivalAt(abs: number): number {
    const i = this.#slot(abs);
    return i < 0 ? NaN : this.#at[i]!;
  }

  /** The packet at an absolute index (read back from disk if spilled), or undefined if evicted / not yet arrived. */
  at(abs: number): BufferedPacket | undefined {
    const i = this.#slot(abs);
    if (i < 0) return undefined;
    const len = this.#length[i]!;
    const off = this.#offset[i]!;
    const block = this.#blocks[this.#block[i]! - this.#blockBase]!;
    let data: Buffer;
    if (block.mem) data = block.mem.subarray(off, off + len);
    else {
      data = Buffer.allocUnsafe(len);
      readSync(block.segment!.fd, data, 0, len, block.segmentOffset + off);
    }
    const flags = this.#flags[i]!;
    return {
      at: this.#at[i]!,
      kind: flags & KIND_VIDEO ? 'video' : 'audio',
      keyframe: (flags & KEYFRAME) !== 0,
      rank: this.#rank[i]!,
      data,
    };
  }

  /** Frees the spill files. */
  close(): void {
    for (const seg of this.#segments.splice(0)) closeSync(seg.fd);
  }

  /** Absolute index one past the newest packet. */
  get end(): number {
    return this.#base + this.#count;
  }

  /** Absolute index of the oldest packet. */
  get start(): number {
    return this.#base + this.#head;
  }

  /** Oldest index whose arrival is >= t. */
  indexAtOrAfter(t: number): number {
    let lo = this.#head;
    let hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#at[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return this.#base + lo;
  }
}
