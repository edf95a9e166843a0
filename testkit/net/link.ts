/**
 * One direction of an impaired network link, as a packet scheduler: it decides
 * for each datagram whether it is lost and when it comes out. Loss is random
 * and/or bursty (Gilbert–Elliott); a bandwidth cap is a token bucket feeding a
 * bounded FIFO queue (drop-tail beyond it); after the bottleneck each packet
 * gets a fixed delay plus uniform jitter, which reorders packets by at most
 * twice the jitter unless `inOrder` is set. Pure (clock and randomness are
 * injected), so its statistics are unit-testable; `UdpRelay` runs it on sockets.
 */

/** Gilbert–Elliott two-state loss: a Good and a Bad state with their own loss rates. */
export interface BurstLoss {
  /** Probability, per packet, of moving from Good to Bad. */
  pGoodToBad: number;
  /** Probability, per packet, of moving from Bad back to Good (mean burst = 1 / pBadToGood packets). */
  pBadToGood: number;
  /** Loss probability in the Bad state (default 1). */
  lossInBad?: number;
  /** Loss probability in the Good state (default 0). */
  lossInGood?: number;
}

export interface LinkImpairment {
  /** Random (independent) loss probability per packet, 0–1. */
  loss?: number;
  /** Bursty loss, applied as well as `loss`. */
  burst?: BurstLoss;
  /** One-way delay added to every packet, ms. */
  delayMs?: number;
  /** Each packet's delay varies uniformly within ± this, ms (never below zero extra delay). */
  jitterMs?: number;
  /** Keep packets in order despite jitter (a packet never overtakes an earlier one). */
  inOrder?: boolean;
  /** Bandwidth cap, kbit/s (payload bytes of the datagrams); unset = unlimited. */
  kbps?: number;
  /** Bytes the bottleneck queue holds before it drops arriving packets (default: 100 ms at `kbps`, at least 3 kB). */
  queueBytes?: number;
  /** Token bucket depth, bytes: how much may pass at once after an idle spell (default 1500). */
  burstBytes?: number;
}

export interface LinkCounters {
  /** Datagrams that entered the link. */
  packets: number;
  bytes: number;
  /** Lost to random or bursty loss. */
  lost: number;
  /** Dropped because the bottleneck queue was full. */
  queueDropped: number;
  /** Passed the link (came out, or will when its delay is over). */
  passed: number;
  passedBytes: number;
  /** Largest queue occupancy seen, bytes. */
  maxQueueBytes: number;
}

export const emptyCounters = (): LinkCounters => ({
  packets: 0,
  bytes: 0,
  lost: 0,
  queueDropped: 0,
  passed: 0,
  passedBytes: 0,
  maxQueueBytes: 0,
});

export class LinkScheduler {
  readonly counters = emptyCounters();
  #imp: LinkImpairment = {};
  #bad = false;
  #tokens = 0;
  #tokensAt = 0;
  #lastDeparture = 0;
  /** Departure times and sizes of packets still in the bottleneck queue. */
  #queue: { at: number; size: number }[] = [];
  #queued = 0;
  #lastDelivery = 0;

  constructor(
    impairment: LinkImpairment = {},
    private readonly random: () => number = Math.random,
  ) {
    this.set(impairment);
  }

  get impairment(): LinkImpairment {
    return this.#imp;
  }

  /** Changes the impairment from now on (e.g. lifts a cap); packets already scheduled keep their times. */
  set(impairment: LinkImpairment): void {
    for (const [k, v] of Object.entries(impairment)) {
      if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) throw new Error(`impairment ${k} must be a non-negative number`);
    }
    if ((impairment.loss ?? 0) > 1) throw new Error('loss is a probability (0–1)');
    if (impairment.kbps === 0) throw new Error('kbps must be > 0 (leave it unset for no cap)');
    this.#imp = { ...impairment };
    this.#tokens = this.#bucket();
  }

  #bucket(): number {
    return this.#imp.burstBytes ?? 1500;
  }

  #queueLimit(): number {
    const kbps = this.#imp.kbps;
    if (this.#imp.queueBytes !== undefined) return this.#imp.queueBytes;
    return kbps ? Math.max(3000, (kbps * 1000) / 8 / 10) : Infinity;
  }

  #lostNow(): boolean {
    const b = this.#imp.burst;
    let lost = false;
    if (b) {
      this.#bad = this.#bad ? this.random() >= b.pBadToGood : this.random() < b.pGoodToBad;
      const p = this.#bad ? (b.lossInBad ?? 1) : (b.lossInGood ?? 0);
      if (this.random() < p) lost = true;
    }
    if (this.random() < (this.#imp.loss ?? 0)) lost = true;
    return lost;
  }

  /**
   * A datagram of `size` bytes enters the link at time `now` (ms): returns the
   * time it comes out, or null when the link drops it.
   */
  admit(size: number, now: number): number | null {
    const c = this.counters;
    c.packets++;
    c.bytes += size;
    if (this.#lostNow()) {
      c.lost++;
      return null;
    }
    let departure = now;
    const kbps = this.#imp.kbps;
    if (kbps) {
      while (this.#queue.length && this.#queue[0]!.at <= now) this.#queued -= this.#queue.shift()!.size;
      if (this.#queued + size > this.#queueLimit()) {
        c.queueDropped++;
        return null;
      }
      const rate = (kbps * 1000) / 8 / 1000; // bytes per ms
      const t = Math.max(now, this.#lastDeparture);
      const tokens = Math.min(this.#bucket(), this.#tokens + rate * (t - this.#tokensAt));
      departure = tokens >= size ? t : t + (size - tokens) / rate;
      this.#tokens = tokens + rate * (departure - t) - size;
      this.#tokensAt = departure;
      this.#lastDeparture = departure;
      this.#queue.push({ at: departure, size });
      this.#queued += size;
      c.maxQueueBytes = Math.max(c.maxQueueBytes, this.#queued);
    }
    const jitter = this.#imp.jitterMs ?? 0;
    const extra = (this.#imp.delayMs ?? 0) + (jitter ? (this.random() * 2 - 1) * jitter : 0);
    let delivery = departure + Math.max(0, extra);
    if (this.#imp.inOrder) delivery = Math.max(delivery, this.#lastDelivery);
    this.#lastDelivery = Math.max(this.#lastDelivery, delivery);
    c.passed++;
    c.passedBytes += size;
    return delivery;
  }
}

/** A seeded random source (mulberry32), for reproducible impairments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
