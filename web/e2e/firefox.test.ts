/**
 * Issue #13 items 6 and 9: the player in Firefox (firefox-esr over WebDriver BiDi).
 * - A VP8 channel plays, and a seek back 10 s shows older frame numbers, read off the picture.
 * - An H.264 channel (what OBS sends): this Firefox has no H.264 decoder (no OpenH264 without
 *   internet), so the player says it cannot play the video and offers the audio — never a black
 *   LIVE — and no video frame is decoded.
 * - The same with the transcoded ladder on: the player plays the channel's VP8 rung (640x360 from a
 *   720p H.264 publisher), its frame numbers read off the picture advancing with the publisher's, and
 *   says it is live only. The rung's ffmpeg runs only while the viewer watches. Run with
 *   VP8_RUNG_OFF=1 (TRANSCODE_VP8_RUNG=false) to see it fail.
 * Firefox pairs no ICE candidates over loopback: the server's candidates are rewritten to a relay
 * on a test-created veth address (as testkit/browser-firefox-webrtc.test.ts does).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
/** A 720p publisher, as in signaling/ladder.test.ts (the same cached fixture). */
const HD = { width: 1280, height: 720, kbps: 2500, keyframeInterval: 2, seconds: 60 };

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

/** The pid of the ffmpeg encoding VP8 (the rung: the only libvpx encoder these tests run), or null. */
function vp8RungPid(): number | null {
  try {
    return Number(execFileSync('pgrep', ['-f', 'ffmpeg.*libvpx']).toString().trim().split('\n')[0]);
  } catch {
    return null; // pgrep exits 1 when nothing matches
  }
}

/** CPU seconds a process has used (utime + stime, clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
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

  describe('with the transcoded ladder on', () => {
    let ladderServer: TestServer;
    beforeAll(async () => {
      await numberedH264Fixture(HD); // encoded once and cached (the ladder test uses the same)
      ladderServer = await startTestServer({
        media: createSfuMedia,
        env: {
          MEDIA_WORKERS: '1',
          WEB_DIR,
          TRANSCODE_LADDER: '360p',
          TRANSCODE_VP8_RUNG: process.env.VP8_RUNG_OFF ? 'false' : 'true',
          TRANSCODE_VP8_RUNG_IDLE_SECONDS: '3', // not the default 30: the test waits for it to stop
        },
      });
    }, 300_000);
    afterAll(async () => {
      await ladderServer?.close();
    });

    it(
      'an H.264 channel plays its VP8 rung: frame numbers off the picture advance, 640x360 VP8, live only',
      { timeout: 120_000 },
      async () => {
        const streamer = await registerStreamer(ladderServer.url);
        const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, numbered: true, video: HD });
        const link = new ImpairedPeer({ listenAddress: ns.hostAddress });
        const page = await playerPage(link);
        try {
          await pub.connected();
          await waitLive(ladderServer.url, streamer.id);
          await new Promise((r) => setTimeout(r, 1000));
          expect(vp8RungPid(), 'no VP8 encoder before a viewer needs it').toBeNull();
          const opened = Date.now();
          await page.goto(`${ladderServer.url}/live/${streamer.id}`);
          const first = await firstNumber(page, 20_000);
          const firstAfterMs = Date.now() - opened;
          expect(first, 'a numbered picture on screen').not.toBeNull();
          const pid = vp8RungPid();
          expect(pid, 'the VP8 rung encodes while the viewer watches').not.toBeNull();
          const cpuA = cpuSeconds(pid!);
          const framesA = sum(await inbound(page), 'video', 'framesDecoded');
          const live = await numbersFor(page, 10_000);
          const cpu = (cpuSeconds(pid!) - cpuA) / 10;
          const framesB = sum(await inbound(page), 'video', 'framesDecoded');
          const sent = pub.counters.frames;
          const video = await page.evaluate(async () => {
            for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
              if (pc.connectionState === 'closed') continue;
              const stats = [...(await pc.getStats()).values()];
              const rtp = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded ?? 0) > 0);
              if (rtp) return { width: rtp.frameWidth, height: rtp.frameHeight, codec: stats.find((c) => c.id === rtp.codecId)?.mimeType };
            }
            return null;
          });
          console.log(
            `VP8 rung in Firefox: first numbered picture ${firstAfterMs} ms after opening the page, ${video?.width}x${video?.height} ${video?.codec}, ` +
              `${framesB - framesA} frames decoded in 10 s, picture ${live[0]} → ${live.at(-1)} (publisher at ${sent}); ` +
              `the rung's ffmpeg used ${(cpu * 100).toFixed(0)} % of a core`,
          );
          expect(video).toEqual({ width: 640, height: 360, codec: 'video/VP8' });
          expect(live.length, `numbers read: ${live.join(' ')}`).toBeGreaterThan(20);
          for (let i = 1; i < live.length; i++) expect(live[i]!).toBeGreaterThanOrEqual(live[i - 1]!);
          expect(live.at(-1)! - live[0]!).toBeGreaterThan(8 * FPS); // moving in real time
          expect(sent - live.at(-1)!).toBeLessThan(3 * FPS); // and live
          expect(framesB - framesA).toBeGreaterThan(8 * FPS);
          // it says what it plays: no codec problem, a live-only note, the one quality it gets, no seek controls
          expect(await page.$('[data-testid="playback-problem"]')).toBeNull();
          const note = await page.$eval('[data-testid="live-only"]', (el) => el.textContent ?? '');
          expect(note.replace(/\s+/g, ' ')).toMatch(/can't decode H\.264: it plays a VP8 copy at 360p, live only/);
          expect(await page.$eval('[data-testid="quality"]', (el) => (el as HTMLSelectElement).selectedOptions[0]?.textContent)).toBe(
            '360p',
          );
          expect(await page.$('button[aria-label="Back 10 seconds"]')).toBeNull();
          expect(await page.$eval('[data-testid="dvr-position"]', (el) => el.textContent)).toBe('LIVE');

          // nobody needs it any more: the encoder stops 3 s later (TRANSCODE_VP8_RUNG_IDLE_SECONDS)
          await page.close();
          const left = Date.now();
          await expect.poll(() => vp8RungPid(), { timeout: 15_000, interval: 250 }).toBeNull();
          console.log(`VP8 rung stopped ${Date.now() - left} ms after its viewer left`);
        } finally {
          if (!page.isClosed()) await page.close();
          await link.close();
          await pub.stop();
        }
      },
    );
  });
});
