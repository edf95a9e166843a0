/**
 * Shared DVR replays in the web player (Chromium): a page going 10 s back joins the replay a bot already watches
 * there, and shows the same past; paused while the bot plays on, its resume is answered with new consumers (a
 * replay of its own from where it paused) and the player swaps to them: the picture, read off the screen, moves
 * again from the frame it was paused on, while the bot's replay goes on untouched.
 */
import { fileURLToPath } from 'node:url';
import {
  frameNumberInPage,
  launchChromium,
  numberedH264Fixture,
  ObsPublisher,
  SocketClient,
  SocketViewer,
  type Browser,
} from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const FPS = 30;
const VIDEO = { keyframeInterval: 1, seconds: 40 };

let server: SfuTestServer;
let browser: Browser;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO); // encoded once and cached; not inside a test's timeout
  [server, browser] = await Promise.all([
    startSfuTestServer({ env: { MEDIA_WORKERS: '1', WEB_DIR, DVR_SHARE_WITHIN_MS: '2000' } }),
    launchChromium(),
  ]);
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shared DVR replays in the web player', () => {
  it('joins a bot 10 s back; paused while the bot plays on, it resumes from its paused frame', { timeout: 120_000 }, async () => {
    const { channelId, streamKey } = await server.streamer();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
    const socket = await SocketClient.connect(server.url);
    const bot = new SocketViewer(socket, channelId);
    let botFrame = 0;
    bot.receiver.onFrame((f) => {
      if (f.stamp) botFrame = f.stamp.frame;
    });
    const page = await browser.context.newPage();
    try {
      await pub.connected();
      await expect.poll(() => pub.counters.frames, { timeout: 30_000, intervals: [200] }).toBeGreaterThan(13 * FPS);
      const channel = server.sfu.channel(channelId)!;
      await bot.start();
      await bot.seek({ offsetMs: 10_000 });
      expect(channel.replayShares.size).toBe(1);

      await page.goto(`${server.url}/live/${channelId}`);
      const shown = () => frameNumberInPage(page, 'video').catch(() => null); // no <video> while the player re-mounts it
      await expect.poll(async () => pub.counters.frames - ((await shown()) ?? 0), { timeout: 30_000, intervals: [200] }).toBeLessThan(FPS);
      await page.getByRole('button', { name: 'Back 10 seconds' }).focus();
      await page.keyboard.press('Enter');
      // on the bot's replay: the same past on screen (within half a second of the bot's frames)
      await expect.poll(() => channel.replayShares.members, { timeout: 5000 }).toBe(2);
      expect(channel.replayShares.size).toBe(1);
      await expect.poll(async () => Math.abs(((await shown()) ?? 0) - botFrame), { timeout: 8000, intervals: [200] }).toBeLessThan(FPS / 2);
      expect(pub.counters.frames - botFrame).toBeGreaterThan(9.5 * FPS);

      // paused: its picture holds, the bot's goes on
      await page.getByRole('button', { name: 'Pause' }).focus();
      await page.keyboard.press('Space');
      await expect.poll(() => page.getByRole('button', { name: 'Play' }).count()).toBe(1);
      await sleep(300);
      const paused = (await shown())!;
      const botAtPause = botFrame;
      await sleep(2500);
      expect(await shown()).toBe(paused);
      expect(botFrame - botAtPause).toBeGreaterThan(2 * FPS);

      // resumed: a replay of its own from where it paused (the bot's is 2.5 s ahead), the picture moves from there
      await page.getByRole('button', { name: 'Play' }).focus();
      await page.keyboard.press('Space');
      await expect.poll(() => channel.replayShares.size, { timeout: 5000 }).toBe(2);
      const moved: number[] = [];
      await expect
        .poll(
          async () => {
            const n = await shown();
            if (n !== null && n !== paused) moved.push(n);
            return moved.length >= 3 && moved.at(-1)! > moved[0]!;
          },
          { timeout: 5000, intervals: [100] },
        )
        .toBe(true);
      // from the keyframe at or before its paused frame (≤ 1 s), not where the bot is
      expect(moved[0]!).toBeGreaterThan(paused - 1.2 * FPS);
      expect(moved[0]!).toBeLessThan(paused + FPS);
      await sleep(1000);
      const lag = botFrame - ((await shown()) ?? 0);
      console.log(`paused on ${paused}, moved again from ${moved[0]}; now ${(lag / FPS).toFixed(1)} s behind the bot`);
      expect(lag).toBeGreaterThan(1.5 * FPS);
      expect(lag).toBeLessThan(4 * FPS);
    } finally {
      await page.close();
      bot.close();
      socket.close();
      await pub.stop();
    }
  });
});
