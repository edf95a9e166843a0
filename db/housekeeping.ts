import type { Logger } from 'pino';
import type { Database } from './index.ts';

export interface Housekeeping {
  /** Stops the timer and waits for a purge under way. */
  close(): Promise<void>;
}

/**
 * Periodic clean-up: expired sessions are deleted (lookups already ignore them; this keeps the
 * table from growing). Runs once at start and then every `intervalMs`; safe on several nodes at once.
 */
export function startHousekeeping(db: Pick<Database, 'sessions'>, opts: { intervalMs: number; logger?: Logger }): Housekeeping {
  let running: Promise<void> | undefined;
  const purge = () => {
    running ??= db.sessions
      .deleteExpired()
      .then(
        (n) => void (n && opts.logger?.info({ sessions: n }, 'purged expired sessions')),
        (err: unknown) => opts.logger?.warn({ err }, 'could not purge expired sessions'),
      )
      .finally(() => (running = undefined));
  };
  purge();
  const timer = setInterval(purge, opts.intervalMs);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
