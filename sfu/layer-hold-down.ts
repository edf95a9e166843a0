/**
 * Keeps a socket viewer in Auto quality from flapping between two simulcast
 * layers. mediasoup moves a simulcast consumer to the best layer its bandwidth
 * estimate allows; on a link whose capacity sits just above a layer (a
 * 1 Mbit/s cap under a 640×360 layer) the estimate probes up, the layer's
 * keyframes overfill the link's queue, the estimate falls and the viewer drops
 * back — every few seconds, each switch a new keyframe and a visible change of
 * picture (and under CPU load the overshoot can take the estimate below every
 * layer: no video for seconds). After the estimate drops a viewer from a layer,
 * this holds it below that layer (its consumer's preferred layers) for
 * `holdMs`; a layer that fails again within `resetAfterMs` of being reached is
 * held twice as long (up to `maxHoldMs`), one that held that long starts again
 * from `holdMs`. A genuine recovery is not held back: mediasoup keeps probing
 * for the top layer's bitrate whatever the preferred layers, so once the
 * estimate stays well above the held layer's bitrate (`headroom`,
 * `topHeadroom`) the hold ends at once.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';

/** What it needs of a mediasoup simulcast consumer. */
export interface HeldConsumer {
  readonly closed: boolean;
  readonly currentLayers?: types.ConsumerLayers;
  on(event: 'layerschange', listener: (layers?: types.ConsumerLayers) => void): unknown;
  off(event: 'layerschange', listener: (layers?: types.ConsumerLayers) => void): unknown;
}

export interface LayerHoldDownOptions {
  /** Applies a ceiling (the highest spatial layer allowed; null: none) to the viewer's consumers. */
  apply: (ceiling: number | null) => void;
  /** The viewer's bandwidth estimate, bits/s (its transport's `availableOutgoingBitrate`; 0 when unknown). */
  estimate: () => Promise<number>;
  /** The bitrate of each spatial layer, lowest first, bits/s (0 when not fed). */
  layerBitrates: () => Promise<number[]>;
  /** The first hold below a layer that failed, ms (default 30 000). */
  holdMs?: number;
  /** The longest hold, ms (default 120 000). */
  maxHoldMs?: number;
  /** A layer that stays this long after being reached counts as holding: its next failure is held `holdMs` again (default 60 000). */
  resetAfterMs?: number;
  /**
   * The estimate, as a multiple of the held layer's bitrate, that ends a hold early (default 2), or `topHeadroom` ×
   * the top layer's bitrate if that is less: mediasoup probes only up to about the top layer's bitrate, so a lifted
   * cap shows ~1.3× it, never twice (measured: 3.2–3.4 Mbit/s over a 2.5 Mbit/s top layer).
   */
  headroom?: number;
  /** See `headroom` (default 1.2). */
  topHeadroom?: number;
  /** How many readings in a row (one a second) the estimate must show that headroom (default 3). */
  headroomReadings?: number;
  /** How often the estimate is read while holding, ms (default 1000). */
  intervalMs?: number;
  now?: () => number;
}

export interface LayerHoldDownEvents {
  /** A hold began: the viewer stays at or below `ceiling` for `ms`. */
  hold: [ceiling: number, ms: number];
  /** A hold ended: `recovered` when the estimate showed the held layer fits (not its time running out). */
  release: [recovered: boolean];
}

export class LayerHoldDown extends EventEmitter<LayerHoldDownEvents> {
  readonly #opts: Required<Omit<LayerHoldDownOptions, 'apply' | 'estimate' | 'layerBitrates' | 'now'>>;
  readonly #apply: (ceiling: number | null) => void;
  readonly #estimate: () => Promise<number>;
  readonly #layerBitrates: () => Promise<number[]>;
  readonly #now: () => number;
  #consumer: HeldConsumer | null = null;
  #listener: ((layers?: types.ConsumerLayers) => void) | null = null;
  /** The spatial layer the followed consumer was last on (null: none yet). */
  #last: number | null = null;
  /** When each layer was last reached. */
  readonly #reachedAt = new Map<number, number>();
  /** The hold each layer gets when it fails next, ms. */
  readonly #holdFor = new Map<number, number>();
  #ceiling: number | null = null;
  #until = 0;
  #fits = 0;
  #timer: NodeJS.Timeout | null = null;
  #reading = false;
  #enabled = true;
  #closed = false;
  /** Holds begun so far (tests, logs). */
  holds = 0;

  constructor(opts: LayerHoldDownOptions) {
    super();
    this.#apply = opts.apply;
    this.#estimate = opts.estimate;
    this.#layerBitrates = opts.layerBitrates;
    this.#now = opts.now ?? Date.now;
    this.#opts = {
      holdMs: opts.holdMs ?? 30_000,
      maxHoldMs: opts.maxHoldMs ?? 120_000,
      resetAfterMs: opts.resetAfterMs ?? 60_000,
      headroom: opts.headroom ?? 2,
      topHeadroom: opts.topHeadroom ?? 1.2,
      headroomReadings: opts.headroomReadings ?? 3,
      intervalMs: opts.intervalMs ?? 1000,
    };
  }

  /** The highest spatial layer allowed now (null: no hold). */
  get ceiling(): number | null {
    return this.#enabled ? this.#ceiling : null;
  }

  /**
   * On (Auto) or off (the viewer chose a layer: it gets that one, no hold). Turning it off ends a hold; the
   * layers' failure history stays.
   */
  set enabled(on: boolean) {
    if (on === this.#enabled) return;
    this.#enabled = on;
    if (!on) this.#release(false, false);
  }

  /** Follows the layer changes of the viewer's current video consumer (a new one replaces the one followed). */
  follow(consumer: HeldConsumer): void {
    if (this.#closed || consumer === this.#consumer) return;
    this.#unfollow();
    this.#consumer = consumer;
    this.#last = consumer.currentLayers?.spatialLayer ?? null;
    const listener = (layers?: types.ConsumerLayers) => this.#onLayers(layers?.spatialLayer ?? null);
    this.#listener = listener;
    consumer.on('layerschange', listener);
  }

  /** Stops holding and following. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unfollow();
    this.#stopTimer();
  }

  #unfollow(): void {
    if (this.#consumer && this.#listener) this.#consumer.off('layerschange', this.#listener);
    this.#consumer = null;
    this.#listener = null;
  }

  #onLayers(layer: number | null): void {
    const last = this.#last;
    this.#last = layer;
    if (layer === null || this.#closed) return; // no layer (paused, or the estimate is below the lowest one)
    const now = this.#now();
    if (last === null || layer > last) {
      this.#reachedAt.set(layer, now);
      return;
    }
    // a drop this hold made (its ceiling below where the viewer was) is no failure
    if (layer === last || !this.#enabled || (this.#ceiling !== null && last > this.#ceiling)) return;
    const reached = this.#reachedAt.get(last);
    const before = this.#holdFor.get(last);
    const ms =
      before !== undefined && reached !== undefined && now - reached < this.#opts.resetAfterMs
        ? Math.min(before * 2, this.#opts.maxHoldMs)
        : this.#opts.holdMs;
    this.#holdFor.set(last, ms);
    this.#ceiling = Math.min(this.#ceiling ?? last - 1, last - 1);
    this.#until = Math.max(this.#until, now + ms);
    this.#fits = 0;
    this.holds++;
    this.#apply(this.#ceiling);
    this.emit('hold', this.#ceiling, ms);
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#tick(), this.#opts.intervalMs);
      this.#timer.unref();
    }
  }

  async #tick(): Promise<void> {
    if (this.#consumer?.closed) this.#unfollow();
    if (this.#ceiling === null || this.#reading) return;
    if (this.#now() >= this.#until) return this.#release(false);
    this.#reading = true;
    try {
      const [estimate, bitrates] = await Promise.all([this.#estimate(), this.#layerBitrates()]);
      const held = this.#ceiling === null ? 0 : (bitrates[this.#ceiling + 1] ?? 0);
      const needed = Math.min(this.#opts.headroom * held, this.#opts.topHeadroom * (bitrates.at(-1) ?? 0));
      this.#fits = held > 0 && needed > 0 && estimate >= needed ? this.#fits + 1 : 0;
      if (this.#fits >= this.#opts.headroomReadings) this.#release(true);
    } catch {
      // closed meanwhile
    } finally {
      this.#reading = false;
    }
  }

  #release(recovered: boolean, apply = true): void {
    this.#stopTimer();
    if (this.#ceiling === null) return;
    this.#ceiling = null;
    this.#until = 0;
    if (apply) this.#apply(null);
    this.emit('release', recovered);
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
