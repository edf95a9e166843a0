/**
 * Issue #17 goal 4: click to picture. A viewer opens a live channel's page in
 * Chromium (a fresh context each time: no cache, no storage) and the test reads
 * off the picture when the first frame of the stream was presented, counted
 * from navigation start (`clickToPicture`: requestVideoFrameCallback, the frame
 * number drawn in the picture, the page's own clock). Publisher: OBS-like,
 * 1280x720 H.264 at 2.5 Mbit/s, a keyframe every 2 s, frame-numbered.
 *
 * The player must reach the picture with one socket round trip after the
 * server's hello (`rtc.watch`): none of the step-by-step requests
 * (capabilities, transport, consume, connect, resume) before it. Its time is
 * bounded against a bare page that does only the WebRTC part of watching with
 * the same protocol (`bench/c2p/bare-player.ts`), served by the same server
 * and visited in turn with the channel page, so the machine's speed and load
 * fall on both alike: an absolute bound on 2 shared cores measures the
 * machine. The goal (p50 < 400 ms, p95 < 700 ms) is printed, not asserted.
 */
import {
  CLICK_TO_PICTURE_CHROMIUM_ARGS,
  launchChromiumBrowser,
  numberedH264Fixture,
  ObsPublisher,
  registerStreamer,
  summarizePictures,
  waitLive,
  type PictureSample,
  type PictureSummary,
} from '@whipcast/testkit';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { C2pSite, visitInTurn } from '../../bench/c2p-pages.ts';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const VIDEO = { width: 1280, height: 720, kbps: 2500, keyframeInterval: 2, seconds: 60 };
const SAMPLES = 12;
/**
 * Asserted: the channel page's p50 and p95 over the bare page's, in the same run. Measured on the 2-core VM under
 * other engineers' load: p50 ×1.46–1.60 (×1.96 in one bench run of the page before it held chat back); the page
 * made to wait 500 ms before watching: ×2.70, and this bound fails it while the bare page's p50 is under ~1.2 s.
 * p95 (the slowest of 12) ×1.16–2.23.
 */
const RATIO_BOUND = { p50: 2, p95: 3 };
/** Requests the old, step-by-step path made before the picture. */
const STEP_BY_STEP = ['rtc.capabilities', 'rtc.transport', 'rtc.consume', 'rtc.connect', 'rtc.resume'];

let site: C2pSite;
let server: TestServer;
let browser: Browser;
let pub: ObsPublisher | null = null;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO); // encoded once and cached; not inside the test's timeout
  site = await C2pSite.build();
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR: site.dir } }),
    launchChromiumBrowser({ args: CLICK_TO_PICTURE_CHROMIUM_ARGS }),
  ]);
}, 300_000);
afterAll(async () => {
  pub?.drop();
  await browser?.close();
  await server?.close();
  await site?.close();
});

describe('click to picture', () => {
  it(
    `a channel page shows the stream's first picture after one socket round trip, within a bound of a bare WebRTC page's time`,
    { timeout: 240_000 },
    async () => {
      const streamer = await registerStreamer(server.url);
      pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, numbered: true, video: VIDEO });
      await pub.connected();
      await waitLive(server.url, streamer.id);
      // a GOP in the cache, as for any viewer who arrives after the stream started
      await new Promise((r) => setTimeout(r, 2500));
      const visits = await visitInTurn(browser, site.pages(server.url, streamer.id), SAMPLES);
      const page = summarizePictures(visits.whipcast);
      const bare = summarizePictures(visits.baseline);
      const ratio = { p50: page.p50 / bare.p50, p95: page.p95 / bare.p95 };
      const line = (name: string, s: PictureSummary, all: PictureSample[]) =>
        `${name}: p50 ${s.p50} ms, p95 ${s.p95} ms, max ${s.max} ms; all: ${all.map((v) => v.pictureMs).join(', ')}`;
      console.log(
        `click to picture over ${SAMPLES} fresh contexts of each page, visited in turn (goal: p50 < 400 ms, p95 < 700 ms)\n` +
          `${line('channel page', page, visits.whipcast)}\n${line('bare page', bare, visits.baseline)}\n` +
          `ratio p50 ×${ratio.p50.toFixed(2)} (bound ×${RATIO_BOUND.p50}), p95 ×${ratio.p95.toFixed(2)} (bound ×${RATIO_BOUND.p95})\n` +
          '  median ms from navigation start (channel page, bare page):\n' +
          page.steps
            .map((s) => {
              const b = bare.steps.find((x) => x.step === s.step);
              const reached = s.reached < SAMPLES ? ` (${s.reached} of ${SAMPLES})` : '';
              return `  ${s.step.padEnd(40)} ${String(s.p50Ms).padStart(7)}${b ? String(b.p50Ms).padStart(7) : ''}${reached}`;
            })
            .join('\n'),
      );
      // what the pictures show is the stream: a frame number read off each (the 60 s clip loops, so 0 comes again)
      for (const s of [...visits.whipcast, ...visits.baseline]) expect(s.frameNumber).toBeGreaterThanOrEqual(0);
      for (const s of visits.whipcast) {
        // one request between the server's hello and the picture
        expect(s.steps['whipcast:rtc.watch']).toBeLessThan(s.pictureMs);
        const before = STEP_BY_STEP.filter((t) => (s.steps[`whipcast:${t}`] ?? Infinity) < s.pictureMs);
        expect(before).toEqual([]);
      }
      expect(ratio.p50).toBeLessThan(RATIO_BOUND.p50);
      expect(ratio.p95).toBeLessThan(RATIO_BOUND.p95);
    },
  );
});
