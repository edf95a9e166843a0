/** The leak guard finds a process this test file started even once it is orphaned, and nothing of others. */
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { LEAK_GUARD_ENV, markedProcesses } from './leak-guard.ts';

it('finds an orphaned process the file started by the marker it inherited, and not one started without it', async () => {
  const marker = `${LEAK_GUARD_ENV}=${process.env[LEAK_GUARD_ENV]}`;
  // a shell that starts `sleep` in the background and exits: the sleep is orphaned, as a browser's helper would be
  const sh = spawn('sh', ['-c', 'sleep 30 & echo $!'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((r) => sh.stdout.once('data', (d: Buffer) => r(d.toString()))));
  const clean = spawn('sleep', ['30'], { env: { PATH: process.env.PATH }, stdio: 'ignore' });
  try {
    await new Promise((r) => sh.once('exit', r));
    const found = markedProcesses(marker).map((p) => p.pid);
    expect(found).toContain(pid);
    expect(found).not.toContain(clean.pid);
  } finally {
    process.kill(pid, 'SIGKILL');
    clean.kill('SIGKILL');
  }
  await expect.poll(() => markedProcesses(marker).map((p) => p.pid), { timeout: 2000 }).not.toContain(pid);
});
