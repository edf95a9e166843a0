/**
 * The writer against a target that stops accepting data (a hung disk): it
 * gives up with one error once its backlog is full instead of holding the
 * stream in memory, and closing it does not hang.
 */
import type { StreamTargetChunk } from 'mediabunny';
import { mediabunny } from './mediabunny.ts';
import { describe, expect, it } from 'vitest';
import { programFeed } from './testing.ts';
import { createDepacketizer, Timeline, TrackClock } from './timeline.ts';
import { MediaWriter } from './writer.ts';

describe('MediaWriter', () => {
  it('a stalled target fails the writer once its backlog is full; finalize does not hang', async () => {
    let writes = 0;
    const stalled = new WritableStream<StreamTargetChunk>({
      write: () => {
        writes++;
        return new Promise<void>(() => {}); // never completes
      },
    });
    const errors: Error[] = [];
    const writer = new MediaWriter({
      container: 'mp4',
      layout: 'live',
      target: new (mediabunny().StreamTarget)(stalled),
      video: 'h264',
      audio: { channels: 2, sampleRate: 48000 },
      maxBacklog: 300,
      onError: (e) => errors.push(e),
    });
    const feed = await programFeed({ seconds: 20, video: 'h264' });
    const timeline = new Timeline();
    const readers = {
      video: { d: createDepacketizer('h264'), clock: new TrackClock(90000, timeline) },
      audio: { d: createDepacketizer('opus'), clock: new TrackClock(48000, timeline) },
    };
    for (const [i, p] of feed.packets.entries()) {
      const r = readers[p.info.kind];
      for (const frame of r.d.push(p.packet, p.info.arrivalMs)) {
        timeline.zeroMs ??= frame.arrivalMs;
        writer.write(p.info.kind, r.clock.place(frame));
      }
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(writes).toBeGreaterThan(0); // it did start writing
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/does not keep up: 300 frames waiting/);
    expect(writer.backlog).toBeLessThanOrEqual(300);
    const t0 = Date.now();
    await expect(writer.finalize()).rejects.toThrow(/does not keep up/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
