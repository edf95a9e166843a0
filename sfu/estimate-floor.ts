/**
 * A floor under a viewer transport's bandwidth estimate while it starts on a live simulcast program.
 *
 * mediasoup forwards no layer of a simulcast consumer while its transport's estimate is below the lowest layer,
 * and the estimate starts where the transport was made: at 600 kbit/s for a viewer whose transport was made
 * before the channel went live (a waiting room) or before its layers' rates were measured (just after go-live).
 * OBS's 3-layer 720p ladder's lowest layer is ~950 kbit/s on the wire, so such a viewer got no video until its
 * estimate climbed (seconds), or none at all if its first probe failed.
 *
 * `setMinOutgoingBitrate(x)` raises the estimate to at least x at once (the consumers are re-laid within
 * milliseconds). The floor is lifted as soon as the viewer's own feedback carries the estimate above it, or
 * after `holdMs`: a viewer whose link cannot carry the lowest layer is not forced to take it for long.
 */
import type { types } from 'mediasoup';

/** The estimate this far over the floor is the viewer's own (the floor no longer holds it up). */
const OWN_ESTIMATE_MARGIN = 1.25;

export interface EstimateFloorOptions {
  /** The estimate to hold the transport at (bits/s), read again while it holds (a layer's rate is measured over a second); undefined: no floor. */
  target: () => Promise<number | undefined>;
  /** False when no floor is needed (a single-layer program is forwarded whatever the estimate). */
  wanted: () => boolean;
  /** How long a hold lasts at most, ms. */
  holdMs: number;
  /** How often the target and the transport's estimate are read while holding, ms. */
  checkMs: number;
}

export class EstimateFloor {
  readonly #transport: types.WebRtcTransport;
  readonly #opts: EstimateFloorOptions;
  /** The floor set on the transport, bits/s (0: none). */
  #floor = 0;
  #until = 0;
  #timer: NodeJS.Timeout | null = null;
  #checking = false;
  #closed = false;
  /** Floors set, ever (tests). */
  holds = 0;

  constructor(transport: types.WebRtcTransport, opts: EstimateFloorOptions) {
    this.#transport = transport;
    this.#opts = opts;
  }

  /** The floor under the estimate now, bits/s (0: none). */
  get floor(): number {
    return this.#floor;
  }

  /** The viewer starts on a live program: holds its estimate up to the target (if it is below) for up to `holdMs`. */
  hold(): void {
    if (this.#closed) return;
    this.#until = performance.now() + this.#opts.holdMs;
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#check(), this.#opts.checkMs);
      this.#timer.unref();
    }
    void this.#check();
  }

  /** Stops holding (the transport closes with its viewer). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      if (this.#closed || this.#transport.closed) return this.close();
      if (performance.now() >= this.#until) return await this.#lift();
      // nothing to hold up: no stats to read (every 250 ms for 4 s, a worker request each, per joining viewer)
      if (this.#floor === 0 && !this.#opts.wanted()) return this.#stop();
      const [target, stats] = await Promise.all([this.#opts.target(), this.#transport.getStats()]);
      if (this.#closed || this.#transport.closed) return;
      const estimate = stats[0]?.availableOutgoingBitrate ?? 0;
      if (this.#floor > 0 && estimate > this.#floor * OWN_ESTIMATE_MARGIN) return await this.#lift();
      // its estimate is enough already (a transport made while the channel was live): nothing to hold
      if (this.#floor === 0 && target !== undefined && estimate >= target) return this.#stop();
      if (target !== undefined && target > this.#floor && estimate < target) {
        await this.#transport.setMinOutgoingBitrate(target);
        this.#floor = target;
        this.holds++;
      }
    } catch {
      // the transport closed meanwhile
    } finally {
      this.#checking = false;
    }
  }

  async #lift(): Promise<void> {
    this.#stop();
    if (this.#floor === 0) return;
    this.#floor = 0;
    if (!this.#transport.closed) await this.#transport.setMinOutgoingBitrate(0);
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
