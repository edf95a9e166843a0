/**
 * Bounds the password-hashing work (scrypt: ~32 MiB and ~100 ms of a libuv
 * thread each) so sign-ins cannot be used to exhaust CPU, memory or the thread
 * pool: at most `concurrency` jobs run, at most `queueLimit` wait, and anything
 * beyond is refused at once with HashQueueFullError. Waiting jobs are taken
 * round-robin by key (the client address), so one address hammering the queue
 * delays another address's sign-in by about one job, not by its whole backlog.
 */
export interface HashQueueOptions {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting for a slot, over all keys; more are refused. */
  queueLimit: number;
  /** Jobs waiting for a slot under one key; more are refused. Default: a quarter of `queueLimit` (at least 1). */
  perKeyLimit?: number;
}

export class HashQueueFullError extends Error {
  override name = 'HashQueueFullError';
  constructor() {
    super('Too many sign-ins are being checked right now');
  }
}

export class HashQueue {
  #running = 0;
  #waiting = 0;
  /** Waiters by key; Map order is the round-robin order (a served key moves to the back). */
  readonly #queues = new Map<string, (() => void)[]>();
  readonly #perKeyLimit: number;

  constructor(readonly options: HashQueueOptions) {
    this.#perKeyLimit = options.perKeyLimit ?? Math.max(1, Math.ceil(options.queueLimit / 4));
  }

  /** Jobs running plus waiting. */
  get size(): number {
    return this.#running + this.#waiting;
  }

  /** Runs `job` when a slot is free; throws HashQueueFullError without running it when the queue (or `key`'s share) is full. */
  async run<T>(key: string, job: () => Promise<T>): Promise<T> {
    if (this.#running < this.options.concurrency) this.#running++;
    else {
      const queue = this.#queues.get(key) ?? [];
      if (this.#waiting >= this.options.queueLimit || queue.length >= this.#perKeyLimit) throw new HashQueueFullError();
      this.#waiting++;
      this.#queues.set(key, queue);
      // resolved by #release, which hands over its running slot
      await new Promise<void>((resolve) => queue.push(resolve));
    }
    try {
      return await job();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const first = this.#queues.entries().next();
    if (first.done) {
      this.#running--;
      return;
    }
    const [key, queue] = first.value;
    const next = queue.shift()!;
    this.#queues.delete(key);
    if (queue.length > 0) this.#queues.set(key, queue);
    this.#waiting--;
    next();
  }
}
