import type { Logger } from 'pino';

/** Options of a {@link PeriodicJob}. */
export interface PeriodicJobOptions {
  /** What the job does; a run that throws is logged and the next one still comes on time. */
  run: () => Promise<void>;
  /** How often it runs, ms (the first run starts at once). */
  intervalMs: number;
  /** Names the job in the log line of a failed run. */
  name: string;
  logger?: Logger;
}

/**
 * A job that runs now and then every `intervalMs`, never two runs at once (a tick that finds
 * one under way joins it), until `close()`. The timer does not keep the process alive.
 */
export class PeriodicJob {
  readonly #options: PeriodicJobOptions;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: PeriodicJobOptions) {
    this.#options = options;
    this.#timer = setInterval(() => void this.run(), options.intervalMs);
    this.#timer.unref();
    void this.run();
  }

  /** Whether `close()` was called (a long run may check it to stop early). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs the job now, or joins the run under way; never rejects. After `close()` it starts nothing. */
  run(): Promise<void> {
    if (this.#closed) return this.#running ?? Promise.resolve();
    // async: a job that throws before its first await fails like one that rejects
    this.#running ??= (async () => this.#options.run())()
      .catch((err: unknown) => this.#options.logger?.warn({ err, job: this.#options.name }, `${this.#options.name} failed`))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Stops the timer and waits for a run under way. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
