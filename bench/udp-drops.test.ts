/**
 * A process that holds a UDP socket and never reads it: the datagrams sent to it overflow its
 * receive buffer, and the drops are put on that process, not on the sender or anyone else.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sampleUdpDrops, udpDropsByOwner } from './udp-drops.ts';

const SINK = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
time.sleep(30)
`;

describe('udpDropsByOwner', () => {
  it('puts the drops of a full receive buffer on the process whose socket it is', { timeout: 20_000 }, async () => {
    const sink = spawn('python3', ['-c', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(sink.stdout, 'data')) as [Buffer];
      const port = Number(line.toString().trim());
      const before = sampleUdpDrops();
      const sender = createSocket('udp4');
      const payload = Buffer.alloc(1000);
      for (let i = 0; i < 200; i++) await new Promise<void>((r) => sender.send(payload, port, '127.0.0.1', () => r()));
      sender.close();
      const drops = udpDropsByOwner(before, sampleUdpDrops(), { sink: [sink.pid!], me: [process.pid] });
      // a 4 KiB buffer (the kernel doubles it) holds a handful of 1000-byte datagrams; the rest are dropped
      expect(drops.sink).toBeGreaterThan(150);
      expect(drops.me).toBe(0);
    } finally {
      sink.kill();
    }
  });

  it('counts a socket of no listed owner as other', () => {
    const s = sampleUdpDrops();
    const inode = [...s.keys()][0];
    if (inode === undefined) return; // no UDP socket on this machine: nothing to attribute
    const before = new Map(s);
    before.set(inode, s.get(inode)! - 5);
    expect(udpDropsByOwner(before, s, {}).other).toBeGreaterThanOrEqual(5);
  });
});
