import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PeriodicJob } from './periodic.ts';

/** A job whose runs end when the test says so. */
function controlledJob() {
  const runs: { end: () => void; fail: (e: Error) => void }[] = [];
  const run = () =>
    new Promise<void>((resolve, reject) => {
      runs.push({ end: resolve, fail: reject });
    });
  return { runs, run };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

describe('PeriodicJob', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs at once, then every intervalMs', async () => {
    let calls = 0;
    const job = new PeriodicJob({ name: 'test job', intervalMs: 1000, run: async () => void calls++ });
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(calls).toBe(5);
    await job.close();
  });

  it('never runs twice at once: ticks and run() during a long run join it', async () => {
    const { runs, run } = controlledJob();
    const job = new PeriodicJob({ name: 'test job', intervalMs: 1000, run });
    await vi.advanceTimersByTimeAsync(5000);
    const joined = job.run();
    expect(runs).toHaveLength(1);
    let done = false;
    void joined.then(() => (done = true));
    runs[0]!.end();
    await settle();
    expect(done).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(2);
    runs[1]!.end();
    await job.close();
  });

  it('logs a failed run (rejected or thrown) and runs again on time', async () => {
    const logged: { msg: string; job: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string; job: string }) });
    let calls = 0;
    const job = new PeriodicJob({
      name: 'flaky job',
      intervalMs: 1000,
      logger,
      run: () => {
        calls++;
        if (calls === 1) throw new Error('thrown before any await');
        return Promise.reject(new Error('rejected'));
      },
    });
    await settle();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    expect(logged.map((l) => [l.msg, l.job])).toEqual([
      ['flaky job failed', 'flaky job'],
      ['flaky job failed', 'flaky job'],
    ]);
    await job.close();
  });

  it('close() stops the timer, waits for the run under way, and is idempotent', async () => {
    const { runs, run } = controlledJob();
    const job = new PeriodicJob({ name: 'test job', intervalMs: 1000, run });
    let closed = false;
    const closing = job.close().then(() => (closed = true));
    expect(job.closed).toBe(true);
    await settle();
    expect(closed).toBe(false);
    runs[0]!.end();
    await closing;
    await job.close();
    await job.run();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1);
  });
});
