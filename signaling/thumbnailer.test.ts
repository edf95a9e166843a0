/**
 * The thumbnailer spreads its pictures over the interval: channels that went live together do not
 * get their ffmpeg runs back to back at every interval (seconds of a node's CPU at once), but about
 * one per tick. Real DVR buffers holding real H.264, real ffmpeg.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DvrBuffer } from '../sfu/dvr/buffer.ts';
import { isKeyframeStart } from '../sfu/dvr/keyframe.ts';
import { stopProgramHelper } from '../sfu/recording/spawner.ts';
import { programFeed } from '../sfu/recording/testing.ts';
import type { ProgramSource } from './media.ts';
import { Thumbnailer } from './thumbnails.ts';

const dir = mkdtempSync(join(tmpdir(), 'whipcast-thumbnailer-'));
afterAll(() => {
  stopProgramHelper(); // the thumbnails' ffmpeg helper process would outlive this file (the leak guard fails it)
  rmSync(dir, { recursive: true, force: true });
});

describe('Thumbnailer', () => {
  it('makes about one picture per tick when many channels are due at once, the longest-waiting first', { timeout: 30_000 }, async () => {
    const feed = await programFeed({ seconds: 1.5, video: 'h264' });
    const dvr = new DvrBuffer({ windowMs: 60_000, maxBytes: 64 << 20 });
    for (const p of feed.packets)
      dvr.push({
        at: p.info.arrivalMs,
        kind: p.info.kind,
        keyframe: p.info.kind === 'video' && isKeyframeStart('h264', p.packet),
        data: p.packet,
      });
    const sources: ProgramSource[] = Array.from({ length: 6 }, () => ({
      channelId: randomUUID(),
      dvr,
      video: { mimeType: 'video/H264', clockRate: 90000 },
    }));
    // six channels, a picture each every 6 s, checked every second: one picture per tick
    const starts: { id: string; at: number }[] = [];
    const thumbnails = new Thumbnailer(() => sources, { dir, intervalMs: 6000, tickMs: 1000 });
    thumbnails.on('made', (id, ms) => starts.push({ id, at: performance.now() - ms }));
    thumbnails.on('failed', (id, error) => {
      throw new Error(`${id}: ${error}`);
    });
    const deadline = Date.now() + 20_000;
    while (starts.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await thumbnails.close();
    expect(starts).toHaveLength(6);
    expect(new Set(starts.map((s) => s.id)).size).toBe(6);
    // side by side they would start back to back (each as soon as the previous ffmpeg ended)
    const gaps = starts.slice(1).map((s, i) => s.at - starts[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThan(700);
    dvr.close();
  });
});
