/**
 * The README start command (`node dist/server.js`, what `npm start`, scripts/start.sh and the Docker
 * image run: the bundled server, built here if its sources changed; embedded database, one mediasoup
 * worker per core) idles under 200 MB of RSS summed over its whole process tree at its FIRST start:
 * a fresh DATA_DIR (initdb) and nothing cached, as a new user or a new container sees it. Idle: the
 * pool has closed its unused connections; it closes them here after 2 s instead of 30
 * (DATABASE_IDLE_SECONDS): the same tree sooner (Node's RSS measured flat from ready to 41 s).
 * The same first start through tsx (`npm run dev`, the start command before dist/) measured 248 MB.
 */
import { expect, it } from 'vitest';
import { measureFootprint, passing, type TreeMemory } from '../scripts/footprint.ts';

const BUDGET_MB = 200;
const byProcess = (t: TreeMemory) => t.processes.map((p) => `${(p.rssKb / 1024).toFixed(1)} MB  ${p.name}`).join('\n');

it(`idles under ${BUDGET_MB} MB RSS at a first start (Node + mediasoup workers + embedded database)`, { timeout: 90_000 }, async () => {
  const { idle, peak, idledSeconds, startMs } = await measureFootprint({
    env: { DATABASE_IDLE_SECONDS: '2' },
    idleSeconds: 45,
    settle: true,
    samples: 3,
  });
  console.log(`footprint, first start (ready in ${startMs} ms): ${peak.rssMb} MB RSS (peak of 3 samples)\n${byProcess(peak)}`);
  expect(idle.processes.filter(passing), `idle after ${idledSeconds} s`).toEqual([]);
  expect(peak.processes.some((p) => p.name.includes('postgres'))).toBe(true);
  expect(peak.rssMb, `RSS by process:\n${byProcess(peak)}`).toBeLessThan(BUDGET_MB);
  expect(idle.rssMb).toBeLessThan(BUDGET_MB);
  // what `npm start` runs
  expect(peak.processes.some((p) => p.name.includes('dist/server.js'))).toBe(true);
});
