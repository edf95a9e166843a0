/**
 * The README start command (`npm start`: embedded database, one mediasoup worker per core) idles
 * under 200 MB of RSS summed over its whole process tree. Pool connections close after 30 s unused,
 * so the sample is taken after that.
 */
import { expect, it } from 'vitest';
import { measureFootprint } from '../scripts/footprint.ts';

const BUDGET_MB = 200;

it(`idles under ${BUDGET_MB} MB RSS (Node + mediasoup workers + embedded database)`, { timeout: 120_000 }, async () => {
  const { idle, peak } = await measureFootprint({ idleSeconds: 35, samples: 3 });
  const table = peak.processes.map((p) => `${(p.rssKb / 1024).toFixed(1)} MB  ${p.name}`).join('\n');
  expect(peak.processes.some((p) => p.name.includes('postgres'))).toBe(true);
  expect(peak.rssMb, `RSS by process:\n${table}`).toBeLessThan(BUDGET_MB);
  expect(idle.rssMb).toBeLessThan(BUDGET_MB);
});
