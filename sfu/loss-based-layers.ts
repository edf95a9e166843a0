/**
 * Picks a simulcast layer for a viewer that mediasoup cannot estimate the
 * bandwidth of: a WHEP player whose offer numbers the transport-wide-cc
 * header extension differently from the router (Chromium's always do; the
 * answer cannot renumber it: Chromium refuses "RTP extension ID reassignment").
 * Its consumer then has no bandwidth estimate and would stay on the top layer
 * however weak the link. Instead, this reads the loss the player reports
 * (RTCP receiver reports) once a second, like the loss half of Google's
 * congestion control: above `highLoss` it steps a layer down, and after a
 * quiet spell below `lowLoss` it tries one up; an attempt that brings the
 * loss back steps down again and doubles the wait before the next.
 */
import type { types } from 'mediasoup';

/** What it needs of a mediasoup simulcast consumer. */
export interface SteeredConsumer {
  readonly closed: boolean;
  readonly paused: boolean;
  readonly currentLayers?: types.ConsumerLayers;
  /** Its send stats: `outbound-rtp` carries the loss of the player's last receiver report (0–255). */
  getStats(): Promise<readonly { type: string; fractionLost?: number }[]>;
  setPreferredLayers(layers: types.ConsumerLayers): Promise<void>;
}

export interface LossBasedLayersOptions {
  /** The viewer's simulcast video consumer (steered through its preferred layers). */
  consumer: SteeredConsumer;
  /** The number of spatial layers the program has now. */
  layers: () => number;
  /** How often the consumer's stats are read, ms (default 1000; a receiver report comes about once a second). */
  intervalMs?: number;
  /** Loss (0–1) in a receiver report that steps a layer down (default 0.1). */
  highLoss?: number;
  /** Loss (0–1) below which the link counts as quiet (default 0.02). */
  lowLoss?: number;
  /** Quiet time before trying the layer above, ms (default 30 000); doubled after each failed try, up to `maxProbeAfterMs`. */
  probeAfterMs?: number;
  /** Longest wait between tries, ms (default 240 000). */
  maxProbeAfterMs?: number;
  /** After mediasoup reached a lower layer, the loss must stay high this long before the next step down, ms (default 2000: the link's queue drains). */
  settleMs?: number;
  /** A try that sees high loss within this many ms of reaching its layer failed (default 6000). */
  probeWatchMs?: number;
  now?: () => number;
}

export class LossBasedLayers {
  readonly #opts: Required<Omit<LossBasedLayersOptions, 'consumer' | 'layers' | 'now'>>;
  readonly #consumer: SteeredConsumer;
  readonly #layers: () => number;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;
  /** The layer asked for (null until the first reading). */
  #wanted: number | null = null;
  #quietSince: number;
  #probeAfterMs: number;
  /** When mediasoup reached the layer asked for (null: not yet). */
  #reachedAt: number | null = null;
  /** A try up: when it reached its layer (null while mediasoup has not switched yet). */
  #probe: { layer: number; reachedAt: number | null } | null = null;
  #reading = false;
  #closed = false;
  /** Layer changes made so far (tests, logs). */
  steps = { down: 0, up: 0 };

  constructor(opts: LossBasedLayersOptions) {
    this.#consumer = opts.consumer;
    this.#layers = opts.layers;
    this.#now = opts.now ?? Date.now;
    this.#opts = {
      intervalMs: opts.intervalMs ?? 1000,
      highLoss: opts.highLoss ?? 0.1,
      lowLoss: opts.lowLoss ?? 0.02,
      probeAfterMs: opts.probeAfterMs ?? 30_000,
      maxProbeAfterMs: opts.maxProbeAfterMs ?? 240_000,
      settleMs: opts.settleMs ?? 2000,
      probeWatchMs: opts.probeWatchMs ?? 6000,
    };
    this.#probeAfterMs = this.#opts.probeAfterMs;
    this.#quietSince = this.#now();
    this.#timer = setInterval(() => void this.#tick(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** The layer it asks mediasoup for (null before the first reading). */
  get wanted(): number | null {
    return this.#wanted;
  }

  /** Stops steering (the consumer keeps its last preferred layer). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#consumer.closed) this.close();
    if (this.#closed || this.#reading || this.#consumer.paused) return;
    this.#reading = true;
    try {
      const stats = await this.#consumer.getStats();
      const sent = stats.find((s) => s.type === 'outbound-rtp');
      if (!sent || this.#closed) return;
      this.#onLoss((sent.fractionLost ?? 0) / 256);
    } catch {
      // closed meanwhile
    } finally {
      this.#reading = false;
    }
  }

  /** One receiver report's loss. */
  #onLoss(loss: number): void {
    const top = Math.max(0, this.#layers() - 1);
    const now = this.#now();
    const current = this.#consumer.currentLayers?.spatialLayer ?? null;
    const wanted = Math.min(this.#wanted ?? top, top);
    const probe = this.#probe;
    if (probe && probe.reachedAt === null && current === probe.layer) probe.reachedAt = now;
    if (this.#reachedAt === null && current === wanted) this.#reachedAt = now;
    if (loss > this.#opts.highLoss) {
      this.#quietSince = now;
      // a step down takes effect at the lower layer's next keyframe, and the link's queue then drains: not another before
      if (current !== null && current > wanted) return;
      if (!probe && this.#wanted !== null && (this.#reachedAt === null || now - this.#reachedAt < this.#opts.settleMs)) return;
      if (probe) {
        this.#probeAfterMs = Math.min(this.#probeAfterMs * 2, this.#opts.maxProbeAfterMs);
        this.#probe = null;
      }
      if (wanted > 0) this.#set(wanted - 1, 'down');
      return;
    }
    if (loss >= this.#opts.lowLoss) {
      this.#quietSince = now;
      return;
    }
    if (probe?.reachedAt != null && now - probe.reachedAt >= this.#opts.probeWatchMs) {
      this.#probe = null; // the layer holds: the next try waits the base time again
      this.#probeAfterMs = this.#opts.probeAfterMs;
    }
    if (wanted < top && !this.#probe && now - this.#quietSince >= this.#probeAfterMs) {
      this.#probe = { layer: wanted + 1, reachedAt: null };
      this.#quietSince = now;
      this.#set(wanted + 1, 'up');
    } else if (this.#wanted === null) this.#set(wanted, null);
  }

  #set(spatialLayer: number, step: 'up' | 'down' | null): void {
    if (spatialLayer !== this.#wanted) this.#reachedAt = null;
    this.#wanted = spatialLayer;
    if (step) this.steps[step]++;
    void this.#consumer.setPreferredLayers({ spatialLayer }).catch(() => {}); // closed meanwhile
  }
}
