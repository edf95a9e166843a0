/**
 * Frame numbers read off the picture a real browser shows: an OBS-like
 * publisher sends the numbered fixture into a real whipcast, Chromium watches
 * it over WHEP, and the numbers it shows keep rising and trail the publisher's
 * by less than a second — for H.264 and for VP8. A picture the page blanks for a
 * moment (a new source) reads as a number once it is back, the miss kept with
 * what the element showed; one that stays blank reads as null.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium, type Browser } from '../browser.ts';
import { startWhepInPage, inboundVideoStats, WHEP_VIDEO_ID } from '../page-viewer.ts';
import { ObsPublisher } from '../peers/obs-publisher.ts';
import { registerStreamer, waitLive } from '../streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from '../whipcast-process.ts';
import {
  FRAME_NUMBER_BAND,
  FRAME_NUMBER_BITS,
  FRAME_NUMBER_CELLS,
  frameNumberInPage,
  frameNumberShown,
  saveUnreadPictures,
} from './frame-number.ts';
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

// Plain JavaScript run in the page: a <video> playing a canvas that draws the frame-number pattern of a counter
// (the layout `readFrameNumber` reads), and a way to show an empty stream for a while, as a page swapping its source does.
const NUMBERED_CANVAS_PAGE = `(() => {
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 360;
  const ctx = canvas.getContext('2d');
  const cells = ${FRAME_NUMBER_CELLS}, bits = ${FRAME_NUMBER_BITS}, band = Math.round(360 * ${FRAME_NUMBER_BAND});
  let n = 1000;
  const draw = () => {
    n++;
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, 640, 360);
    let ones = 0;
    const on = [1, 0];
    for (let b = bits - 1; b >= 0; b--) { const bit = Math.floor(n / 2 ** b) % 2; ones += bit; on.push(bit); }
    on.push(ones % 2, 0, 1);
    on.forEach((v, i) => {
      const x = Math.round((i * 640) / cells);
      ctx.fillStyle = v ? '#fff' : '#000';
      ctx.fillRect(x, 0, Math.round(((i + 1) * 640) / cells) - x, band);
    });
  };
  draw();
  setInterval(draw, 33);
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const stream = canvas.captureStream(30);
  video.srcObject = stream;
  window.__blank = (ms) => {
    video.srcObject = new MediaStream();
    setTimeout(() => { video.srcObject = stream; }, ms);
  };
})()`;

it(
  'a picture blank for a moment reads once it is back; one that stays blank reads null, its misses kept',
  { timeout: 30_000 },
  async () => {
    const page = await browser.context.newPage();
    try {
      await page.setContent('<!doctype html><body></body>');
      await page.evaluate(NUMBERED_CANVAS_PAGE);
      await expect.poll(() => frameNumberInPage(page), { timeout: 5000, interval: 100 }).toBeGreaterThan(1000);

      await page.evaluate('window.__blank(300)');
      expect(await frameNumberInPage(page), 'a single read of the blank element').toBeNull();
      const back = await frameNumberShown(page, { withinMs: 1500 });
      expect(back.frame).toBeGreaterThan(1000);
      expect(back.misses.length).toBeGreaterThan(0);
      expect(back.misses[0]!.readyState).toBeLessThan(2);

      await page.evaluate('window.__blank(5000)');
      const gone = await frameNumberShown(page, { withinMs: 600 });
      expect(gone.frame).toBeNull();
      expect(gone.misses.length).toBeGreaterThanOrEqual(3);
      expect(saveUnreadPictures(gone.misses, '/tmp', 'never')).toEqual([]); // no picture to save while blank
    } finally {
      await page.close();
    }
  },
);
