/**
 * RTP reading for depacketizers: the header fields they need, and a small
 * reorder buffer so a retransmitted (NACKed) packet that arrives late still
 * completes its frame instead of counting as lost.
 */

export interface RtpView {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: Uint8Array;
}

/** Parses the fixed header, CSRCs, extension and padding; null for anything that is not RTP. */
export function parseRtpHeader(p: Uint8Array): RtpView | null {
  if (p.length < 12 || p[0]! >> 6 !== 2) return null;
  let off = 12 + (p[0]! & 0x0f) * 4;
  if (p[0]! & 0x10) {
    if (p.length < off + 4) return null;
    off += 4 + ((p[off + 2]! << 8) | p[off + 3]!) * 4;
  }
  let end = p.length;
  if (p[0]! & 0x20) end -= p[p.length - 1]!;
  if (off > end) return null;
  return {
    sequenceNumber: (p[2]! << 8) | p[3]!,
    timestamp: ((p[4]! << 24) | (p[5]! << 16) | (p[6]! << 8) | p[7]!) >>> 0,
    marker: (p[1]! & 0x80) !== 0,
    payload: p.subarray(off, end),
  };
}

export interface ReorderOptions {
  /** How long (by arrival time) a sequence gap may stay open before the missing packets count as lost. */
  maxWaitMs?: number;
  /** Packets held at most while a gap is open. */
  maxHeld?: number;
}

export interface OrderedPacket {
  rtp: RtpView;
  arrivalMs: number;
  /** Packets lost just before this one (0 when contiguous). */
  lostBefore: number;
}

/**
 * Releases packets in sequence order. A gap is waited for up to `maxWaitMs`
 * (measured on later packets' arrival times) or `maxHeld` packets, then skipped
 * and reported through `lostBefore`. Duplicates and packets older than what
 * was released are discarded.
 */
export class ReorderBuffer {
  readonly #maxWaitMs: number;
  readonly #maxHeld: number;
  /** Extended sequence number expected next, or null before the first packet. */
  #next: number | null = null;
  #held = new Map<number, { rtp: RtpView; arrivalMs: number }>();
  #gapSinceMs = 0;

  constructor(opts: ReorderOptions = {}) {
    this.#maxWaitMs = opts.maxWaitMs ?? 250;
    this.#maxHeld = opts.maxHeld ?? 1024;
  }

  push(rtp: RtpView, arrivalMs: number): OrderedPacket[] {
    if (this.#next === null) {
      this.#next = rtp.sequenceNumber;
    }
    // extend the 16-bit number to the one nearest to what we expect
    const delta = ((rtp.sequenceNumber - this.#next + 0x8000) & 0xffff) - 0x8000;
    const ext = this.#next + delta;
    if (ext < this.#next || this.#held.has(ext)) return []; // late duplicate or already given up on
    if (this.#held.size === 0 && ext !== this.#next) this.#gapSinceMs = arrivalMs;
    this.#held.set(ext, { rtp, arrivalMs });
    const out: OrderedPacket[] = [];
    this.#drain(out);
    while (this.#held.size > 0 && (arrivalMs - this.#gapSinceMs > this.#maxWaitMs || this.#held.size > this.#maxHeld)) {
      const first = Math.min(...this.#held.keys());
      const lost = first - this.#next;
      this.#next = first;
      this.#drain(out, lost);
      this.#gapSinceMs = arrivalMs;
    }
    return out;
  }

  #drain(out: OrderedPacket[], lostBefore = 0): void {
    for (let p = this.#held.get(this.#next!); p; p = this.#held.get(this.#next!)) {
      this.#held.delete(this.#next!);
      out.push({ rtp: p.rtp, arrivalMs: p.arrivalMs, lostBefore });
      lostBefore = 0;
      this.#next! += 1;
    }
  }
}
