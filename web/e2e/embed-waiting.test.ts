/**
 * The embed page opened before the streamer goes live (issue #13): without `?chat=1` it must still be in the
 * channel's room, so the `stream.live` push reaches its waiting player and the picture starts by itself. Real server
 * with the SFU, real Chromium, an OBS-like publisher with numbered frames read off the picture.
 */
import { fileURLToPath } from 'node:url';
import { frameNumberInPage, launchChromium, ObsPublisher, type Browser } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));

let server: TestServer;
let browser: Browser;
let pub: ObsPublisher | null = null;

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { WEB_DIR, MEDIA_WORKERS: '1' } }),
    launchChromium(),
  ]);
}, 120_000);
afterAll(async () => {
  pub?.drop();
  await browser?.close();
  await server?.close();
});

describe('embed page waiting for the streamer', () => {
  it('without chat, the picture starts by itself when the streamer goes live', { timeout: 60_000 }, async () => {
    const streamer = await server.streamer();
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/embed/${streamer.channelId}`);
    await expect.poll(() => page.locator('video').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamer.streamKey, numbered: true });
    await pub.connected();
    // frame numbers read off the picture, advancing: the waiting player consumed when `stream.live` came
    await expect.poll(() => frameNumberInPage(page, 'video'), { timeout: 8_000 }).toBeGreaterThan(0);
    const first = (await frameNumberInPage(page, 'video'))!;
    await expect.poll(() => frameNumberInPage(page, 'video'), { timeout: 5_000 }).toBeGreaterThan(first + 10);
    await page.close();
  });
});
