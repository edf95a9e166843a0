/**
 * A pool of mediasoup workers, one per core by default, each with a
 * WebRtcServer so every WebRTC transport of that worker shares one UDP and one
 * TCP port. A worker that dies is replaced; `onWorkerLost` tells the owner so
 * it can rebuild what lived there.
 */
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import type { SfuLogger } from './logger.ts';
import { withEnv, type WorkerAllocator } from './worker-allocator.ts';

export interface WorkerPoolOptions {
  workerBin: string;
  numWorkers: number;
  listenIp: string;
  /** Address put in ICE candidates (public IP behind NAT); default: the listen IP. */
  announcedAddress?: string;
  /** Worker i listens on `port + i`; 0 = random ports. */
  port: number;
  /** Receive and send buffer of each worker's UDP socket, bytes (0 or absent: the kernel's default). */
  udpBufferBytes?: number;
  /** The workers' memory allocator (default: the system's malloc). */
  allocator?: WorkerAllocator;
  logger: SfuLogger;
}

export interface PooledWorker {
  index: number;
  worker: types.Worker;
  webRtcServer: types.WebRtcServer;
  /** Routers and transports created on it, for least-loaded placement. */
  load: number;
}

export class WorkerPool {
  readonly #slots: PooledWorker[] = [];
  #closed = false;
  onWorkerLost: (index: number) => void = () => {};

  private constructor(private readonly opts: WorkerPoolOptions) {}

  static async create(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      for (let i = 0; i < opts.numWorkers; i++) pool.#slots.push(await pool.#start(i));
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  async #start(index: number): Promise<PooledWorker> {
    const { opts } = this;
    const allocator: WorkerAllocator = opts.allocator ?? { name: 'system', env: {} };
    const worker = await withEnv(allocator.env, () =>
      mediasoup.createWorker({ workerBin: opts.workerBin, logLevel: 'warn', appData: { index } }),
    );
    const port = opts.port ? opts.port + index : 0;
    const announced = opts.announcedAddress && opts.announcedAddress !== opts.listenIp ? { announcedAddress: opts.announcedAddress } : {};
    // one socket carries every publisher and viewer of the worker: keyframe bursts of many channels need room
    const buffers = this.udpBuffers;
    let webRtcServer: types.WebRtcServer;
    try {
      webRtcServer = await worker.createWebRtcServer({
        listenInfos: [
          { protocol: 'udp', ip: opts.listenIp, port, ...announced, ...buffers },
          { protocol: 'tcp', ip: opts.listenIp, port, ...announced },
        ],
      });
    } catch (err) {
      worker.close();
      throw new Error(`could not open media port ${port || '(random)'} on ${opts.listenIp}: ${(err as Error).message}`);
    }
    const slot: PooledWorker = { index, worker, webRtcServer, load: 0 };
    worker.on('died', (err) => {
      opts.logger.error({ err, worker: index, pid: worker.pid }, 'mediasoup worker died; replacing it');
      void this.#replace(index);
    });
    opts.logger.info(
      { worker: index, pid: worker.pid, port: webRtcServer.id && port, allocator: allocator.name },
      'mediasoup worker started',
    );
    return slot;
  }

  async #replace(index: number): Promise<void> {
    if (this.#closed) return;
    try {
      this.#slots[index] = await this.#start(index);
    } catch (err) {
      this.opts.logger.error({ err, worker: index }, 'could not restart mediasoup worker');
    }
    this.onWorkerLost(index);
  }

  /** Receive and send buffer sizes for this node's UDP sockets (`udpBufferBytes`; empty: the kernel's default). */
  get udpBuffers(): { recvBufferSize?: number; sendBufferSize?: number } {
    const b = this.opts.udpBufferBytes;
    return b ? { recvBufferSize: b, sendBufferSize: b } : {};
  }

  get workers(): readonly PooledWorker[] {
    return this.#slots;
  }

  /** The live worker with the least load. */
  leastLoaded(): PooledWorker {
    const alive = this.#slots.filter((s) => !s.worker.closed);
    if (!alive.length) throw new Error('no mediasoup worker is running');
    return alive.reduce((a, b) => (b.load < a.load ? b : a));
  }

  slotOf(worker: types.Worker): PooledWorker | undefined {
    return this.#slots.find((s) => s.worker === worker);
  }

  /** Serving: at least one worker runs (a lost one is being replaced; leastLoaded() skips it). */
  ready(): boolean {
    return !this.#closed && this.#slots.some((s) => !s.worker.closed);
  }

  /** Every worker runs. */
  complete(): boolean {
    return !this.#closed && this.#slots.length > 0 && this.#slots.every((s) => !s.worker.closed);
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#slots) s.worker.close();
  }
}
