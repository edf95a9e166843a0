/**
 * Issue #13: a WHEP player on a weak link gets a layer its link carries. Chromium numbers transport-wide-cc
 * differently from mediasoup's router and refuses an answer that renumbers it, so mediasoup has no bandwidth
 * estimate for it; whipcast steps its layer by the loss its receiver reports (`sfu/loss-based-layers.ts`).
 * A 3-layer OBS-like channel (1280x720 at 2.5 Mbit/s, 640x360, 320x180; keyframe every 2 s) watched by a
 * plain Chromium WHEP page whose downlink is capped at 1 Mbit/s (testkit's UDP relay): it settles below 720p
 * (frame size from getStats) and keeps playing. (Without the steering it stays on 1280x720 and decodes
 * almost nothing: tried, see the commit.)
 */
import {
  ImpairedPeer,
  impairPage,
  inboundVideoStats,
  launchChromium,
  ObsPublisher,
  startWhepInPage,
  waitLive,
  type Browser,
  type InboundVideoStats,
} from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WhepViewer } from '@whipcast/sfu';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

const TOP = { width: 1280, height: 720, kbps: 2500 };
/** Watched after it settles: before its first try of the layer above (30 s after the loss stopped). */
const WATCH_MS = 25_000;
/** Then long enough to see that try and its way back down. */
const PROBE_WATCH_MS = 20_000;

let server: SfuTestServer;
let browser: Browser;

beforeAll(async () => {
  [server, browser] = await Promise.all([startSfuTestServer({ env: { MEDIA_WORKERS: '1' } }), launchChromium()]);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Polls the page's video every 250 ms for `ms`: the longest time no new frame decoded, and the widths seen. */
async function observe(
  page: Page,
  ms: number,
): Promise<{ first: InboundVideoStats; last: InboundVideoStats; longestStallMs: number; widths: number[] }> {
  const first = await inboundVideoStats(page);
  let last = first;
  let lastNewFrameAt = performance.now();
  let longestStallMs = 0;
  const widths: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await page.waitForTimeout(250);
    const s = await inboundVideoStats(page);
    const now = performance.now();
    if (s.framesDecoded > last.framesDecoded) lastNewFrameAt = now;
    longestStallMs = Math.max(longestStallMs, now - lastNewFrameAt);
    if (s.frameWidth && widths.at(-1) !== s.frameWidth) widths.push(s.frameWidth);
    last = s;
  }
  return { first, last, longestStallMs, widths };
}

describe('a WHEP viewer on a weak link', () => {
  it('capped at 1 Mbit/s on a 3-layer channel: settles below the top layer and keeps playing', { timeout: 240_000 }, async () => {
    const { channelId, streamKey } = await server.streamer();
    const pub = await ObsPublisher.publish({
      url: `${server.url}/whip`,
      token: streamKey,
      simulcast: true,
      video: { ...TOP, keyframeInterval: 2, seconds: 120 },
    });
    const link = new ImpairedPeer({ toPeer: { kbps: 1000 } });
    const page = await browser.context.newPage();
    try {
      await pub.connected();
      await waitLive(server.url, channelId, 120_000); // the first run encodes the layers (cached after)
      await impairPage(page, link);
      await page.goto(`${server.url}/healthz`);
      expect((await startWhepInPage(page, `/whep/${channelId}`)).status).toBe(201);
      const viewer = server.sfu.channel(channelId)!.viewers()[0] as WhepViewer;
      const startedAt = performance.now();
      let s: InboundVideoStats | null = null;
      await expect
        .poll(
          async () => {
            s = await inboundVideoStats(page);
            return s.frameWidth > 0 && s.frameWidth < TOP.width && s.framesPerSecond >= 25;
          },
          { timeout: 30_000, interval: 500 },
        )
        .toBe(true)
        .catch((err: unknown) => {
          throw new Error(`not settled below 720p in 30 s: ${JSON.stringify(s)}`, { cause: err });
        });
      expect(viewer.lossBasedLayers).not.toBeNull(); // Chromium's offer: no bandwidth estimate from mediasoup
      const settledS = (performance.now() - startedAt) / 1000;
      const o = await observe(page, WATCH_MS);
      const decoded = o.last.framesDecoded - o.first.framesDecoded;
      const frozenS = o.last.totalFreezesDuration - o.first.totalFreezesDuration;
      const freezes = o.last.freezeCount - o.first.freezeCount;
      console.log(
        `WHEP viewer capped at 1 Mbit/s: below 720p (fps ≥ 25) ${settledS.toFixed(1)} s after the POST; then in ${WATCH_MS / 1000} s: ` +
          `widths ${o.widths.join('→')}; ${decoded} frames decoded; ${freezes} freezes, ${frozenS.toFixed(2)} s frozen; ` +
          `longest stall ${Math.round(o.longestStallMs)} ms; layer steps ${JSON.stringify(viewer.lossBasedLayers?.steps)}; ` +
          `${(await link.counters()).toPeer.queueDropped} packets dropped by the cap`,
      );
      expect(Math.max(...o.widths)).toBeLessThan(TOP.width);
      expect(decoded).toBeGreaterThanOrEqual(0.9 * 30 * (WATCH_MS / 1000));
      expect(o.longestStallMs).toBeLessThan(1000);

      // its try of the top layer (the link cannot carry it) costs one freeze, and it comes back down
      const p = await observe(page, PROBE_WATCH_MS);
      console.log(
        `then in ${PROBE_WATCH_MS / 1000} s: widths ${p.widths.join('→')}; ${p.last.framesDecoded - p.first.framesDecoded} frames decoded; ` +
          `${p.last.freezeCount - p.first.freezeCount} freezes, ${(p.last.totalFreezesDuration - p.first.totalFreezesDuration).toFixed(2)} s frozen; ` +
          `longest stall ${Math.round(p.longestStallMs)} ms; layer steps ${JSON.stringify(viewer.lossBasedLayers?.steps)}`,
      );
      expect(p.widths.at(-1)).toBeLessThan(TOP.width);
    } finally {
      await page.close();
      await link.close();
      await pub.stop();
    }
  });
});
