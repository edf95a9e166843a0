/**
 * Frame numbers read off the picture a real browser shows: an OBS-like
 * publisher sends the numbered fixture into a real whipcast, Chromium watches
 * it over WHEP, and the numbers it shows keep rising and trail the publisher's
 * by less than a second — for H.264 and for VP8.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium, type Browser } from '../browser.ts';
import { startWhepInPage, inboundVideoStats, WHEP_VIDEO_ID } from '../page-viewer.ts';
import { ObsPublisher } from '../peers/obs-publisher.ts';
import { registerStreamer, waitLive } from '../streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from '../whipcast-process.ts';
import { frameNumberInPage } from './frame-number.ts';
import { numberedVp8Fixture } from './fixtures.ts';

let server: WhipcastProcess;
let browser: Browser;

beforeAll(async () => {
  await numberedVp8Fixture(); // encoded once and cached; not inside a test's timeout
  [server, browser] = await Promise.all([startWhipcastProcess(), launchChromium()]);
}, 300_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

for (const codec of ['H264', 'VP8'] as const) {
  it(`Chromium shows rising frame numbers of ${codec} numbered video`, { timeout: 60_000 }, async () => {
    const streamer = await registerStreamer(server.url);
    const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, numbered: true, codec });
    await pub.connected();
    await waitLive(server.url, streamer.id);
    const page = await browser.context.newPage();
    try {
      await page.goto(`${server.url}/healthz`);
      expect((await startWhepInPage(page, streamer.whepUrl)).status).toBe(201);
      const seen: { n: number; sent: number }[] = [];
      const deadline = Date.now() + 20_000;
      while (seen.length < 15 && Date.now() < deadline) {
        const n = await frameNumberInPage(page, `#${WHEP_VIDEO_ID}`);
        if (n !== null) seen.push({ n, sent: pub.counters.frames });
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(seen.length, 'numbered pictures read').toBe(15);
      const numbers = seen.map((s) => s.n);
      for (let i = 1; i < numbers.length; i++) expect(numbers[i]!).toBeGreaterThanOrEqual(numbers[i - 1]!);
      expect(numbers.at(-1)! - numbers[0]!, `numbers rise: ${numbers.join(' ')}`).toBeGreaterThan(40); // ~14 × 200 ms at 30 fps
      // What is shown trails what was sent by well under a second (30 frames).
      for (const s of seen) expect(s.sent - s.n).toBeLessThan(30);
      expect((await inboundVideoStats(page)).codec).toBe(`video/${codec}`);
    } finally {
      await page.close();
      await pub.stop();
    }
  });
}
