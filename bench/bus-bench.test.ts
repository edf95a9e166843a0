/** Smoke test of the bus benchmark: real postgresBus nodes on a scratch database deliver every notification to every other node. */
import { describe, expect, it } from 'vitest';
import { createScratchPostgres } from '@whipcast/db/testing';
import { busCapacity, busTable, runBusBench, type BusStep } from './bus-bench.ts';

describe('bus bench', () => {
  it('delivers each notification to every other node and reports latency and capacity', { timeout: 60_000 }, async () => {
    const scratch = await createScratchPostgres();
    try {
      const r = await runBusBench({
        nodes: [2, 3],
        rates: [20, 100],
        seconds: 1,
        databaseUrl: scratch.url,
        botCores: 1,
        progress: () => {},
      });
      expect(r.steps.map((s) => [s.nodes, s.rate])).toEqual([
        [2, 20],
        [2, 100],
        [3, 20],
        [3, 100],
      ]);
      for (const s of r.steps) {
        expect(s.sent).toBeGreaterThanOrEqual(s.rate * 0.8);
        expect(s.expected).toBe(s.sent * (s.nodes - 1));
        expect(s.delivered).toBe(s.expected);
        expect(s.latencyMs.p95).toBeGreaterThan(0);
        expect(s.latencyMs.p95).toBeLessThan(1000);
        // an outside database: its CPU is not read
        expect(s.postgresCpu).toBeNaN();
      }
      expect(r.capacity.map((c) => c.rate)).toEqual([100, 100]);
      const text = busTable(r).join('\n');
      expect(text).toMatch(/bus\s+3\s+100\s+200\s+100\.00/);
      expect(text).toMatch(/3 nodes: 100 notifications\/s \(200 deliveries\/s\)/);
    } finally {
      await scratch.drop();
    }
  });

  it('calls no capacity where the bench, not Postgres, ran out of CPU', () => {
    const step = (rate: number, benchCpu: number, delivered = 1): BusStep => ({
      nodes: 10,
      rate,
      sent: rate,
      expected: rate * 9,
      delivered: rate * 9 * delivered,
      latencyMs: { p50: 1, p95: 5, p99: 9, max: 10 },
      postgresCpu: 0.5,
      benchCpu,
    });
    expect(busCapacity([step(500, 0.3), step(1000, 0.4, 0.5)], 10).rate).toBe(500);
    expect(busCapacity([step(500, 0.3), step(1000, 0.9, 0.5)], 10).text).toMatch(/not called \(the bench's core at 90% at 1000\/s\)/);
    expect(busCapacity([step(500, 0.3), step(1000, 0.6)], 10).rate).toBe(1000);
  });
});
