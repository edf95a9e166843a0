/**
 * A bound on the catch-up replays (instant starts, keyframe recoveries) a node runs at once. Each one feeds a
 * single viewer the cached GOP through Node at 2× and then the live edge until the next live keyframe: 2–4 s of
 * media, ~1,000 packets at 720p 2.5 Mbit/s, some 40 ms of server CPU per join (docs/benchmarks.md). A crowd joining
 * together would make the server spend more on catching the newcomers up than on the viewers it already serves, so
 * past the bound a new viewer starts at the publisher's next keyframe (as a WHEP player does) and a recovery waits
 * for it. Viewers of a router who start together share one catch-up (`share()`, `SharedCatchUp`), in one slot.
 */
export class CatchUpSlots {
  #busy = 0;
  #refused = 0;
  /** Shared catch-ups that may still take viewers, by key (being made, or made and not yet closed to joiners). */
  readonly #open = new Map<string, { made: Promise<Shareable | null>; done?: Shareable | null }>();

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
    return this.#take(() => {});
  }

  #take(onRelease: () => void): CatchUpSlot | null {
    if (this.#busy >= this.max) {
      this.#refused++;
      return null;
    }
    this.#busy++;
    return new CatchUpSlot(() => {
      this.#busy--;
      onRelease();
    });
  }

  /**
   * The shared catch-up under `key` if one is still open to viewers, else a new one made by `make` in a slot of its
   * own; null when no slot is free (or `make` failed: the slot is given back).
   */
  async share<T extends Shareable>(key: string, make: (slot: CatchUpSlot) => Promise<T>): Promise<T | null> {
    for (const [k, e] of this.#open) if (e.done !== undefined && !e.done?.open) this.#open.delete(k);
    const pending = this.#open.get(key);
    if (pending) {
      const found = await pending.made;
      if (found?.open) return found as T;
    }
    // its entry goes with its slot: nothing keeps a finished catch-up (and its viewers) reachable
    const slot = this.#take(() => {
      if (this.#open.get(key) === entry) this.#open.delete(key);
    });
    if (!slot) return null;
    const entry: { made: Promise<T | null>; done?: T | null } = {
      made: make(slot).then(
        (made) => (entry.done = made),
        () => {
          slot.release();
          return (entry.done = null);
        },
      ),
    };
    this.#open.set(key, entry);
    return entry.made;
  }
}

/** What `share()` hands out: open while it takes new viewers. */
export interface Shareable {
  readonly open: boolean;
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
