/**
 * Issue #13 items 6 and 9: the player in Firefox (firefox-esr over WebDriver BiDi).
 * - A VP8 channel plays, and a seek back 10 s shows older frame numbers, read off the picture.
 * - An H.264 channel (what OBS sends): this Firefox has no H.264 decoder (no OpenH264 without
 *   internet), so the player says it cannot play the video and offers the audio — never a black
 *   LIVE — and no video frame is decoded.
 * Firefox pairs no ICE candidates over loopback: the server's candidates are rewritten to a relay
 * on a test-created veth address (as testkit/browser-firefox-webrtc.test.ts does).
 */
import { fileURLToPath } from 'node:url';
import {
  frameNumberInPage,
  ImpairedPeer,
  impairPage,
  launchFirefox,
  numberedH264Fixture,
  numberedVp8Fixture,
  ObsPublisher,
  registerStreamer,
  waitLive,
  type FirefoxBrowser,
} from '@whipcast/testkit';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';
import { NetworkNamespace } from '../../testkit/net/netns.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
/** The numbered fixtures' frame rate. */
const FPS = 30;

let server: TestServer;
let firefox: FirefoxBrowser;
let ns: NetworkNamespace;

beforeAll(async () => {
  await Promise.all([numberedVp8Fixture(), numberedH264Fixture()]); // encoded once and cached
  [server, firefox, ns] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchFirefox(),
    NetworkNamespace.create(),
  ]);
}, 300_000);
afterAll(async () => {
  await firefox?.close();
  await server?.close();
  await ns?.close();
});

interface Inbound {
  kind: string;
  framesDecoded: number;
  packetsReceived: number;
}

/** A Firefox page whose media goes through a relay it can pair with, and whose peer connections can be read. */
async function playerPage(link: ImpairedPeer): Promise<Page> {
  const page = await firefox.newPage();
  await impairPage(page, link);
  await page.evaluateOnNewDocument(() => {
    const pcs: RTCPeerConnection[] = [];
    Object.assign(window, { __pcs: pcs });
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      constructor(config?: RTCConfiguration) {
        super(config);
        pcs.push(this);
      }
    };
  });
  return page;
}

const inbound = (page: Page) =>
  page.evaluate(async () => {
    const out: { kind: string; framesDecoded: number; packetsReceived: number }[] = [];
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      if (pc.connectionState === 'closed') continue;
      for (const s of (await pc.getStats()).values())
        if (s.type === 'inbound-rtp')
          out.push({ kind: s.kind, framesDecoded: s.framesDecoded ?? 0, packetsReceived: s.packetsReceived ?? 0 });
    }
    return out;
  });
const sum = (list: Inbound[], kind: string, key: 'framesDecoded' | 'packetsReceived') =>
  list.filter((s) => s.kind === kind).reduce((n, s) => n + s[key], 0);

/** The number on the player's picture; null also while the player has no <video> (it re-mounts it at a seek or a switch to live). */
async function numberOnScreen(page: Page): Promise<number | null> {
  try {
    return await frameNumberInPage(page, 'video');
  } catch (err) {
    if (String(err).includes('no <video> matches')) return null;
    throw err;
  }
}

/** Waits (up to `ms`) for a numbered picture on the player's screen. */
async function firstNumber(page: Page, ms: number): Promise<number | null> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const n = await numberOnScreen(page);
    if (n !== null) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
  return null;
}

/** Frame numbers read off the player's picture for `ms`. */
async function numbersFor(page: Page, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const n = await numberOnScreen(page);
    if (n !== null) out.push(n);
    await new Promise((r) => setTimeout(r, 200));
  }
  return out;
}

describe('the player in Firefox', () => {
  it('plays a VP8 channel; a seek back 10 s shows frames from 10 s earlier', { timeout: 120_000 }, async () => {
    const streamer = await registerStreamer(server.url);
    const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, codec: 'VP8', numbered: true });
    const link = new ImpairedPeer({ listenAddress: ns.hostAddress });
    const page = await playerPage(link);
    try {
      await pub.connected();
      await waitLive(server.url, streamer.id);
      await page.goto(`${server.url}/live/${streamer.id}`);
      expect(await firstNumber(page, 20_000), 'a numbered picture on screen').not.toBeNull();
      const live = await numbersFor(page, 3000);
      expect(live.length, 'numbered pictures on screen').toBeGreaterThan(5);
      for (let i = 1; i < live.length; i++) expect(live[i]!).toBeGreaterThanOrEqual(live[i - 1]!);
      expect(live.at(-1)! - live[0]!).toBeGreaterThan(FPS); // moving
      expect(await page.$eval('[data-testid="dvr-position"]', (el) => el.textContent)).toBe('LIVE');
      // a DVR window of more than 10 s
      while (pub.counters.frames < 14 * FPS) await new Promise((r) => setTimeout(r, 250));

      const before = (await numbersFor(page, 600)).at(-1)!;
      await page.click('button[aria-label="Back 10 seconds"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="dvr-position"]')?.textContent !== 'LIVE', { timeout: 10_000 });
      const after = await numbersFor(page, 4000);
      // older pictures: about 10 s (300 frames) before what was live, and playing on from there
      const back = after.filter((n) => n < before - 5 * FPS);
      expect(back.length, `before ${before}, after the seek: ${after.join(' ')}`).toBeGreaterThan(5);
      expect(before - back[0]!).toBeGreaterThan(7 * FPS);
      expect(before - back[0]!).toBeLessThan(14 * FPS);
      expect(back.at(-1)! - back[0]!).toBeGreaterThan(FPS);
      const stats = await inbound(page);
      expect(sum(stats, 'video', 'framesDecoded')).toBeGreaterThan(2 * FPS);
      expect(await page.$('[data-testid="playback-problem"]')).toBeNull();
    } finally {
      await page.close();
      await link.close();
      await pub.stop();
    }
  });

  it(
    'an H.264 channel: the player says this browser cannot play the video, decodes none, offers the audio',
    { timeout: 90_000 },
    async () => {
      const streamer = await registerStreamer(server.url);
      const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, numbered: true });
      const link = new ImpairedPeer({ listenAddress: ns.hostAddress });
      const page = await playerPage(link);
      try {
        await pub.connected();
        await waitLive(server.url, streamer.id);
        await page.goto(`${server.url}/live/${streamer.id}`);
        const problem = await page.waitForSelector('[data-testid="playback-problem"][data-problem="codec"]', { timeout: 20_000 });
        const text = (await problem!.evaluate((el) => el.textContent)) ?? '';
        expect(text).toContain("This browser can't play this channel's video");
        expect(text).toContain('H.264');
        // the sound still comes: audio packets arrive, and not one video frame is decoded
        await new Promise((r) => setTimeout(r, 4000));
        const stats = await inbound(page);
        const state = await page.$eval('.player', (el) => el.getAttribute('data-state'));
        expect(sum(stats, 'audio', 'packetsReceived'), `${state} ${JSON.stringify(stats)}`).toBeGreaterThan(50);
        expect(sum(stats, 'video', 'framesDecoded')).toBe(0);
        expect(await frameNumberInPage(page, 'video')).toBeNull();
        await page.click('[data-testid="playback-problem"] button');
        await page.waitForFunction(
          () =>
            /Audio only: this browser cannot decode H\.264 video/.test(
              document.querySelector('[data-testid="playback-problem"]')?.textContent ?? '',
            ),
          { timeout: 5000 },
        );
        expect(await page.$eval('button[aria-label="Mute"]', (el) => el.getAttribute('aria-label'))).toBe('Mute'); // unmuted
      } finally {
        await page.close();
        await link.close();
        await pub.stop();
      }
    },
  );
});
