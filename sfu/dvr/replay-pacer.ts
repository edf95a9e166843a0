/**
 * Drives every replay of the process on one clock: a tick every `tickMs`
 * sends each playing replay the packets that fell due, in slices of at most
 * `sliceBudget` packets; between slices the event loop polls I/O, so the live
 * path (the ingest tap → program packets every live viewer waits for) is never
 * held back by more than one slice of replay work, however many viewers watch
 * the past. (A timer per replay woke each of them ~80 times a second.)
 */

/** What the pacer drives: a replay that sends what is due, at most `budget` packets, and says how many it sent. */
export interface Paced {
  pump(budget: number): number;
}

export interface ReplayPacerOptions {
  /** Time between ticks, ms (default 10): the replays' pacing granularity. */
  tickMs?: number;
  /** Packets sent between two polls of the event loop (default 200). */
  sliceBudget?: number;
  /** Replays playing at once beyond which a new seek is refused (`full`); 0 or absent: no limit. */
  maxReplays?: number;
}

export class ReplayPacer {
  readonly #tickMs: number;
  readonly #sliceBudget: number;
  readonly #maxReplays: number;
  /** In order; a slice resumes where the previous one stopped (no replay starves behind the others). */
  #paced: Paced[] = [];
  #next = 0;
  /** Replays still to visit in this tick. */
  #left = 0;
  #timer: NodeJS.Timeout | null = null;
  #sliceQueued = false;
  /** Slices run so far (tests, metrics). */
  slices = 0;

  constructor(opts: ReplayPacerOptions = {}) {
    this.#tickMs = opts.tickMs ?? 10;
    this.#sliceBudget = opts.sliceBudget ?? 200;
    this.#maxReplays = opts.maxReplays ?? 0;
  }

  /** As many replays play as `maxReplays` allows: a seek would add replay work beyond the budget. */
  get full(): boolean {
    return this.#maxReplays > 0 && this.#paced.length >= this.#maxReplays;
  }

  /** Starts pacing a replay (idempotent). */
  add(p: Paced): void {
    if (this.#paced.includes(p)) return;
    this.#paced.push(p);
    this.#timer ??= setInterval(() => this.#tick(), this.#tickMs);
  }

  /** Stops pacing a replay (idempotent). */
  delete(p: Paced): void {
    const i = this.#paced.indexOf(p);
    if (i < 0) return;
    this.#paced.splice(i, 1);
    if (i < this.#next) this.#next--;
    if (this.#next >= this.#paced.length) this.#next = 0;
    this.#left = Math.min(this.#left, this.#paced.length);
    if (this.#paced.length === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Replays being paced. */
  get size(): number {
    return this.#paced.length;
  }

  #tick(): void {
    // a tick that finds the previous one unfinished lets it finish first (the work is late, not lost)
    if (this.#left > 0) return;
    this.#left = this.#paced.length;
    this.#slice();
  }

  #slice(): void {
    this.#sliceQueued = false;
    this.slices++;
    let budget = this.#sliceBudget;
    while (this.#left > 0 && budget > 0 && this.#paced.length > 0) {
      if (this.#next >= this.#paced.length) this.#next = 0;
      const p = this.#paced[this.#next]!;
      const sent = p.pump(budget);
      budget -= sent;
      // out of budget inside this replay: it goes on first in the next slice
      if (budget <= 0 && sent > 0) break;
      this.#next++;
      this.#left--;
    }
    if (this.#left > 0 && !this.#sliceQueued) {
      this.#sliceQueued = true;
      setImmediate(() => this.#slice());
    }
  }
}

/** The process's pacer (every channel's replays). */
export const replayPacer = new ReplayPacer();
