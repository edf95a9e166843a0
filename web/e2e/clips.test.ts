/**
 * Clips in the web app, in headless Chromium against the real server with
 * media: a signed-in viewer watching a frame-numbered OBS stream presses Clip,
 * picks 10 s and gets a link; the clip's page plays its own file, and the
 * frame numbers read off that picture are the ones that were live when the
 * viewer pressed the button (the last one within a few frames of what the
 * viewer's screen showed, the first one 10 s before, from a keyframe).
 */
import { fileURLToPath } from 'node:url';
import { frameNumberInPage, launchChromium, numberedH264Fixture, ObsPublisher, type Browser } from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const VIDEO = { seconds: 60 };
const FPS = 30;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO);
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
  ]);
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Shows the clip page's video at `time` seconds (paused) and reads the frame number off its picture. */
async function frameAt(page: Page, time: number | 'end'): Promise<number | null> {
  await page.evaluate(async (t) => {
    const v = document.querySelector<HTMLVideoElement>('[data-testid="clip-video"]')!;
    v.pause();
    const target = t === 'end' ? v.duration - 0.01 : t;
    await new Promise<void>((resolve) => {
      v.addEventListener('seeked', () => resolve(), { once: true });
      v.currentTime = target;
    });
  }, time);
  return frameNumberInPage(page, '[data-testid="clip-video"]');
}

describe('clips in the web app', () => {
  it('a signed-in viewer presses Clip; the clip page plays the frames that were live', { timeout: 150_000 }, async () => {
    const owner = await server.register();
    const stream = (await (await server.api('/api/live/streams/me', { headers: owner.auth })).json()) as { id: string };
    const key = ((await (await server.api('/api/live/streams/me/key', { headers: owner.auth })).json()) as { streamKey: string }).streamKey;
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key, numbered: true, video: VIDEO });
    try {
      await pub.connected();
      const viewer = await server.register();
      const page = await browser.context.newPage();
      await page.addInitScript((token) => localStorage.setItem('whipcast.token', token), viewer.token);
      await page.goto(`${server.url}/live/${stream.id}`);
      const clipButton = page.getByRole('button', { name: 'Clip', exact: true });
      await clipButton.waitFor({ timeout: 30_000 });
      await expect.poll(() => frameNumberInPage(page, 'video'), { timeout: 15_000 }).not.toBeNull();
      // let 12 s of the stream into the DVR buffer
      await expect.poll(() => pub.counters.frames, { timeout: 30_000, interval: 500 }).toBeGreaterThan(12 * FPS);

      // on a phone the Clip button keeps the control bar to one row, with nothing to scroll sideways
      await page.setViewportSize({ width: 390, height: 844 });
      const fullscreen = page.getByRole('button', { name: 'Full screen' });
      const [clipBox, fsBox] = [await clipButton.boundingBox(), await fullscreen.boundingBox()];
      expect(Math.abs(clipBox!.y - fsBox!.y), 'Clip and Full screen on one row').toBeLessThan(2);
      expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);

      await clipButton.click();
      await page.getByLabel('Length').selectOption('10');
      const shown = (await frameNumberInPage(page, 'video'))!;
      expect(shown).not.toBeNull();
      const sentBefore = pub.counters.frames;
      await page.getByRole('button', { name: 'Create clip' }).click();
      const link = page.getByTestId('clip-link');
      await link.waitFor({ timeout: 5000 });
      const sentAfter = pub.counters.frames;
      const url = (await link.textContent())!.trim();
      expect(url).toMatch(new RegExp(`^${server.url}/clips/[0-9a-f-]{36}$`));

      // the clip page: title, channel link, download; its own player plays the clip
      const clipPage = await browser.context.newPage();
      await clipPage.goto(url);
      const video = clipPage.getByTestId('clip-video');
      await video.waitFor();
      await expect.poll(() => clipPage.title()).toMatch(/^Clip: .+ · whipcast$/);
      expect(await clipPage.getByTestId('channel-link').getAttribute('href')).toBe(`/live/${stream.id}`);
      const download = clipPage.getByRole('link', { name: 'Download' });
      expect(await download.getAttribute('href')).toMatch(/^\/api\/clips\/[0-9a-f-]{36}\/download$/);
      expect(await clipPage.getByRole('button', { name: 'Delete' }).count()).toBe(1); // the creator may delete it

      const duration = await clipPage.evaluate(async () => {
        const v = document.querySelector<HTMLVideoElement>('[data-testid="clip-video"]')!;
        if (v.readyState < 1) await new Promise((r) => v.addEventListener('loadedmetadata', r, { once: true }));
        return v.duration;
      });
      expect(duration).toBeGreaterThanOrEqual(9.9);
      expect(duration).toBeLessThanOrEqual(11.1);

      // it plays: time moves on and the picture shows later frames
      const startFrame = await frameAt(clipPage, 0);
      await clipPage.evaluate(async () => {
        const v = document.querySelector<HTMLVideoElement>('[data-testid="clip-video"]')!;
        v.muted = true;
        await v.play();
      });
      await expect
        .poll(() => clipPage.evaluate(() => document.querySelector<HTMLVideoElement>('video')!.currentTime), { timeout: 10_000 })
        .toBeGreaterThan(1);
      const playing = await frameNumberInPage(clipPage, '[data-testid="clip-video"]');

      const endFrame = await frameAt(clipPage, 'end');
      console.log(`viewer saw ${shown} (sent ${sentBefore}–${sentAfter}); clip plays ${startFrame}…${playing}…${endFrame}`);
      expect(startFrame).not.toBeNull();
      expect(endFrame).not.toBeNull();
      // ends at what was live when the viewer pressed the button: at or after what their screen showed, not after what was sent
      expect(endFrame!).toBeGreaterThanOrEqual(shown - 3);
      expect(endFrame!).toBeLessThanOrEqual(sentAfter - 1);
      // starts 10 s earlier, at the keyframe at or before (one a second)
      expect(startFrame! % FPS).toBe(0);
      expect(startFrame!).toBeLessThanOrEqual(endFrame! - 10 * FPS + 1);
      expect(startFrame!).toBeGreaterThanOrEqual(endFrame! - 11 * FPS);
      expect(playing!).toBeGreaterThan(startFrame! + FPS / 2);
      expect(playing!).toBeLessThan(endFrame!);

      // behind live: the viewer goes back 10 s and clips 5 s — the clip ends at what their screen shows, not at live
      await page.setViewportSize({ width: 1366, height: 768 });
      await page.getByRole('button', { name: 'Back 10 seconds' }).click();
      await expect.poll(() => page.getByTestId('dvr-position').first().textContent(), { timeout: 10_000 }).toMatch(/^-0:\d\d$/);
      await page.waitForTimeout(2000); // the server reports the position once a second
      const create = page.getByRole('button', { name: 'Create clip' });
      if (!(await create.isVisible())) await clipButton.click();
      await page.getByLabel('Length').selectOption('5');
      const shownBehind = (await frameNumberInPage(page, 'video'))!;
      const sentBehind = pub.counters.frames;
      expect(sentBehind - shownBehind).toBeGreaterThan(8 * FPS);
      await create.click();
      await expect.poll(() => link.textContent(), { timeout: 5000 }).not.toBe(url);
      await clipPage.goto((await link.textContent())!.trim());
      await clipPage.getByTestId('clip-video').waitFor();
      await clipPage.evaluate(async () => {
        const v = document.querySelector<HTMLVideoElement>('[data-testid="clip-video"]')!;
        if (v.readyState < 1) await new Promise((r) => v.addEventListener('loadedmetadata', r, { once: true }));
      });
      const behindStart = await frameAt(clipPage, 0);
      const behindEnd = await frameAt(clipPage, 'end');
      console.log(`behind live: viewer saw ${shownBehind} (sent ${sentBehind}); clip ${behindStart}…${behindEnd}`);
      // it holds the viewer's picture and ends within 3 s after it, far from live: the player sends the DVR
      // position the server reports, which runs 1.4–2.1 s ahead of the picture on screen here
      expect(behindEnd!).toBeGreaterThanOrEqual(shownBehind);
      expect(behindEnd!).toBeLessThanOrEqual(shownBehind + 3 * FPS);
      expect(behindEnd!).toBeLessThan(sentBehind - 8 * FPS);
      expect(behindStart! % FPS).toBe(0);
      expect(behindStart!).toBeLessThanOrEqual(behindEnd! - 5 * FPS + 1);
      expect(behindStart!).toBeGreaterThanOrEqual(behindEnd! - 6 * FPS);
    } finally {
      await pub.stop().catch(() => {});
    }
  });
});
