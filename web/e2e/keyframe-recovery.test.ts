/**
 * Issue #13 item 5: a viewer that loses a keyframe recovers from the GOP cache without waiting for the
 * publisher's next one — watching live, and watching the past (DVR: its replay resends from the keyframe before
 * where it is). The publisher sends a keyframe every 8 s and ignores keyframe requests, like OBS;
 * the player (Chromium) is behind a UDP relay whose downlink goes black for 2.5 s just after a keyframe —
 * longer than NACK can repair — so its decoder has nothing to decode until a keyframe. The test reads the
 * frame numbers off the picture and measures the time from the end of the outage to a moving picture.
 */
import { fileURLToPath } from 'node:url';
import {
  frameNumberInPage,
  ImpairedPeer,
  impairPage,
  launchChromium,
  numberedH264Fixture,
  ObsPublisher,
  type Browser,
} from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const FPS = 30;
/** The publisher's keyframe interval, s (OBS: 2–10 s are common). */
const GOP_S = 8;
const VIDEO = { keyframeInterval: GOP_S, seconds: 90 };
/**
 * mediasoup keeps 2 s of video to resend, so a shorter outage is repaired by NACK (seen with 1.5 s: the picture
 * moved on 26 ms after the outage, frames 489 → 539 in 150 ms): the first half second of this one is gone for good.
 */
const OUTAGE_MS = 2500;

let server: TestServer;
let browser: Browser;
/** The DVR test's channel, live from the start of the file: its buffer fills while the first test runs. */
let early: Live | null = null;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO); // encoded once and cached; not inside a test's timeout
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
  ]);
  early = await goLive();
}, 300_000);
afterAll(async () => {
  early?.pub.drop();
  await browser?.close();
  await server?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `whipcast_keyframe_recoveries_total` for a client and position, from /metrics (null: no such series). */
async function recoveries(client: string, position: string): Promise<number | null> {
  const text = await (await server.api('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`whipcast_keyframe_recoveries_total{client="${client}",position="${position}"}`));
  return line === undefined ? null : Number(line.slice(line.indexOf('}') + 1));
}

interface Live {
  id: string;
  pub: ObsPublisher;
}

/** A live numbered channel of a new user. */
async function goLive(): Promise<Live> {
  const user = await server.register();
  const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
  const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as {
    streamKey: string;
  };
  const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
  await pub.connected();
  return { id: me.id, pub };
}

/** A player page on a live channel, behind a relay the test controls. */
async function watch({
  id,
  pub,
}: Live): Promise<{ page: Page; pub: ObsPublisher; peer: ImpairedPeer; shown: () => Promise<number | null> }> {
  const peer = new ImpairedPeer({});
  const page = await browser.context.newPage();
  await impairPage(page, peer);
  await page.goto(`${server.url}/live/${id}`);
  const shown = () => frameNumberInPage(page, 'video').catch(() => null); // no <video> while the player re-mounts it
  // instant start, then live: the picture is near what was sent and a live keyframe has passed since
  await expect
    .poll(
      async () => {
        const n = await shown();
        return n !== null && pub.counters.frames - n < FPS;
      },
      { timeout: 30_000, intervals: [200] },
    )
    .toBe(true);
  const gop = GOP_S * FPS;
  const afterSwitch = (Math.floor(pub.counters.frames / gop) + 1) * gop;
  await expect.poll(() => pub.counters.frames, { timeout: 15_000, intervals: [100] }).toBeGreaterThan(afterSwitch + 10);
  return { page, pub, peer, shown };
}

/**
 * Blacks the viewer's downlink out for `OUTAGE_MS` just after the picture on screen passed a keyframe (so the
 * next one is ~6 s away when it ends); returns how long after its end the picture moved again (three readings
 * in a row, each a newer frame than the one before and none the frozen one), null: not within 9 s.
 */
async function outage(
  what: string,
  { peer, shown }: { peer: ImpairedPeer; shown: () => Promise<number | null> },
): Promise<{ movingAt: number | null; trace: string }> {
  const gop = GOP_S * FPS;
  const now = (await shown()) ?? 0;
  const keyframe = (Math.floor(now / gop) + 1) * gop;
  await expect.poll(shown, { timeout: 15_000, intervals: [20] }).toBeGreaterThanOrEqual(keyframe + 5); // it got that keyframe
  await peer.setImpairment('toPeer', { loss: 1 });
  await sleep(OUTAGE_MS);
  await peer.setImpairment('toPeer', {});
  const endedAt = Date.now();
  const frozen = await shown();
  // where the picture would be had it not frozen: the next keyframe is that far ahead of it
  const nextKeyframeInMs = Math.round(((keyframe + gop - (keyframe + 5 + (OUTAGE_MS / 1000) * FPS)) / FPS) * 1000);
  const seen: { at: number; n: number | null }[] = [];
  let movingAt: number | null = null;
  while (Date.now() - endedAt < 9000 && movingAt === null) {
    seen.push({ at: Date.now() - endedAt, n: await shown() });
    const last = seen.slice(-3);
    if (last.length === 3 && last.every((s, i) => s.n !== null && s.n !== frozen && (i === 0 || s.n > last[i - 1]!.n!)))
      movingAt = last[0]!.at;
    await sleep(100);
  }
  const trace = seen.map((s) => `${s.at}:${s.n}`).join(' ');
  console.log(
    `keyframe recovery (${what}): frozen at ${frozen} after the outage; moving ${movingAt ?? 'never'} ms after it ended; ` +
      `the next keyframe of what it watches was ~${nextKeyframeInMs} ms away\n${trace}`,
  );
  expect(nextKeyframeInMs).toBeGreaterThan(4500); // the test's premise: waiting for it would freeze > 4.5 s
  return { movingAt, trace };
}

/** Seconds behind live as the player shows it ("-0:12" → 12); 0 at LIVE. */
async function behind(page: Page): Promise<number> {
  const text = (
    (await page
      .getByTestId('delay')
      .textContent()
      .catch(() => null)) ?? ''
  ).trim();
  const m = /^-(\d+):(\d\d) behind$/.exec(text);
  return text.startsWith('LIVE') ? 0 : m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

describe('keyframe recovery', () => {
  it(
    `a ${OUTAGE_MS / 1000} s downlink outage with keyframes every ${GOP_S} s: the picture moves again well before the next keyframe`,
    { timeout: 120_000 },
    async () => {
      const w = await watch(await goLive());
      try {
        const before = await recoveries('player', 'live');
        const { movingAt, trace } = await outage('live', w);
        console.log(`${w.pub.counters.plisReceived} keyframe requests reached the publisher`);
        expect(movingAt, trace).not.toBeNull();
        expect(movingAt!, trace).toBeLessThan(2500);
        // counted on /metrics (the series is there, at 0, from the start)
        expect(before).not.toBeNull();
        expect(await recoveries('player', 'live')).toBe(before! + 1);
        // and it is back on live afterwards (the catch-up switched at the next live keyframe)
        await expect
          .poll(
            async () => {
              const n = await w.shown();
              return n !== null && w.pub.counters.frames - n < FPS;
            },
            { timeout: 15_000, intervals: [200] },
          )
          .toBe(true);
      } finally {
        await w.page.close();
        await w.peer.close();
        await w.pub.stop();
      }
    },
  );

  it(
    `watching 10 s in the past: after a ${OUTAGE_MS / 1000} s outage the replay resends from the keyframe before, the picture moves again at the same point`,
    { timeout: 150_000 },
    async () => {
      let live = early!;
      early = null;
      // the numbered fixture loops after VIDEO.seconds: a channel live for too long already starts again
      if (live.pub.counters.frames > 40 * FPS) {
        live.pub.drop();
        live = await goLive();
      }
      const w = await watch(live);
      try {
        // 20 s of stream in the buffer, then back 10 s
        await expect.poll(() => w.pub.counters.frames, { timeout: 30_000, intervals: [200] }).toBeGreaterThan(20 * FPS);
        await w.page.getByRole('button', { name: 'Back 10 seconds' }).focus();
        await w.page.keyboard.press('Enter');
        await expect.poll(() => behind(w.page), { timeout: 5000 }).toBeGreaterThanOrEqual(9);
        const inThePast = async () => {
          const n = await w.shown();
          return n === null ? null : w.pub.counters.frames - n;
        };
        await expect.poll(inThePast, { timeout: 10_000, intervals: [200] }).toBeGreaterThan(8 * FPS);
        const before = await recoveries('player', 'dvr');
        const behindBefore = (await inThePast())!; // 10–18 s: a seek lands on the keyframe at or before its target
        const { movingAt, trace } = await outage('DVR, 10 s behind', w);
        expect(movingAt, trace).not.toBeNull();
        expect(movingAt!, trace).toBeLessThan(2500);
        expect(before).not.toBeNull();
        expect(await recoveries('player', 'dvr')).toBe(before! + 1);
        // back where it was in the past (the recovery replays quickly up to its position, then at real time: not to live)
        await expect
          .poll(async () => Math.abs(((await inThePast()) ?? 0) - behindBefore), { timeout: 10_000, intervals: [250] })
          .toBeLessThan(FPS);
        await sleep(2000);
        const behindAfter = (await inThePast())!;
        console.log(
          `the picture was ${(behindBefore / FPS).toFixed(1)} s behind what was sent before the outage, ${(behindAfter / FPS).toFixed(1)} s after`,
        );
        expect(Math.abs(behindAfter - behindBefore)).toBeLessThan(FPS);
      } finally {
        await w.page.close();
        await w.peer.close();
        await w.pub.stop();
      }
    },
  );
});
