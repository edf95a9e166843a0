/**
 * The soak at CI size: 3 channels × 3 viewers on one node and 2 channels on two nodes (watched on
 * both), both at once for 15 s. Every viewer must stay continuous, except one on each part whose
 * consumers the test pauses on the server for 3 s mid-run: the checker must name exactly those.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScratchPostgres } from '@whipcast/db/testing';
import { runSoakPart, type SoakPartOptions } from './soak-bench.ts';

let scratch: Awaited<ReturnType<typeof createScratchPostgres>>;
beforeAll(async () => {
  scratch = await createScratchPostgres();
});
afterAll(async () => {
  await scratch?.drop();
});

const common = {
  seconds: 15,
  kbps: 1200,
  width: 640,
  height: 360,
  keyframeInterval: 2,
  via: 'socket',
  progress: () => {},
} satisfies Partial<SoakPartOptions>;
const STALL = { afterMs: 5000, forMs: 3000 };

describe('soak (CI size)', () => {
  it(
    'keeps every viewer continuous on one node and across two, and names the viewer whose consumers stalled',
    { timeout: 120_000 },
    async () => {
      const [one, two] = await Promise.all([
        runSoakPart({ ...common, nodes: 1, channels: 3, viewersPerChannel: 3, stalls: { 'c1-v2@node': STALL } }),
        // channel 0 is published on A: its viewer on B watches through the relay between the nodes
        runSoakPart({ ...common, nodes: 2, channels: 2, viewersPerChannel: 2, databaseUrl: scratch.url, stalls: { 'c0-v1@B': STALL } }),
      ]);
      for (const [part, viewers, stalled] of [
        [one, 9, 'c1-v2@node'],
        [two, 8, 'c0-v1@B'],
      ] as const) {
        expect(part.joined, part.name).toBe(viewers);
        // exactly the stalled viewer fails, on both kinds, for about as long as its consumers were paused
        expect(part.failures.sort(), part.name).toEqual([
          expect.stringMatching(new RegExp(`^${stalled}: no audio frame for (\\d{4}) ms`)),
          expect.stringMatching(new RegExp(`^${stalled}: no video frame for (\\d{4}) ms`)),
        ]);
        for (const line of part.failures) expect(Number(/for (\d+) ms/.exec(line)![1])).toBeGreaterThan(STALL.forMs - 500);
        expect(part.ok).toBe(false);
        expect(part.worstGapMs.video).toBeLessThan(STALL.forMs + 2500);
        // everyone got ~30 video and ~50 audio frames a second (the stalled one 3 s fewer), and lost next to nothing
        expect(part.framesPerSecond.video).toBeGreaterThan(25);
        expect(part.framesPerSecond.audio).toBeGreaterThan(40);
        expect(part.lossPct.video).toBeLessThan(1);
        expect(part.lossPct.audio).toBeLessThan(1);
        expect(part.cpu.workers).toBeGreaterThan(0);
        expect(part.botProcesses).toBeGreaterThanOrEqual(2);
      }
      expect(two.nodes).toBe(2);
    },
  );
});
