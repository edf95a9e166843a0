/**
 * Issue #13 items 5 and 6: the player (Chromium) on a bad link, through a UDP relay the test made.
 * - A link capped far below the stream (150 kbit/s for a 1 Mbit/s channel): the player says the
 *   connection cannot carry the stream — never a silent black LIVE — while next to no frame decodes;
 *   "Audio only" stops the video and the sound comes through the same cap.
 * - 5 % random loss and 40 ± 10 ms jitter: NACK/RTX keep it playing — at least 95 % of the frames
 *   decode, freezes stay short, and the player shows no problem.
 */
import { fileURLToPath } from 'node:url';
import {
  ImpairedPeer,
  impairPage,
  launchChromium,
  ObsPublisher,
  pageInboundRtp as inbound,
  recordPeerConnections,
  shownVideoRtp,
  sumInbound as sum,
  type Browser,
  type InboundRtp,
  type LinkImpairment,
} from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
/** The publisher's frame rate. */
const FPS = 30;
/** How long the lossy viewer is measured (issue #13: 30 s). */
const LOSSY_WATCH_MS = 30_000;

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
  ]);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** A live channel and a player page for it behind `link`, its peer connections' stats readable. */
async function watch(link: ImpairedPeer): Promise<{ page: Page; pub: ObsPublisher; channelId: string }> {
  const user = await server.register();
  const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
  const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
  const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey });
  await pub.connected();
  const page = await browser.context.newPage();
  await impairPage(page, link);
  await recordPeerConnections(page);
  await page.goto(`${server.url}/live/${me.id}`);
  return { page, pub, channelId: me.id };
}

function link(toPeer: LinkImpairment, toServer: LinkImpairment = {}): ImpairedPeer {
  return new ImpairedPeer({ toPeer, toServer });
}

describe('the player on a bad link', () => {
  it(
    'a link far below the stream: the player says so, frames do not decode, "Audio only" brings the sound',
    { timeout: 90_000 },
    async () => {
      const peer = link({ kbps: 150 });
      const { page, pub } = await watch(peer);
      try {
        const problem = page.locator('[data-testid="playback-problem"][data-problem="network"]');
        await problem.waitFor({ timeout: 30_000 });
        const text = (await problem.textContent()) ?? '';
        expect(text).toContain("Your connection can't carry this stream right now");
        expect(text).toMatch(/to play \(\d+ % of packets lost\)/); // the receiver's own loss figure
        const stats = await inbound(page);
        // what the viewer sees: a handful of frames at most (not 30 a second)
        expect(sum(stats, 'video', 'framesDecoded'), JSON.stringify(stats)).toBeLessThan(2 * FPS);
        expect((await peer.counters()).toPeer.queueDropped).toBeGreaterThan(100); // the cap dropped the video

        await problem.getByRole('button', { name: 'Audio only' }).click();
        await page.locator('[data-testid="playback-problem"][data-problem="audio-only"]').waitFor({ timeout: 5000 });
        await page.waitForTimeout(2000); // the queue behind the cap drains
        const a = await inbound(page);
        const dropped = (await peer.counters()).toPeer.queueDropped;
        await page.waitForTimeout(4000);
        const b = await inbound(page);
        // the sound comes through the same cap (~50 packets/s of Opus), and the server stopped sending the video:
        // nothing overflows the cap any more (the browser's own pause of its receiver would not stop the packets)
        expect(sum(b, 'audio', 'packetsReceived') - sum(a, 'audio', 'packetsReceived')).toBeGreaterThan(150);
        expect((await peer.counters()).toPeer.queueDropped - dropped).toBeLessThan(10);
      } finally {
        await page.close();
        await peer.close();
        await pub.stop();
      }
    },
  );

  it(
    `5 % loss, 40 ± 10 ms jitter: ≥ 95 % of frames decode over ${LOSSY_WATCH_MS / 1000} s, under 4 s frozen, no problem shown`,
    { timeout: 90_000 },
    async () => {
      const peer = link({ loss: 0.05, delayMs: 40, jitterMs: 10 }, { delayMs: 40, jitterMs: 10 });
      const { page, pub, channelId } = await watch(peer);
      try {
        // measured on the stream the picture shows, once it is the live one: a new viewer's instant start hands
        // over from a catch-up stream (whose stats go with it) within a few seconds
        await expect.poll(async () => sum(await inbound(page), 'video', 'framesDecoded'), { timeout: 20_000 }).toBeGreaterThan(0);
        await page.waitForTimeout(3000);
        const live = async (): Promise<InboundRtp> => {
          let s: InboundRtp | null = null;
          await expect
            .poll(
              async () => {
                const before = await shownVideoRtp(page);
                await page.waitForTimeout(1000);
                s = await shownVideoRtp(page);
                return !!before && !!s && s.ssrc === before.ssrc && s.framesDecoded > before.framesDecoded;
              },
              { timeout: 20_000, interval: 0 },
            )
            .toBe(true);
          return s!;
        };
        const a = await live();
        const lostBefore = (await peer.counters()).toPeer.lost;
        await page.waitForTimeout(LOSSY_WATCH_MS);
        const b = await shownVideoRtp(page);
        const lost = (await peer.counters()).toPeer.lost - lostBefore;
        expect(b?.ssrc, 'the picture came from one stream throughout').toBe(a.ssrc);
        const delta = (k: Exclude<keyof InboundRtp, 'kind' | 'ssrc'>) => b![k] - a[k];
        const decoded = delta('framesDecoded');
        const frozenS = delta('totalFreezesDuration');
        const nacks = delta('nackCount');
        console.log(
          `lossy viewer: ${decoded} frames decoded of ${(LOSSY_WATCH_MS / 1000) * FPS} sent in ${LOSSY_WATCH_MS / 1000} s ` +
            `(${delta('framesReceived')} received, ${delta('framesDropped')} dropped, ${delta('keyFramesDecoded')} keyframes); ` +
            `${lost} packets dropped by the relay, ${delta('packetsLost')} still lost after retransmission, ${nacks} NACKs, ` +
            `${delta('pliCount')} PLIs; ${delta('freezeCount')} freezes, ${frozenS.toFixed(2)} s frozen`,
        );
        expect(lost).toBeGreaterThan(100); // the link really lost packets
        expect(nacks).toBeGreaterThan(lost / 4); // and the browser asked for them again
        expect(decoded).toBeGreaterThanOrEqual(0.95 * (LOSSY_WATCH_MS / 1000) * FPS);
        // Chromium counts a freeze at a gap > 150 ms + the mean frame interval. Runs here (30 s): 0–2.3 s frozen;
        // with NACK taken out of the viewers' consumers: 52 frames decoded, 20.4 s frozen, 0 NACKs
        expect(frozenS).toBeLessThan(4);
        expect(await page.locator('[data-testid="playback-problem"]').count()).toBe(0);
        // /metrics counts this viewer's NACKs and the packets resent to it (RTX), per channel
        const metrics = await (await server.api('/metrics')).text();
        const value = (name: string) =>
          Number(
            metrics
              .split('\n')
              .find((l) => l.startsWith(`${name}{channel="${channelId}"}`))
              ?.split(' ')[1] ?? 0,
          );
        expect(value('whipcast_channel_viewer_nacks_received_total')).toBeGreaterThan(0);
        expect(value('whipcast_channel_viewer_rtx_packets_sent_total')).toBeGreaterThan(0);
      } finally {
        await page.close();
        await peer.close();
        await pub.stop();
      }
    },
  );
});
