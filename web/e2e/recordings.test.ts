/**
 * Issue #14 items 2 and 1 in the web app: past broadcasts on the channel page and the VOD page, in
 * real browsers against the real server, with a frame-numbered OBS-like publisher (the picture
 * carries its frame number, read back off the `<video>`):
 * - while the session is still being recorded the VOD page plays it, says it is still live, and at
 *   the end of what was recorded when it loaded, re-loads the longer file and plays on (Chromium);
 * - after ~20 s of H.264 the channel page lists it (poster, title, date, duration) and links to the
 *   VOD page, which seeks to 10 s and shows frame ≈ 300 (Chromium), with a Download link;
 * - in Firefox, a VP8 channel's recording (WebM) and the H.264 one (MP4) do the same;
 * - the owner deletes it from the channel page after confirming, and it is gone (list and API);
 * - the channel and VOD pages at phone size (390×844) in light and dark: no sideways scroll, no
 *   serious axe finding, screenshots in artifacts/screenshots/.
 * The tests run in order and share the server and browsers.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  frameNumberInPage,
  launchChromium,
  launchFirefox,
  numberedH264Fixture,
  numberedVp8Fixture,
  ObsPublisher,
  type Browser,
  type FirefoxBrowser,
} from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import type { Page as PuppeteerPage } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRecording, ApiRecordingList, ApiStream } from '../../signaling/api.ts';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1366, height: 768 };
const FPS = 30;
/** The numbered fixtures' keyframe interval is 1 s: a seek may land up to one interval off. */
const KEYFRAME_INTERVAL_FRAMES = FPS;
const VIDEO = { seconds: 40 };

let server: TestServer;
let chromium: Browser;
let firefox: FirefoxBrowser;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  await Promise.all([numberedH264Fixture(VIDEO), numberedVp8Fixture(VIDEO)]); // encoded once and cached
  [server, chromium, firefox] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
    launchFirefox(),
  ]);
}, 300_000);
afterAll(async () => {
  await firefox?.close();
  await chromium?.close();
  await server?.close();
});

async function channel() {
  const user = await server.register();
  const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as ApiStream;
  const key = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
  return { streamId: me.id, key: key.streamKey, token: user.token, auth: user.auth };
}

async function list(streamId: string): Promise<ApiRecording[]> {
  return ((await (await server.api(`/api/live/streams/${streamId}/recordings`)).json()) as ApiRecordingList).recordings;
}

async function eventually<T>(get: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Publishes `seconds` of numbered video, then stops like OBS; resolves with the finished recording. */
async function broadcast(codec: 'H264' | 'VP8', seconds: number, whileLive?: (streamId: string) => Promise<void>) {
  const ch = await channel();
  const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: ch.key, numbered: true, codec, video: VIDEO });
  try {
    await pub.connected();
    const started = Date.now();
    await whileLive?.(ch.streamId);
    await sleep(Math.max(0, seconds * 1000 - (Date.now() - started)));
  } finally {
    await pub.stop();
  }
  const rec = await eventually(async () => (await list(ch.streamId)).find((r) => r.endedAt !== null), 60_000, 'the recording to finish');
  return { ...ch, rec };
}

/** A page's `<video>`: its time, duration, and seeking. Works with playwright (Chromium) and puppeteer (Firefox) pages. */
type AnyPage = Page | PuppeteerPage;
const evaluate = <T>(page: AnyPage, fn: string): Promise<T> => (page as Page).evaluate(fn) as Promise<T>;
const VIDEO_SEL = '[data-testid="vod-video"]';

async function waitMetadata(page: AnyPage): Promise<void> {
  await eventually(() => evaluate<boolean>(page, `document.querySelector('${VIDEO_SEL}')?.readyState >= 1`), 20_000, 'video metadata');
}

/** Seeks the VOD to `t` seconds and reads the frame number off the picture shown there. */
async function frameAt(page: AnyPage, t: number): Promise<number> {
  await evaluate(
    page,
    `new Promise((resolve) => { const v = document.querySelector('${VIDEO_SEL}'); v.pause(); v.addEventListener('seeked', resolve, { once: true }); v.currentTime = ${t}; })`,
  );
  return eventually(async () => (await frameNumberInPage(page, VIDEO_SEL)) ?? null, 10_000, `a numbered picture at ${t} s`);
}

/** The document is no wider than the window: nothing to scroll sideways. */
const overflowX = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

let axeSource = '';
async function axeSerious(page: Page): Promise<string[]> {
  axeSource ||= await readFile(fileURLToPath(import.meta.resolve('axe-core/axe.min.js')), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    type Axe = { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> };
    return (window as Window & { axe?: Axe }).axe!.run();
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

describe('past broadcasts in the web app', () => {
  let h264: Awaited<ReturnType<typeof broadcast>>;

  it(
    'H.264 in Chromium: plays while still recorded and continues past what it first loaded; afterwards listed on the channel page, seeks to 10 s = frame ≈ 300',
    { timeout: 180_000 },
    async () => {
      h264 = await broadcast('H264', 20, async (streamId) => {
        // while live: the VOD page plays what is recorded so far and grows
        const rec = await eventually(async () => (await list(streamId)).find((r) => r.durationMs >= 4000), 20_000, '4 s recorded');
        const page = await chromium.context.newPage();
        try {
          await page.goto(`${server.url}/videos/${rec.id}`);
          await page.getByTestId('still-live').waitFor();
          expect(await page.getByTestId('vod-download').count(), 'no download while recorded').toBe(0);
          await waitMetadata(page);
          const loaded = await page.evaluate((sel) => document.querySelector<HTMLVideoElement>(sel)!.duration, VIDEO_SEL);
          expect(loaded).toBeGreaterThan(2);
          expect(loaded).toBeLessThan(15);
          const early = await frameAt(page, 1);
          expect(early, 'the picture at 1 s').toBeGreaterThanOrEqual(0);
          // play the last second of what was loaded: at its end the page loads the longer file and plays on
          await page.evaluate(
            ([sel, t]) => {
              const v = document.querySelector<HTMLVideoElement>(sel as string)!;
              v.muted = true;
              v.currentTime = (t as number) - 1;
              return v.play();
            },
            [VIDEO_SEL, loaded] as const,
          );
          await eventually(
            () =>
              page.evaluate((sel) => document.querySelector<HTMLVideoElement>(sel)!.currentTime, VIDEO_SEL).then((t) => t > loaded + 1.5),
            20_000,
            `playback past the ${loaded.toFixed(1)} s first loaded`,
          );
          const later = await eventually(
            async () => (await frameNumberInPage(page, VIDEO_SEL)) ?? null,
            10_000,
            'a picture past the first load',
          );
          console.info(`while live: ${loaded.toFixed(1)} s loaded; frame ${early} at 1 s, then frame ${later} after playing past it`);
          expect(later - early, `frame ${later} after frame ${early}`).toBeGreaterThan((loaded - 1) * FPS);
        } finally {
          await page.close();
        }
      });
      const { rec, streamId } = h264;
      expect(rec.durationMs).toBeGreaterThan(18_000);
      expect(rec.streamId).toBe(streamId);

      // anyone: the channel page lists it, linking to its VOD page
      const page = await chromium.context.newPage();
      try {
        await page.goto(`${server.url}/live/${streamId}`);
        const item = page.locator(`[data-recording="${rec.id}"]`);
        await item.waitFor();
        expect(await item.getByRole('button').count(), 'no Delete for a viewer').toBe(0);
        await eventually(
          () => item.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0),
          10_000,
          'poster',
        );
        const text = await item.textContent();
        expect(text).toContain(
          `${Math.floor(rec.durationMs / 1000 / 60)}:${String(Math.round(rec.durationMs / 1000) % 60).padStart(2, '0')}`,
        );
        await item.getByRole('link').click();
        await page.waitForURL((u) => u.pathname === `/videos/${rec.id}`);
        await waitMetadata(page);
        expect(await page.getByTestId('still-live').count()).toBe(0);
        expect(await page.getByTestId('vod-download').getAttribute('href')).toBe(rec.downloadUrl);
        const first = await frameAt(page, 0.5);
        const at10 = await frameAt(page, 10);
        console.info(`Chromium, H.264 VOD of ${rec.durationMs} ms: frame ${first} at 0.5 s, frame ${at10} at 10 s`);
        expect(first, 'the recording starts near the first frame sent').toBeLessThan(2 * KEYFRAME_INTERVAL_FRAMES);
        expect(Math.abs(at10 - 10 * FPS), `frame ${at10} at 10 s (first ${first})`).toBeLessThanOrEqual(KEYFRAME_INTERVAL_FRAMES);
        expect(Math.abs(at10 - first - 9.5 * FPS), `frame ${at10} at 10 s, ${first} at 0.5 s`).toBeLessThanOrEqual(3);
      } finally {
        await page.close();
      }
    },
  );

  it(
    'Firefox: the VOD page of a VP8 (WebM) and of an H.264 (MP4) recording seeks to 10 s = frame ≈ 300',
    { timeout: 180_000 },
    async () => {
      const { rec } = await broadcast('VP8', 20);
      const page = await firefox.newPage();
      try {
        await page.goto(`${server.url}/videos/${rec.id}`);
        await page.waitForSelector(VIDEO_SEL);
        await waitMetadata(page);
        const first = await frameAt(page, 0.5);
        const at10 = await frameAt(page, 10);
        console.info(`Firefox, VP8 VOD of ${rec.durationMs} ms: frame ${first} at 0.5 s, frame ${at10} at 10 s`);
        expect(first).toBeLessThan(2 * KEYFRAME_INTERVAL_FRAMES);
        expect(Math.abs(at10 - 10 * FPS), `frame ${at10} at 10 s (first ${first})`).toBeLessThanOrEqual(KEYFRAME_INTERVAL_FRAMES);
        expect(Math.abs(at10 - first - 9.5 * FPS), `frame ${at10} at 10 s, ${first} at 0.5 s`).toBeLessThanOrEqual(3);
        // the H.264 (MP4) recording plays in Firefox's <video> too (its media element decodes H.264 through the
        // system's libavcodec, unlike its WebRTC stack, which needs OpenH264)
        await page.goto(`${server.url}/videos/${h264.rec.id}`);
        await page.waitForSelector(VIDEO_SEL);
        await waitMetadata(page);
        const h264At10 = await frameAt(page, 10);
        console.info(`Firefox, H.264 VOD: frame ${h264At10} at 10 s`);
        expect(Math.abs(h264At10 - 10 * FPS)).toBeLessThanOrEqual(KEYFRAME_INTERVAL_FRAMES);
        expect(await page.$('[data-testid="vod-error"]')).toBeNull();
      } finally {
        await page.close();
      }
    },
  );

  it('phone size in light and dark (and desktop): channel list and VOD page fit, pass axe, screenshots', { timeout: 120_000 }, async () => {
    const { rec, streamId } = h264;
    for (const [size, scheme] of [
      ['phone', 'light'],
      ['phone', 'dark'],
      ['desktop', 'light'],
    ] as const) {
      for (const [name, path] of [
        ['past-broadcasts', `/live/${streamId}`],
        ['vod', `/videos/${rec.id}`],
      ] as const) {
        const page = await chromium.context.newPage();
        try {
          await page.setViewportSize(size === 'phone' ? PHONE : DESKTOP);
          await page.emulateMedia({ colorScheme: scheme });
          await page.goto(server.url + path);
          if (name === 'vod') await waitMetadata(page);
          else {
            await page.locator(`[data-recording="${rec.id}"] img`).waitFor();
            await page.getByRole('heading', { name: 'Past broadcasts' }).scrollIntoViewIfNeeded();
          }
          await page.waitForLoadState('networkidle').catch(() => {});
          const label = `${name} ${size} ${scheme}`;
          expect(await overflowX(page), `${label}: no sideways scroll`).toBeLessThanOrEqual(0);
          expect(await page.title(), `${label}: title`).toMatch(/ · whipcast$/);
          expect(await axeSerious(page), `${label}: axe`).toEqual([]);
          await page.screenshot({ path: `${SHOTS}${name}-${size}-${scheme}.png` });
        } finally {
          await page.close();
        }
      }
    }
  });

  it('the owner deletes it from the channel page, after confirming; it is gone', { timeout: 60_000 }, async () => {
    const { rec, streamId, token } = h264;
    const page = await chromium.context.newPage();
    try {
      await page.goto(server.url);
      await page.evaluate((t) => localStorage.setItem('whipcast.token', t), token);
      await page.goto(`${server.url}/live/${streamId}`);
      const item = page.locator(`[data-recording="${rec.id}"]`);
      await item.getByRole('button', { name: /^Delete / }).click();
      expect(
        (await list(streamId)).map((r) => r.id),
        'nothing deleted before confirming',
      ).toContain(rec.id);
      await item.getByRole('button', { name: 'Yes, delete' }).click();
      await item.waitFor({ state: 'detached' });
      await page.getByTestId('no-past-broadcasts').waitFor();
      expect(await list(streamId)).toEqual([]);
      expect((await server.api(`/api/recordings/${rec.id}`)).status).toBe(404);
      await page.goto(`${server.url}/videos/${rec.id}`);
      await page.getByRole('heading', { name: 'Video not found' }).waitFor();
    } finally {
      await page.close();
    }
  });
});
