/**
 * Runs short programs (ffmpeg making a picture) from a small helper process
 * instead of from the server itself. Starting a program forks the calling
 * process, and the kernel copies the caller's page tables while its thread
 * waits: about 60 ms per GB resident on the reference VM. A server holding a
 * few minutes of DVR buffer for many channels has gigabytes resident, and
 * paid that on its event loop (the one that forwards every packet) at every
 * thumbnail. The helper stays at a few tens of MB, so a fork costs it ~1 ms.
 *
 * One helper per process, started at first use, restarted if it dies; it exits
 * when this process goes (its IPC channel closes), killing what it runs, and
 * keeps nothing alive. It also exits after {@link HELPER_IDLE_MS} with nothing
 * to run: a Node process holds ~43 MB RSS, and one live channel makes a
 * thumbnail every 30 s (a restart costs ~40 ms of CPU at the lower priority).
 *
 * It and its programs run at a lower priority (nice +10 from this process's):
 * forwarding media comes first. Ten channels' thumbnails made one after the
 * other took ~45 % of the server's core for ~3 s every 30 s when the server
 * is pinned to one core, and its mediasoup worker's socket overflowed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';

/** Options of {@link runProgram}. */
export interface RunProgramOptions {
  /** The program is killed after this long, ms. */
  timeoutMs: number;
  /** The program is killed once it wrote more than this to stdout, bytes. */
  maxStdoutBytes: number;
}

/** How a program ended. */
export interface RunProgramResult {
  /** Exit code (null when killed or not started). */
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  /** Its first 4 KiB of stderr. */
  stderr: string;
  /** Why it did not run to its end: could not start, timed out, wrote too much, or the helper died. */
  error?: string;
}

interface Request {
  id: number;
  bin: string;
  args: string[];
  input: Uint8Array;
  timeoutMs: number;
  maxStdoutBytes: number;
}
type Reply = { id: number } & RunProgramResult;

// The helper, as plain JavaScript (no loader needed): runs each request, replies with what happened.
const HELPER = `
import { spawn } from 'node:child_process';
const running = new Set();
process.on('disconnect', () => {
  for (const c of running) c.kill('SIGKILL');
  process.exit(0);
});
process.on('message', (r) => {
  const out = [];
  let outBytes = 0, stderr = '', settled = false, error;
  let child;
  const reply = (code, signal) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    process.send({ id: r.id, code, signal, stdout: Buffer.concat(out), stderr, ...(error ? { error } : {}) });
  };
  const kill = (why) => { error ??= why; if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  const timer = setTimeout(() => kill('timed out after ' + r.timeoutMs + ' ms'), r.timeoutMs);
  try {
    child = spawn(r.bin, r.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    error = 'could not start: ' + err.message;
    return reply(null, null);
  }
  running.add(child);
  child.on('exit', () => running.delete(child));
  child.on('error', (err) => { running.delete(child); error ??= 'could not start: ' + err.message; reply(null, null); });
  child.stdout.on('data', (d) => {
    outBytes += d.length;
    if (outBytes > r.maxStdoutBytes) kill('output too large');
    else out.push(d);
  });
  child.stderr.on('data', (d) => { if (stderr.length < 4096) stderr += d.toString(); });
  child.stdin.on('error', () => {});
  child.on('close', (code, signal) => reply(code, signal));
  child.stdin.end(Buffer.from(r.input));
});
`;

/** How much lower the helper's (and its programs') priority is than this process's. */
const NICER = 10;
/** The helper exits after this long without a program to run, ms. */
export const HELPER_IDLE_MS = 5000;

let helper: ChildProcess | null = null;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;
const pending = new Map<number, (r: RunProgramResult) => void>();

function failAll(error: string): void {
  for (const done of pending.values()) done({ code: null, signal: null, stdout: Buffer.alloc(0), stderr: '', error });
  pending.clear();
}

function getHelper(): ChildProcess {
  if (helper?.connected) return helper;
  const child = spawn(process.execPath, ['--input-type=module', '-e', HELPER], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  if (child.pid) {
    try {
      setPriority(child.pid, Math.min(19, getPriority() + NICER));
    } catch {
      // not allowed: it runs at this process's priority
    }
  }
  child.on('message', (raw: unknown) => {
    const m = raw as Reply;
    const done = pending.get(m.id);
    if (!done) return;
    pending.delete(m.id);
    const { id: _id, ...result } = m;
    done({ ...result, stdout: Buffer.from(result.stdout.buffer, result.stdout.byteOffset, result.stdout.byteLength) });
    if (pending.size === 0) idle(child);
  });
  const gone = () => {
    if (helper !== child) return; // stopped: its requests were failed then
    helper = null;
    failAll('the helper process that runs it exited');
  };
  child.once('exit', gone);
  child.once('error', gone);
  helper = child;
  idle(child);
  return child;
}

/**
 * Stops the helper now (it is started again at the next `runProgram`); what it was running is killed and
 * reported as failed. For a test file, whose helper would otherwise live until its worker process exits.
 */
export function stopProgramHelper(): void {
  clearTimeout(idleTimer);
  const child = helper;
  helper = null;
  if (!child) return;
  failAll('the helper process that runs it was stopped');
  if (child.connected) child.disconnect();
}

/** The helper keeps this process alive only while it runs something, and exits after HELPER_IDLE_MS of nothing. */
function idle(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (helper === child && pending.size === 0) stopProgramHelper();
  }, HELPER_IDLE_MS);
  idleTimer.unref();
}

/** The helper's process id, null when none runs (tests). */
export function programHelperPid(): number | null {
  return helper?.pid ?? null;
}

/** Runs `bin args` in the helper with `input` on its stdin; never rejects. */
export function runProgram(bin: string, args: string[], input: Uint8Array, opts: RunProgramOptions): Promise<RunProgramResult> {
  return new Promise((resolve) => {
    const id = nextId++;
    // the helper kills the program at timeoutMs; this is for a helper that stopped answering
    const timer = setTimeout(() => {
      if (!pending.delete(id)) return;
      resolve({ code: null, signal: null, stdout: Buffer.alloc(0), stderr: '', error: 'the helper process did not answer' });
    }, opts.timeoutMs + 5000);
    timer.unref();
    pending.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
    const child = getHelper();
    clearTimeout(idleTimer);
    child.ref();
    child.channel?.ref();
    const request: Request = { id, bin, args, input, timeoutMs: opts.timeoutMs, maxStdoutBytes: opts.maxStdoutBytes };
    try {
      child.send(request);
    } catch (err) {
      pending.delete(id);
      clearTimeout(timer);
      resolve({
        code: null,
        signal: null,
        stdout: Buffer.alloc(0),
        stderr: '',
        error: `could not reach the helper: ${(err as Error).message}`,
      });
    }
  });
}
