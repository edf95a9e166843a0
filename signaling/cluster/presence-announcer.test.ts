import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { localBus } from './bus.ts';
import type { ClusterMessage } from './events.ts';
import { PresenceAnnouncer, ROOMS_PER_EVENT } from './presence-announcer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recordingBus() {
  const bus = localBus('node-a', pino({ level: 'silent' }));
  const events: ClusterMessage[] = [];
  bus.subscribe((m) => events.push(m));
  return { bus, events };
}

describe('PresenceAnnouncer', () => {
  it('announces changes in many rooms in a few events, at most one announcement per interval', async () => {
    const { bus, events } = recordingBus();
    const announcer = new PresenceAnnouncer(bus, 250);
    const rooms = Array.from({ length: 300 }, () => randomUUID());
    const last = new Map<string, [number, number]>();
    // 300 rooms each change 3 times, spread over ~1 s
    const t0 = Date.now();
    for (let round = 0; round < 3; round++)
      for (const [i, room] of rooms.entries()) {
        if (i % 30 === 0) await sleep(10);
        const counts: [number, number] = [round * 10 + (i % 7), i % 3];
        last.set(room, counts);
        announcer.set(room, ...counts);
      }
    const elapsed = Date.now() - t0;
    await sleep(300);
    announcer.close();
    // the announcements (each split into events of ≤ ROOMS_PER_EVENT rooms) are ≥ 250 ms apart
    const batches = events.filter((m) => m.t === 'presences');
    const announcements = Math.ceil(elapsed / 250) + 1;
    expect(batches.length).toBeLessThanOrEqual(announcements * Math.ceil(rooms.length / ROOMS_PER_EVENT));
    expect(batches.every((m) => m.t === 'presences' && m.rooms.length <= ROOMS_PER_EVENT)).toBe(true);
    expect(batches.every((m) => JSON.stringify(m).length < 7900)).toBe(true);
    // the other nodes end with every room's last counts
    const seen = new Map<string, [number, number]>();
    for (const m of batches) if (m.t === 'presences') for (const [room, v, c] of m.rooms) seen.set(room, [v, c]);
    expect(seen).toEqual(last);
  });

  it('announces at once after a quiet interval, and everything on announce()', async () => {
    const { bus, events } = recordingBus();
    const announcer = new PresenceAnnouncer(bus, 250);
    announcer.set('r1', 1, 0);
    expect(events).toHaveLength(1); // nothing sent in the last interval: no wait
    announcer.set('r2', 2, 0);
    expect(events).toHaveLength(1); // within the interval: waits
    announcer.announce([['r3', 3, 1]]);
    expect(events.at(-1)).toMatchObject({
      t: 'presences',
      rooms: [
        ['r2', 2, 0],
        ['r3', 3, 1],
      ],
    });
    await sleep(300);
    expect(events).toHaveLength(2);
    announcer.close();
    announcer.set('r4', 1, 1);
    await sleep(300);
    expect(events).toHaveLength(2);
  });
});
