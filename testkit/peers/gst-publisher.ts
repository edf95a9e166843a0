/** Runs the GStreamer webrtcbin WHIP publisher (testkit/gst/whip_publisher.py) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../gst/whip_publisher.py', import.meta.url));

export interface GstPublisher {
  /** Lines the script printed so far (STATUS, BUNDLE_ONLY, CONNECTED, DELETE, ERROR). */
  readonly lines: string[];
  onLine?: (line: string) => void;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  waitFor(prefix: string, timeoutMs: number): Promise<string>;
  kill(): void;
}

export function startGstPublisher(url: string, token: string, seconds: number): GstPublisher {
  const child: ChildProcess = spawn('/usr/bin/python3', [SCRIPT, url, token, String(seconds)], {
    stdio: ['ignore', 'pipe', process.env.GST_DEBUG ? 'inherit' : 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    lines,
    exited,
    async waitFor(prefix, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line) return line;
        if (lines.some((l) => l.startsWith('ERROR')) || Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`GStreamer publisher: no ${prefix} (output: ${lines.join(' | ')}; stderr: ${stderr.slice(-500)})`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill: () => void child.kill('SIGKILL'),
  };
}
