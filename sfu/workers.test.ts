/** WorkerPool: the size of the UDP socket buffers every publisher and viewer of a worker share, as the kernel reports it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from './logger.ts';
import { resolveWorkerBin } from './worker-bin.ts';
import { WorkerPool } from './workers.ts';

/** The receive buffer (`skmem` rb, bytes) of the UDP socket process `pid` listens on at 127.0.0.1:`port`. */
function udpRecvBuffer(pid: number, port: number): number {
  const out = execFileSync('ss', ['-uanmp', 'src', `127.0.0.1:${port}`], { encoding: 'utf8' });
  expect(out).toContain(`pid=${pid},`);
  const rb = /skmem:\(r\d+,rb(\d+)/.exec(out);
  if (!rb) throw new Error(`no skmem in: ${out}`);
  return Number(rb[1]);
}

let pool: WorkerPool | null = null;
afterEach(() => {
  pool?.close();
  pool = null;
});

const start = (udpBufferBytes?: number) =>
  WorkerPool.create({
    workerBin: resolveWorkerBin(),
    numWorkers: 1,
    listenIp: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    ...(udpBufferBytes === undefined ? {} : { udpBufferBytes }),
  });

describe('WorkerPool UDP buffers', () => {
  it('gives the shared UDP socket the buffer asked for (the kernel caps it at rmem_max), or leaves the default', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
    const asked = 1024 * 1024;
    pool = await start(asked);
    const slot = pool.workers[0]!;
    const { port } = (await slot.webRtcServer.dump()).udpSockets[0]!;
    // Linux doubles the value set (bookkeeping), after capping it at rmem_max
    expect(udpRecvBuffer(slot.worker.pid, port)).toBe(2 * Math.min(asked, rmemMax));
    pool.close();

    pool = await start(0);
    const plain = pool.workers[0]!;
    const plainPort = (await plain.webRtcServer.dump()).udpSockets[0]!.port;
    expect(udpRecvBuffer(plain.worker.pid, plainPort)).toBe(rmemDefault);
  });
});
