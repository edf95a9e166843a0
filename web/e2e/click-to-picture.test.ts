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
 * (capabilities, transport, consume, connect, resume) before it. The goal is
 * p50 < 400 ms and p95 < 700 ms on a quiet machine; on 2 shared cores under
 * other tests' load it does not hold (see docs/benchmarks.md), so the time
 * bound asserted here is the looser `CI_BOUND` and the figures are printed.
 */
import { fileURLToPath } from 'node:url';
import {
  clickToPicture,
  launchChromiumBrowser,
  numberedH264Fixture,
  ObsPublisher,
  registerStreamer,
  summarizePictures,
  waitLive,
  type PictureSample,
} from '@whipcast/testkit';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const VIDEO = { width: 1280, height: 720, kbps: 2500, keyframeInterval: 2, seconds: 60 };
const SAMPLES = 12;
/** Asserted: holds under load on 2 shared cores; the old path (5 sequential requests) measured p50 972–1105 ms there. */
const CI_BOUND = { p50: 1200, p95: 2000 };
/** Requests the old, step-by-step path made before the picture. */
const STEP_BY_STEP = ['rtc.capabilities', 'rtc.transport', 'rtc.consume', 'rtc.connect', 'rtc.resume'];

let server: TestServer;
let browser: Browser;
let pub: ObsPublisher | null = null;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO); // encoded once and cached; not inside the test's timeout
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromiumBrowser(),
  ]);
}, 300_000);
afterAll(async () => {
  pub?.drop();
  await browser?.close();
  await server?.close();
});

describe('click to picture', () => {
  it(
    `a channel page shows the stream's first picture after one socket round trip, over ${SAMPLES} fresh contexts`,
    { timeout: 240_000 },
    async () => {
      const streamer = await registerStreamer(server.url);
      pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, numbered: true, video: VIDEO });
      await pub.connected();
      await waitLive(server.url, streamer.id);
      // a GOP in the cache, as for any viewer who arrives after the stream started
      await new Promise((r) => setTimeout(r, 2500));
      const url = `${server.url}/live/${streamer.id}`;
      // the browser's first context pays for starting its network and renderer services once: not counted
      const warmup = await clickToPicture(browser, url);
      const samples: PictureSample[] = [];
      for (let i = 0; i < SAMPLES; i++) samples.push(await clickToPicture(browser, url));
      const summary = summarizePictures(samples);
      console.log(
        `click to picture over ${summary.samples} fresh contexts: p50 ${summary.p50} ms, p95 ${summary.p95} ms, max ${summary.max} ms ` +
          `(warm-up ${warmup.pictureMs} ms); all: ${samples.map((s) => s.pictureMs).join(', ')}\n` +
          summary.steps
            .map(
              (s) =>
                `  ${s.step.padEnd(28)} ${String(s.p50Ms).padStart(7)} ms${s.reached < SAMPLES ? ` (${s.reached} of ${SAMPLES})` : ''}`,
            )
            .join('\n'),
      );
      // what the pictures show is the stream: frames from the last few seconds the publisher sent
      for (const s of samples) expect(s.frameNumber).toBeGreaterThan(0);
      for (const s of samples) {
        // one request between the server's hello and the picture
        expect(s.steps['whipcast:rtc.watch']).toBeLessThan(s.pictureMs);
        const before = STEP_BY_STEP.filter((t) => (s.steps[`whipcast:${t}`] ?? Infinity) < s.pictureMs);
        expect(before).toEqual([]);
      }
      expect(summary.p50).toBeLessThan(CI_BOUND.p50);
      expect(summary.p95).toBeLessThan(CI_BOUND.p95);
    },
  );
});
