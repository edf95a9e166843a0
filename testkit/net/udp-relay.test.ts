/**
 * The relay on real UDP sockets over loopback: an echo "server" behind it, a
 * client in front; loss, delay/jitter and a bandwidth cap measured on what
 * actually arrives, per direction.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from './link.ts';
import { UdpRelay, type UdpRelayOptions } from './udp-relay.ts';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  closers.push(() => s.close());
  return s;
}

/** An echo server, a relay in front of it, and a client; `got` collects what returns (seq, one-way delay back). */
async function setup(opts: Omit<UdpRelayOptions, 'target'>) {
  const server = await bound();
  const serverGot: { seq: number; delay: number }[] = [];
  server.on('message', (msg, from) => {
    serverGot.push({ seq: msg.readUInt32BE(0), delay: performance.now() - msg.readDoubleBE(4) });
    msg.writeDoubleBE(performance.now(), 4); // the echo is timed from here
    server.send(msg, from.port, from.address);
  });
  const relay = await UdpRelay.create({ target: { address: '127.0.0.1', port: server.address().port }, ...opts });
  closers.push(() => relay.close());
  const client = await bound();
  const clientGot: { seq: number; delay: number }[] = [];
  client.on('message', (msg) => clientGot.push({ seq: msg.readUInt32BE(0), delay: performance.now() - msg.readDoubleBE(4) }));
  const send = (seq: number, size: number) => {
    const b = Buffer.alloc(size);
    b.writeUInt32BE(seq, 0);
    b.writeDoubleBE(performance.now(), 4);
    client.send(b, relay.address.port, relay.address.address);
  };
  return { relay, send, serverGot, clientGot };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `count` datagrams of `size` bytes at `kbps`, paced in 5 ms batches. */
async function blast(send: (seq: number, size: number) => void, count: number, size: number, kbps: number): Promise<void> {
  const perMs = (kbps * 1000) / 8 / size / 1000;
  const t0 = performance.now();
  let seq = 0;
  while (seq < count) {
    const due = Math.min(count, Math.floor((performance.now() - t0) * perMs) + 1);
    while (seq < due) send(seq++, size);
    await sleep(5);
  }
}

async function settle(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(20);
}

describe('UdpRelay', () => {
  it('relays both ways untouched when unimpaired, and counts', async () => {
    const { relay, send, serverGot, clientGot } = await setup({});
    await blast(send, 200, 500, 2000);
    await settle(() => clientGot.length === 200);
    expect(serverGot.map((g) => g.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(clientGot.length).toBe(200);
    const c = relay.counters();
    expect(c.toServer).toMatchObject({ packets: 200, bytes: 100_000, lost: 0, queueDropped: 0, sent: 200 });
    expect(c.toPeer).toMatchObject({ packets: 200, sent: 200 });
  });

  it('drops the configured share in one direction only', async () => {
    const { relay, send, serverGot, clientGot } = await setup({ toPeer: { loss: 0.1 }, random: seededRandom(7) });
    await blast(send, 3000, 200, 4000);
    await settle(() => serverGot.length === 3000 && relay.counters().toPeer.sent === clientGot.length && clientGot.length > 2500);
    await sleep(100);
    expect(serverGot.length).toBe(3000); // the other direction is clean
    const lossRate = 1 - clientGot.length / 3000;
    expect(lossRate).toBeGreaterThan(0.085);
    expect(lossRate).toBeLessThan(0.115);
    expect(relay.counters().toPeer.lost).toBe(3000 - clientGot.length);
  });

  it('delays by 40 ± 10 ms (never early), reordering within the jitter', async () => {
    const { send, serverGot, clientGot } = await setup({ toServer: { delayMs: 40, jitterMs: 10 }, random: seededRandom(8) });
    await blast(send, 500, 200, 1000);
    await settle(() => clientGot.length === 500);
    const delays = serverGot.map((g) => g.delay).sort((a, b) => a - b);
    expect(delays.length).toBe(500);
    expect(delays[0]!).toBeGreaterThanOrEqual(29.5);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(38);
    expect(mean).toBeLessThan(46); // timers fire late, never early
    expect(delays[Math.floor(delays.length * 0.9)]!).toBeLessThan(60);
    const seqs = serverGot.map((g) => g.seq);
    expect(seqs.filter((s, i) => i > 0 && s < seqs[i - 1]!).length).toBeGreaterThan(10);
    // The way back is not delayed.
    const back = clientGot.map((g) => g.delay).sort((a, b) => a - b);
    expect(back[Math.floor(back.length / 2)]!).toBeLessThan(10);
  });

  it('caps throughput at its rate with a bounded queue, drop-tail beyond it', async () => {
    const { relay, send, clientGot } = await setup({ toPeer: { kbps: 1000, queueBytes: 15_000 } });
    const t0 = performance.now();
    await blast(send, 1000, 1000, 3000); // ~2.7 s at 3 Mbit/s
    await settle(() => relay.counters().toPeer.sent === relay.counters().toPeer.passed, 5000);
    const elapsed = performance.now() - t0;
    const c = relay.counters().toPeer;
    const kbps = (c.sentBytes * 8) / elapsed;
    expect(kbps).toBeGreaterThan(900);
    expect(kbps).toBeLessThan(1100);
    expect(c.queueDropped).toBeGreaterThan(500);
    expect(c.maxQueueBytes).toBeLessThanOrEqual(15_000);
    // Queueing delay is bounded by the queue: 15 kB at 1 Mbit/s = 120 ms.
    const worst = Math.max(...clientGot.map((g) => g.delay));
    expect(worst).toBeLessThan(120 + 40);
    expect(worst).toBeGreaterThan(80);
  });

  it('lifts a cap at run time', async () => {
    const { relay, send } = await setup({ toServer: { kbps: 200 } });
    await blast(send, 100, 1000, 2000);
    expect(relay.counters().toServer.queueDropped).toBeGreaterThan(20);
    relay.setImpairment('toServer', {});
    const before = relay.counters().toServer.queueDropped;
    await blast(send, 100, 1000, 2000);
    expect(relay.counters().toServer.queueDropped).toBe(before);
  });

  it('close is idempotent and stops relaying', async () => {
    const { relay, send, serverGot } = await setup({});
    relay.close();
    relay.close();
    send(1, 100);
    await sleep(50);
    expect(serverGot.length).toBe(0);
  });
});
