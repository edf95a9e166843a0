/**
 * A vitest setup file that fails a test file leaving processes behind
 * (browsers, ffmpeg, GStreamer, mediasoup workers, servers): they would keep
 * using the 2 cores while later files run. Every process the file starts
 * inherits a marker in its environment, so it is found even after it was
 * orphaned (a browser's helper outlives its parent); the marker is per file,
 * so other test runs and the run's shared database are never counted. After
 * the file's own afterAll hooks, survivors get a few seconds to exit; the ones
 * still there are killed and the file fails, naming them.
 *
 * A process started with an environment of its own (not `process.env` plus
 * something) carries no marker and is not seen.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll } from 'vitest';

/** Environment variable holding the file's marker. */
export const LEAK_GUARD_ENV = 'WHIPCAST_TEST_FILE_MARK';
/** How long survivors get to exit after the file's afterAll hooks, ms. */
const GRACE_MS = 5000;

const mark = `${LEAK_GUARD_ENV}=${randomUUID()}`;
process.env[LEAK_GUARD_ENV] = mark.slice(LEAK_GUARD_ENV.length + 1);

/** A live process (not a zombie) other than this one that carries `marker` in its environment. */
export interface MarkedProcess {
  pid: number;
  args: string;
}

/** The live processes carrying `marker` (`NAME=value`) in their environment, this one excepted. */
export function markedProcesses(marker: string): MarkedProcess[] {
  const found: MarkedProcess[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) continue;
      const state = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.[0];
      if (state === 'Z' || state === 'X') continue;
      found.push({ pid, args: readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim().slice(0, 200) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let left = markedProcesses(mark);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = markedProcesses(mark);
  }
  if (!left.length) return;
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  throw new Error(
    `this test file left ${left.length} process(es) running ${GRACE_MS / 1000} s after its afterAll hooks ` +
      `(now killed): ${left.map((p) => `${p.pid} ${p.args}`).join('; ')}`,
  );
}, GRACE_MS + 5000);
