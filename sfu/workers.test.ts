/** WorkerPool: the size of the UDP socket buffers every publisher and viewer of a worker share, as the kernel reports it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from './logger.ts';
import { Audience } from './audience.ts';
import { MEDIA_CODECS } from './codecs.ts';
import { resolveWorkerBin } from './worker-bin.ts';
import { WorkerPool } from './workers.ts';

/** The receive buffers (`skmem` rb, bytes) of every UDP socket process `pid` holds. */
function udpRecvBuffers(pid: number): number[] {
  const out = execFileSync('ss', ['-uanmp'], { encoding: 'utf8' });
  const mine = out.split(/\n(?=\S)/).filter((entry) => entry.includes(`pid=${pid},`));
  return mine.map((entry) => Number(/skmem:\(r\d+,rb(\d+)/.exec(entry)?.[1] ?? NaN));
}

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

  it('gives the pipes between a channel and its other routers (WHEP viewers) the same buffer', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const asked = 1024 * 1024;
    pool = await start(asked);
    const slot = pool.workers[0]!;
    const router = await slot.worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    const direct = await router.createDirectTransport();
    const producer = await direct.produce({
      kind: 'audio',
      rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] },
    });
    const audience = new Audience({ pool, channelId: 'c', slot, router, maxViewers: 10, logger: silentLogger });
    // a WHEP scheme's first router is another router than the channel's: the program is piped there over UDP
    const seat = audience.seat('whep-test', MEDIA_CODECS);
    const piped = await seat.source(producer);
    expect(piped).not.toBe(producer);
    const buffers = udpRecvBuffers(slot.worker.pid);
    // the WebRtcServer's socket and the pipe's two ends
    expect(buffers.length).toBeGreaterThanOrEqual(3);
    expect(buffers).toEqual(buffers.map(() => 2 * Math.min(asked, rmemMax)));
    audience.close();
  });
});
