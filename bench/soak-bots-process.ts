/** A forked bots process of the soak (bench/soak-bots.ts), driven over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SoakBotsCommand, SoakBotsReply, SoakPublisherSpec, SoakViewerSpec } from './soak-protocol.ts';

type Result = Extract<SoakBotsReply, { t: 'result' }>;

/** Options of {@link SoakBots.start}. */
export interface SoakBotsOptions {
  publishers: SoakPublisherSpec[];
  viewers: SoakViewerSpec[];
  /** Time between two viewer joins in this process, ms. */
  joinSpacingMs: number;
  /** Longest wait for every publisher and viewer to be up, ms (default 120 000). */
  readyTimeoutMs?: number;
}

/**
 * One bots process: its own event loop and libdatachannel threads, so a few
 * dozen bots share a process instead of a hundred, and a stall of one
 * process's event loop is seen (and reported) as the bots', not the server's.
 */
export class SoakBots {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #closed = false;
  /** Viewers whose join failed, with why (they are failures of the run). */
  joinErrors: string[] = [];

  private constructor(readonly name: string) {
    this.#child = fork(fileURLToPath(new URL('./soak-bots.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
  }

  get pid(): number | null {
    return this.#child.pid ?? null;
  }

  /** Forks the process, starts its publishers, then its viewers; resolves when all are up (or failed to join). */
  static async start(name: string, opts: SoakBotsOptions): Promise<SoakBots> {
    const bots = new SoakBots(name);
    try {
      await bots.#next('up', 30_000);
      bots.#send({ t: 'start', publishers: opts.publishers, viewers: opts.viewers, joinSpacingMs: opts.joinSpacingMs });
      const ready = await bots.#next('ready', opts.readyTimeoutMs ?? 120_000);
      bots.joinErrors = ready.joinErrors;
      return bots;
    } catch (err) {
      await bots.close();
      throw err;
    }
  }

  /** Starts every viewer's clock: from now on each must keep receiving. */
  measure(maxGapMs: number, maxLossFraction: number): void {
    this.#send({ t: 'measure', maxGapMs, maxLossFraction });
  }

  /** Ends the measured window; the process's verdict. */
  async finish(): Promise<Result> {
    this.#send({ t: 'finish' });
    return this.#next('result', 30_000);
  }

  /** Idempotent: the process closes its peers and exits (killed if it does not within 5 s). */
  async close(): Promise<void> {
    if (this.#closed) return this.#exited;
    this.#closed = true;
    if (this.#child.connected) this.#send({ t: 'close' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  #send(m: SoakBotsCommand): void {
    this.#child.send(m);
  }

  #next<T extends SoakBotsReply['t']>(t: T, timeoutMs: number): Promise<Extract<SoakBotsReply, { t: T }>> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#child.off('message', onMessage);
        this.#child.off('exit', onExit);
      };
      const onMessage = (raw: unknown) => {
        const m = raw as SoakBotsReply;
        if (m.t === 'error') {
          done();
          reject(new Error(`soak bots ${this.name}: ${m.message}`));
        } else if (m.t === t) {
          done();
          resolve(m as Extract<SoakBotsReply, { t: T }>);
        }
      };
      const onExit = () => {
        done();
        reject(new Error(`soak bots ${this.name} exited before '${t}'`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`soak bots ${this.name}: no '${t}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#child.on('message', onMessage);
      this.#child.once('exit', onExit);
    });
  }
}
