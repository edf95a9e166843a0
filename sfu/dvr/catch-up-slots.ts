/**
 * A bound on the catch-up replays (instant starts, keyframe recoveries) a node runs at once. Each one feeds a
 * single viewer the cached GOP through Node at 2× and then the live edge until the next live keyframe: 2–4 s of
 * media, ~1,000 packets at 720p 2.5 Mbit/s, some 40 ms of server CPU per join (docs/benchmarks.md). A crowd joining
 * together would make the server spend more on catching the newcomers up than on the viewers it already serves, so
 * past the bound a new viewer starts at the publisher's next keyframe (as a WHEP player does) and a recovery waits
 * for it.
 */
export class CatchUpSlots {
  #busy = 0;
  #refused = 0;

  constructor(
    /** Catch-ups at once (0: none, i.e. instant start off). */
    readonly max: number,
  ) {}

  /** Catch-ups running now. */
  get busy(): number {
    return this.#busy;
  }

  /** Catch-ups refused so far for want of a slot. */
  get refused(): number {
    return this.#refused;
  }

  /** A slot for one catch-up, or null when all are taken. Give it back with `release()` (idempotent) when it ends. */
  take(): CatchUpSlot | null {
    if (this.#busy >= this.max) {
      this.#refused++;
      return null;
    }
    this.#busy++;
    return new CatchUpSlot(() => this.#busy--);
  }
}

/** One running catch-up's place. */
export class CatchUpSlot {
  #released = false;

  /** @internal Made by `CatchUpSlots.take()`. */
  constructor(private readonly onRelease: () => void) {}

  /** Gives the place back. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease();
  }
}
