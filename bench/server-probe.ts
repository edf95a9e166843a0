/**
 * Watches a whipcast node's Node main thread from outside while a bench runs:
 * scrapes its `/metrics` every `intervalMs` for how late its event loop ran
 * (the largest delay since the previous scrape) and its garbage collections,
 * so a gap every viewer saw can be laid beside a stall of the server.
 */

/** One scrape. */
export interface ProbeSample {
  /** ms since the probe started. */
  at: number;
  /** The longest event-loop delay since the previous scrape, ms. */
  lagMaxMs: number;
  /** Major (mark-compact) GCs so far, and their total time, s. */
  gcMajor: { count: number; seconds: number };
  /** Every GC kind so far: total time, s. */
  gcSeconds: number;
}

/** What a probe saw over its window. */
export interface ProbeSummary {
  /** The longest event-loop delay, ms. */
  lagMaxMs: number;
  /** Scrapes whose interval held a delay over `stallMs`: when (s into the window) and how long, ms. */
  stalls: { atSeconds: number; ms: number }[];
  /** Major GCs in the window and their total time, s. */
  gcMajor: { count: number; seconds: number };
  /** Time in GC of every kind in the window, s. */
  gcSeconds: number;
}

/** Options of {@link ServerProbe}. */
export interface ServerProbeOptions {
  /** The node's base URL. */
  url: string;
  /** Time between scrapes, ms (default 2000). */
  intervalMs?: number;
  /** A delay above this is listed as a stall, ms (default 200). */
  stallMs?: number;
}

const metric = (text: string, name: string, labels = ''): number => {
  const escaped = (name + labels).replace(/[{}"=]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

/** Scrapes one node's `/metrics` until `stop()`. */
export class ServerProbe {
  readonly samples: ProbeSample[] = [];
  readonly #opts: Required<ServerProbeOptions>;
  readonly #t0 = performance.now();
  readonly #timer: NodeJS.Timeout;
  #inFlight: Promise<void> | null = null;

  constructor(opts: ServerProbeOptions) {
    this.#opts = { intervalMs: 2000, stallMs: 200, ...opts };
    // a first scrape resets the node's delay histogram: the window starts clean
    this.#inFlight = this.#scrape();
    this.#timer = setInterval(() => (this.#inFlight ??= this.#scrape()), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Stops scraping (idempotent; `stop()` also does). */
  close(): void {
    clearInterval(this.#timer);
  }

  async #scrape(): Promise<void> {
    try {
      const res = await fetch(`${this.#opts.url}/metrics`, { signal: AbortSignal.timeout(this.#opts.intervalMs * 2) });
      const text = await res.text();
      const p = 'whipcast_process_nodejs_';
      this.samples.push({
        at: performance.now() - this.#t0,
        lagMaxMs: metric(text, `${p}eventloop_lag_max_seconds`) * 1000,
        gcMajor: {
          count: metric(text, `${p}gc_duration_seconds_count`, '{kind="major"}') || 0,
          seconds: metric(text, `${p}gc_duration_seconds_sum`, '{kind="major"}') || 0,
        },
        gcSeconds: ['major', 'minor', 'incremental', 'weakcb'].reduce(
          (a, k) => a + (metric(text, `${p}gc_duration_seconds_sum`, `{kind="${k}"}`) || 0),
          0,
        ),
      });
    } catch {
      // a node too busy to answer in time shows as a missing sample, and in the next one's delay
    } finally {
      this.#inFlight = null;
    }
  }

  /** Takes a last scrape, stops, and sums up the window (the first scrape is its start). */
  async stop(): Promise<ProbeSummary> {
    clearInterval(this.#timer);
    await this.#inFlight;
    await this.#scrape();
    const [first, ...rest] = this.samples;
    const last = this.samples.at(-1);
    return {
      lagMaxMs: Math.max(0, ...rest.map((s) => s.lagMaxMs).filter(Number.isFinite)),
      stalls: rest
        .filter((s) => s.lagMaxMs > this.#opts.stallMs)
        .map((s) => ({ atSeconds: Math.round(s.at / 100) / 10, ms: Math.round(s.lagMaxMs) })),
      gcMajor: {
        count: (last?.gcMajor.count ?? 0) - (first?.gcMajor.count ?? 0),
        seconds: (last?.gcMajor.seconds ?? 0) - (first?.gcMajor.seconds ?? 0),
      },
      gcSeconds: (last?.gcSeconds ?? 0) - (first?.gcSeconds ?? 0),
    };
  }
}
