/**
 * Live thumbnails end to end: a real server and mediasoup worker, an OBS-like
 * publisher sending frame-numbered H.264, and the picture the API serves read
 * back after decoding it with ffmpeg — which frame it shows, at what size, and
 * that it moves on with the stream and stays after it ends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { framesOfFile, ObsPublisher, videoSize } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'whipcast-thumbs-'));
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    media: createSfuMedia,
    env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500', RECORDINGS_DIR: dir, THUMBNAIL_INTERVAL_SECONDS: '2' },
  });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The thumbnail's size and the frame number its picture shows. */
async function picture(res: Response, name: string): Promise<{ width: number; height: number; frame: number | null }> {
  const path = join(dir, `${name}.jpg`);
  writeFileSync(path, new Uint8Array(await res.arrayBuffer()));
  const [frame = null] = await framesOfFile(path);
  return { ...(await videoSize(path)), frame };
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function thumbnail(channelId: string, init?: RequestInit): Promise<Response> {
  return server.api(`/api/live/streams/${channelId}/thumbnail`, init);
}

describe('GET /api/live/streams/:id/thumbnail', () => {
  it('is 404 until live, then the newest keyframe (a JPEG of the stream showing a current frame), made again every interval, kept after the end', async () => {
    const { channelId, streamKey } = await server.streamer();
    expect((await thumbnail(channelId)).status).toBe(404);
    expect((await thumbnail('not-a-channel')).status).toBe(404);

    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true });
    try {
      await pub.connected();
      let first: Response | undefined;
      await eventually(async () => (first = await thumbnail(channelId)).status === 200, 15_000, 'a first thumbnail');
      const sentThen = pub.counters.frames - 1;
      expect(first!.headers.get('content-type')).toBe('image/jpeg');
      const etag = first!.headers.get('etag')!;
      expect(etag).toMatch(/^"[\w-]+"$/);
      const a = await picture(first!, 'first');
      // 640×360 stream, 480 px wide thumbnail of the same aspect
      expect({ width: a.width, height: a.height }).toEqual({ width: 480, height: 270 });
      // a keyframe (one a second at 30 fps), sent at most interval + tick + one GOP before we asked
      expect(a.frame).not.toBeNull();
      expect(a.frame! % 30).toBe(0);
      expect(a.frame!).toBeLessThanOrEqual(sentThen);
      expect(sentThen - a.frame!).toBeLessThanOrEqual(30 * 6);

      expect((await thumbnail(channelId, { headers: { 'if-none-match': etag } })).status).toBe(304);

      // a few intervals later: a newer picture
      let next: Response | undefined;
      await eventually(async () => (next = await thumbnail(channelId)).headers.get('etag') !== etag, 10_000, 'a newer thumbnail');
      const sentLater = pub.counters.frames - 1;
      const b = await picture(next!, 'next');
      expect(b.frame!).toBeGreaterThan(a.frame!);
      expect(b.frame! % 30).toBe(0);
      expect(sentLater - b.frame!).toBeLessThanOrEqual(30 * 6);

      expect(await pub.stop()).toBe(200);
      await eventually(
        async () => ((await (await server.api(`/api/live/streams/${channelId}`)).json()) as { status: string }).status === 'offline',
        10_000,
        'offline',
      );
      // the stream ended: once the thumbnailer has let go of the live channel (a tick, 2 s), the last picture stays
      await new Promise((r) => setTimeout(r, 3000));
      const last = await thumbnail(channelId);
      expect(last.status).toBe(200);
      const c = await picture(last, 'last');
      expect(c.frame!).toBeGreaterThanOrEqual(b.frame!);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/whipcast_thumbnails_total\{outcome="ok"\} [1-9]/);
    } finally {
      await pub.stop().catch(() => {});
    }
  }, 60_000);
});
