/**
 * When to serve one live viewer from the GOP cache after it lost a keyframe.
 * The viewer's browser asks for a keyframe (PLI/FIR) when it cannot decode;
 * the request goes on to the publisher, but OBS ignores it and its next
 * keyframe may be 2–10 s away. If no keyframe reaches the program within
 * `answerWithinMs` of the request, the viewer is caught up from the cached
 * GOP instead (`recover`: the instant-start path). Bounded: one recovery at a
 * time, at most one per `intervalMs` per viewer, and never more than one
 * pending request — a viewer that keeps asking costs one timer.
 */

export interface KeyframeRecoveryOptions {
  /** At most one recovery per this many ms (from its start); 0: never recover. */
  intervalMs: number;
  /** How long the publisher has to answer a keyframe request before the viewer is served from the cache (default 500 ms). */
  answerWithinMs?: number;
  /** Serves the viewer from the GOP cache. Resolves when the recovery started (or could not). */
  recover: () => Promise<void>;
  now?: () => number;
}

/** Time a publisher that honours keyframe requests (a browser, GStreamer) takes to answer one, with margin. */
export const DEFAULT_ANSWER_WITHIN_MS = 500;

export class KeyframeRecovery {
  #timer: NodeJS.Timeout | null = null;
  #lastAt = Number.NEGATIVE_INFINITY;
  #running = false;
  #closed = false;
  readonly #now: () => number;
  /** Recoveries started so far. */
  count = 0;

  constructor(private readonly opts: KeyframeRecoveryOptions) {
    this.#now = opts.now ?? Date.now;
  }

  /** True while a request waits for the publisher's answer. */
  get pending(): boolean {
    return this.#timer !== null;
  }

  /** The viewer's live video asked for a keyframe. */
  onRequest(): void {
    if (this.#closed || this.opts.intervalMs <= 0 || this.#timer || this.#running) return;
    if (this.#now() - this.#lastAt < this.opts.intervalMs) return;
    this.#timer = setTimeout(() => this.#fire(), this.opts.answerWithinMs ?? DEFAULT_ANSWER_WITHIN_MS);
    this.#timer.unref?.();
  }

  /** A keyframe reached the program (the publisher answered, or its interval came round): nothing to recover. */
  onKeyframe(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#closed = true;
    this.onKeyframe();
  }

  #fire(): void {
    this.#timer = null;
    if (this.#closed) return;
    this.#lastAt = this.#now();
    this.#running = true;
    this.count++;
    void this.opts
      .recover()
      .catch(() => {})
      .finally(() => (this.#running = false));
  }
}
