/** The helper that starts programs (ffmpeg) for the server: what it runs, and at what priority. */
import { getPriority } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { HELPER_IDLE_MS, programHelperPid, runProgram, stopProgramHelper } from './spawner.ts';

afterAll(stopProgramHelper);

const opts = { timeoutMs: 5000, maxStdoutBytes: 1 << 20 };

describe('runProgram', () => {
  it('runs a program with its stdin and gives back its stdout and exit code', async () => {
    const r = await runProgram('sh', ['-c', 'cat; exit 3'], Buffer.from('hello'), opts);
    expect(r).toMatchObject({ code: 3, signal: null });
    expect(r.stdout.toString()).toBe('hello');
  });

  it('runs programs at a lower priority than the server: forwarding media comes first', async () => {
    const r = await runProgram('nice', [], Buffer.alloc(0), opts);
    expect(r.code).toBe(0);
    expect(Number(r.stdout.toString().trim())).toBe(Math.min(19, getPriority() + 10));
  });

  it('stops its helper on request (a test file ends with none left) and starts a new one for the next program', async () => {
    const slow = runProgram('sleep', ['10'], Buffer.alloc(0), opts);
    await new Promise((r) => setTimeout(r, 200));
    stopProgramHelper();
    expect((await slow).error).toMatch(/stopped/);
    const r = await runProgram('echo', ['again'], Buffer.alloc(0), opts);
    expect(r.stdout.toString().trim()).toBe('again');
  });

  it('the helper exits when it has had nothing to run for a while (its ~43 MB are not kept for the next thumbnail)', async () => {
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await runProgram('true', [], Buffer.alloc(0), opts);
    const pid = programHelperPid()!;
    expect(alive(pid)).toBe(true);
    const started = Date.now();
    while (alive(pid) && Date.now() - started < HELPER_IDLE_MS + 3000) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid), 'the helper still runs').toBe(false);
    expect(Date.now() - started).toBeGreaterThan(HELPER_IDLE_MS - 1000);
    expect(programHelperPid()).toBeNull();
    const r = await runProgram('echo', ['back'], Buffer.alloc(0), opts);
    expect(r.stdout.toString().trim()).toBe('back');
  });
});
