/**
 * The replay pacer: every replay gets what fell due each tick, and a crowd of
 * replays never holds the event loop for more than one slice of packets, so
 * I/O (the live path's packets) is served between slices.
 */
import { describe, expect, it } from 'vitest';
import { ReplayPacer, type Paced } from './replay-pacer.ts';

/**
 * A replay with `due` packets waiting each tick, each costing `costUs` of CPU (a send to the worker);
 * logs what it sent, in the order of everything that ran.
 */
function fakeReplay(due: number, log: string[], name: string, costUs = 0): Paced & { sent: number } {
  let left = 0;
  let lastTick = -1;
  const r = {
    sent: 0,
    pump(budget: number): number {
      const tick = Math.floor(performance.now() / 10);
      if (tick !== lastTick) {
        left += due;
        lastTick = tick;
      }
      const n = Math.min(budget, left);
      left -= n;
      r.sent += n;
      for (let i = 0; i < n; i++) {
        const until = performance.now() + costUs / 1000;
        while (performance.now() < until) continue;
        log.push(name);
      }
      return n;
    },
  };
  return r;
}

describe('ReplayPacer', () => {
  it('sends what is due in slices of at most the budget, with the event loop served between them', async () => {
    const pacer = new ReplayPacer({ tickMs: 10, sliceBudget: 50 });
    const log: string[] = [];
    // 400 packets due per 10 ms tick at 20 µs each: 8 ms of work per tick
    const replays = Array.from({ length: 20 }, (_, i) => fakeReplay(20, log, `r${i}`, 20));
    for (const r of replays) pacer.add(r);
    // I/O stands in for the live path: a socket-like callback queued in every poll phase
    let ioTurns = 0;
    const io = setInterval(() => {
      ioTurns++;
      log.push('io');
    }, 1);
    await new Promise((r) => setTimeout(r, 200));
    clearInterval(io);
    for (const r of replays) pacer.delete(r);
    expect(pacer.size).toBe(0);

    // every replay got its packets (20 × 20 per tick: 400 due, 8 slices of 50 per tick)
    for (const r of replays) expect(r.sent).toBeGreaterThan(20 * 5);
    expect(ioTurns).toBeGreaterThan(20);
    // the longest run of replay packets with no I/O in between is one slice
    let run = 0;
    let longest = 0;
    for (const e of log) {
      run = e === 'io' ? 0 : run + 1;
      longest = Math.max(longest, run);
    }
    // one slice (1 ms of work: the 1 ms interval is due again by the next poll); a whole tick at once would be 400
    expect(longest).toBeLessThanOrEqual(50 * 2);
    expect(pacer.slices).toBeGreaterThan(20);
  });

  it('does not starve a replay behind the others: a slice resumes where the last one stopped', async () => {
    const pacer = new ReplayPacer({ tickMs: 10, sliceBudget: 10 });
    const log: string[] = [];
    const greedy = fakeReplay(1000, log, 'greedy');
    const small = fakeReplay(1, log, 'small');
    pacer.add(greedy);
    pacer.add(small);
    await new Promise((r) => setTimeout(r, 100));
    pacer.delete(greedy);
    pacer.delete(small);
    expect(small.sent).toBeGreaterThan(3);
  });
});
