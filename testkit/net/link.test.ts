/** The link scheduler's statistics with a seeded random source (no sockets, no clock). */
import { describe, expect, it } from 'vitest';
import { LinkScheduler, seededRandom as seeded } from './link.ts';

describe('LinkScheduler', () => {
  it('random loss at the configured rate', () => {
    const link = new LinkScheduler({ loss: 0.05 }, seeded(1));
    for (let i = 0; i < 20_000; i++) link.admit(1000, i);
    expect(link.counters.lost / link.counters.packets).toBeGreaterThan(0.045);
    expect(link.counters.lost / link.counters.packets).toBeLessThan(0.055);
    expect(link.counters.passed + link.counters.lost).toBe(20_000);
  });

  it('Gilbert–Elliott loss comes in bursts of mean length 1/pBadToGood', () => {
    const link = new LinkScheduler({ burst: { pGoodToBad: 0.01, pBadToGood: 0.25 } }, seeded(2));
    const bursts: number[] = [];
    let run = 0;
    for (let i = 0; i < 100_000; i++) {
      if (link.admit(100, i) === null) run++;
      else if (run) {
        bursts.push(run);
        run = 0;
      }
    }
    const mean = bursts.reduce((a, b) => a + b, 0) / bursts.length;
    expect(mean).toBeGreaterThan(3.6);
    expect(mean).toBeLessThan(4.4);
    // Stationary loss = pGB / (pGB + pBG) ≈ 3.8 %
    const rate = link.counters.lost / link.counters.packets;
    expect(rate).toBeGreaterThan(0.03);
    expect(rate).toBeLessThan(0.047);
  });

  it('delay plus jitter stays within bounds, reorders unless inOrder', () => {
    for (const inOrder of [false, true]) {
      const link = new LinkScheduler({ delayMs: 40, jitterMs: 10, inOrder }, seeded(3));
      const out: number[] = [];
      for (let i = 0; i < 5000; i++) out.push(link.admit(1000, i * 2)! - i * 2);
      expect(Math.min(...out)).toBeGreaterThanOrEqual(30);
      const mean = out.reduce((a, b) => a + b, 0) / out.length;
      if (!inOrder) {
        expect(Math.max(...out)).toBeLessThanOrEqual(50);
        expect(mean).toBeGreaterThan(39);
        expect(mean).toBeLessThan(41);
      }
      const arrivals = out.map((d, i) => d + i * 2);
      const reordered = arrivals.filter((t, i) => i > 0 && t < arrivals[i - 1]!).length;
      if (inOrder) expect(reordered).toBe(0);
      else expect(reordered).toBeGreaterThan(500);
    }
  });

  it('a cap serialises at its rate and drops beyond its queue', () => {
    // 2 Mbit/s offered (1000 B every 4 ms) into a 1 Mbit/s link with a 10 kB queue, for 10 s.
    const link = new LinkScheduler({ kbps: 1000, queueBytes: 10_000 }, seeded(4));
    let last = 0;
    for (let t = 0; t < 10_000; t += 4) {
      const at = link.admit(1000, t);
      if (at !== null) {
        expect(at - t).toBeLessThanOrEqual(80 + 1e-9); // at most a full queue ahead: 10 kB at 125 B/ms
        last = Math.max(last, at);
      }
    }
    const c = link.counters;
    expect(c.passedBytes / last).toBeGreaterThan(124); // bytes per ms ≈ 125 = 1 Mbit/s
    expect(c.passedBytes / last).toBeLessThan(126.5);
    expect(c.queueDropped / c.packets).toBeGreaterThan(0.45);
    expect(c.maxQueueBytes).toBeLessThanOrEqual(10_000);
  });

  it('below the cap nothing waits or drops; lifting the cap takes effect', () => {
    const link = new LinkScheduler({ kbps: 1000 }, seeded(5));
    for (let t = 0; t < 1000; t += 10) expect(link.admit(1000, t)).toBe(t); // 0.8 Mbit/s
    expect(link.counters.queueDropped).toBe(0);
    link.set({});
    for (let t = 1000; t < 1100; t += 1) expect(link.admit(1200, t)).toBe(t);
  });

  it('refuses nonsense', () => {
    expect(() => new LinkScheduler({ loss: 1.5 })).toThrow(/probability/);
    expect(() => new LinkScheduler({ delayMs: -1 })).toThrow(/non-negative/);
    expect(() => new LinkScheduler({ kbps: 0 })).toThrow(/kbps/);
  });
});
