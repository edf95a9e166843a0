/**
 * The web app end to end in headless Chromium (Debian's package, driven by
 * playwright-core) against the real server with media: sign up, go live with
 * an OBS-like publisher, watch in a second browser, counts, chat and
 * moderation, every player control from the keyboard, phone and desktop
 * layouts in light and dark (with axe), the browser camera taking over an OBS
 * session, a plain-http LAN address, rotation. The tests in this file run in
 * order and share the server and the browsers. Screenshots of each page go to
 * artifacts/screenshots/.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  frameNumberInPage,
  launchChromium,
  numberedH264Fixture,
  ObsPublisher,
  type Browser,
} from '@whipcast/testkit';
import { chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1366, height: 768 };
const PHONE_LANDSCAPE = { width: 844, height: 390 };
/** A LAN-style name for the server: a plain-http origin that is not localhost, so not a secure context. */
const LAN_HOST = 'whipcast-lan.test';

let server: TestServer;
let streamer: Browser;
let viewer: Browser;
let lan: Browser;
let pub: ObsPublisher | null = null;
let streamId = '';
let key = '';
const suffix = Math.random().toString(36).slice(2, 8);
const streamerName = `streamer_${suffix}`;
const viewerName = `viewer_${suffix}`;
const cspViolations: string[] = [];

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  await numberedH264Fixture(); // encoded once and cached; not inside a test's timeout
  [server, streamer, viewer] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
    launchChromium(),
  ]);
  lan = await launchLanChromium();
  // the pages' Content-Security-Policy must not block anything the app does
  for (const browser of [streamer, viewer, lan]) {
    browser.context.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(`${msg.location().url}: ${msg.text()}`);
    });
  }
  await streamer.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
}, 300_000);
afterEach(() => {
  expect(cspViolations.splice(0)).toEqual([]);
});
afterAll(async () => {
  pub?.drop();
  await Promise.all([streamer?.close(), viewer?.close(), lan?.close()]);
  await server?.close();
});

/** Chromium that resolves LAN_HOST to the loopback server (the testkit launcher, plus one flag that holds spaces). */
async function launchLanChromium(): Promise<Browser> {
  const dir = await mkdtemp(join(tmpdir(), 'whipcast-chromium-lan-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function signUp(page: Page, username: string): Promise<void> {
  await page.goto(`${server.url}/login?next=/live/go-live`);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.pathname === '/live/go-live');
  await expect.poll(() => page.getByText(username, { exact: true }).count()).toBe(1);
}

let axeSource = '';
async function axeSerious(page: Page): Promise<string[]> {
  axeSource ||= await readFile(fileURLToPath(import.meta.resolve('axe-core/axe.min.js')), 'utf8');
  // evaluated, not added as an inline <script>: the page's CSP refuses those, as it should
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }
    ).axe;
    return axe.run();
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Runs `job` on every item, at most `width` at a time; the first failure is thrown once all have settled. */
async function inTurns<T>(items: readonly T[], width: number, job: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const lanes = Array.from({ length: width }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await job(item);
  });
  const failed = (await Promise.allSettled(lanes)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The document is no wider than the window: nothing to scroll sideways. */
const overflowX = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

/** The element is entirely on screen without scrolling. */
async function onScreen(page: Page, locator: Locator): Promise<boolean> {
  const box = await locator.boundingBox();
  const size = page.viewportSize()!;
  return !!box && box.x >= 0 && box.y >= 0 && box.x + box.width <= size.width + 0.5 && box.y + box.height <= size.height + 0.5;
}

const frames = (page: Page) => page.locator('video').first().getAttribute('data-frames-decoded').then(Number);
const position = (page: Page) => page.getByTestId('dvr-position').textContent();
/** Frames decoded over the next second (the count is per track: it starts again when the player swaps tracks). */
async function decodedInASecond(page: Page): Promise<number> {
  const start = await frames(page);
  await page.waitForTimeout(1000);
  return (await frames(page)) - start;
}
/** The numbered fixture's frame rate. */
const FPS = 30;
/** How many frames the picture on the page's screen is behind what the publisher sent last (null: no numbered picture). */
async function framesBehind(page: Page): Promise<number | null> {
  const shown = await frameNumberInPage(page, 'video');
  return shown === null || !pub ? null : pub.counters.frames - shown;
}
/** Seconds behind live as the player shows it ("-0:12" → 12); 0 at LIVE. */
const behind = async (page: Page) => {
  const text = (await position(page)) ?? '';
  const m = /^-(\d+):(\d\d)$/.exec(text);
  return text === 'LIVE' ? 0 : m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
};

describe('web app in Chromium', () => {
  it('go live with OBS; a viewer signs in from the stream and comes back to it; counts and chat', { timeout: 120_000 }, async () => {
    const a = await streamer.context.newPage();
    const b = await viewer.context.newPage();

    const home = await a.goto(`${server.url}/`);
    expect(home?.headers()['content-security-policy']).toMatch(/script-src 'self' 'sha256-/);
    await expect.poll(() => a.getByText('Nobody is live right now.').count()).toBe(1);
    await a.screenshot({ path: `${SHOTS}browse-empty.png` });

    await signUp(a, streamerName);
    await expect.poll(() => a.getByTestId('live-status').textContent()).toBe('Offline');
    await a.getByRole('button', { name: 'Reveal' }).click();
    key = (await a.getByTestId('stream-key').textContent())!.trim();
    const whipUrl = (await a.getByTestId('whip-url').textContent())!.trim();
    expect(key).toMatch(/^wck_/);
    expect(whipUrl).toBe(`${server.url}/whip`);

    // Copy really copies (a secure context with clipboard permission)
    await a.getByRole('button', { name: 'Copy the server' }).click();
    await expect.poll(() => a.getByText('Copied the server.').count()).toBe(1);
    expect(await a.evaluate(() => navigator.clipboard.readText())).toBe(whipUrl);

    // Save gives feedback
    await a.getByLabel('Title').fill(`Morning show ${suffix}`);
    await a.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => a.getByText('Saved. Viewers see the new title and description.').count()).toBe(1);

    // frame i of the picture carries i: the DVR checks below read it off the viewer's screen
    pub = await ObsPublisher.publish({ url: whipUrl, token: key, numbered: true });
    await pub.connected();
    await expect.poll(() => a.getByTestId('live-status').textContent(), { timeout: 10_000 }).toBe('LIVE');
    streamId = ((await (await server.api('/api/live/streams')).json()) as { streams: { id: string }[] }).streams[0]!.id;
    expect(await a.getByRole('link', { name: 'View my channel' }).getAttribute('href')).toBe(`/live/${streamId}`);

    // A viewer arrives at the stream signed out, signs up from the chat, and is brought back to it.
    await b.goto(`${server.url}/live/${streamId}`);
    await expect.poll(() => b.title()).toBe(`Morning show ${suffix} · whipcast`);
    await b.getByRole('region', { name: 'Chat' }).getByRole('link', { name: 'Sign in' }).click();
    await b.waitForURL((url) => url.pathname === '/login');
    await b.getByLabel('Password').fill('x');
    await b.getByRole('button', { name: 'Sign in', exact: true }).click(); // refused by the browser (too short): no request, no error
    await b.getByLabel('Username').fill(viewerName);
    await b.getByLabel('Password').fill('wrong password');
    await b.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => b.getByRole('alert').count()).toBe(1);
    await b.getByRole('button', { name: 'Create an account' }).click();
    expect(await b.getByRole('alert').count()).toBe(0); // the error belongs to the other form
    expect(await b.getByText('3–32 characters: letters, digits').count()).toBe(1);
    await b.getByLabel('Password').fill('correct horse battery');
    await b.getByRole('button', { name: 'Create account' }).click();
    await b.waitForURL((url) => url.pathname === `/live/${streamId}`);
    const t0 = Date.now();
    await expect.poll(() => frames(b), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await expect.poll(() => b.getByTestId('viewer-count').textContent()).toBe('1');

    await a.goto(`${server.url}/`);
    await expect.poll(() => a.getByTestId('viewer-count').textContent(), { timeout: 10_000 }).toBe('1');
    await a.screenshot({ path: `${SHOTS}browse-live.png` });

    // chat between the two browsers
    await a.goto(`${server.url}/live/${streamId}`);
    await b.getByLabel('Message', { exact: true }).fill('hello from the viewer <script>alert(1)</script>');
    await b.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => a.getByText('hello from the viewer <script>alert(1)</script>').count(), { timeout: 5000 }).toBe(1);
    await a.getByLabel('Message', { exact: true }).fill('hi back');
    await a.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => b.getByText('hi back').count(), { timeout: 5000 }).toBe(1);
    await expect.poll(() => b.getByTestId('viewer-count').textContent(), { timeout: 5000 }).toBe('2');
    expect(await b.locator('li[data-message-id] time[datetime]').count()).toBe(2);
    await a.close();
    await b.close();
  });

  it(
    'every page fits a phone (upright and sideways) and a desktop, light and dark, with no serious axe violations',
    { timeout: 240_000 },
    async () => {
      const pages: { name: string; path: string; as: Browser; check?: (p: Page) => Promise<void> }[] = [
        { name: 'browse', path: '/', as: viewer },
        { name: 'login', path: '/login', as: lan },
        { name: 'not-found', path: '/no/such/page', as: viewer },
        {
          name: 'player-chat',
          path: `/live/${streamId}`,
          as: viewer,
          check: async (p) => {
            await expect.poll(() => frames(p), { timeout: 15_000 }).toBeGreaterThan(0);
            for (const [what, el] of [
              ['video', p.locator('video')],
              ['LIVE', p.getByTestId('dvr-position')],
              ['chat input', p.getByLabel('Message', { exact: true })],
            ] as const)
              expect(await onScreen(p, el), `${what} on screen`).toBe(true);
            expect(await p.getByTestId('dvr-position').textContent()).toBe('LIVE');
            // the 16:9 box holds the picture, not the controls: no pillarbox on a 16:9 stream
            const v = await p.locator('video').boundingBox();
            expect(Math.abs(v!.width / v!.height - 16 / 9)).toBeLessThan(0.02);
          },
        },
        {
          name: 'go-live',
          path: '/live/go-live',
          as: streamer,
          check: async (p) => {
            await expect.poll(() => p.getByTestId('live-status').textContent()).toBe('LIVE');
            if (p.viewportSize()!.width > 1000)
              expect(await onScreen(p, p.getByRole('region', { name: 'Preview' })), 'preview on screen').toBe(true);
            expect(await onScreen(p, p.getByRole('region', { name: 'Preview' }).getByRole('button', { name: 'Show preview' }))).toBe(true);
          },
        },
        {
          name: 'embed',
          path: `/embed/${streamId}?chat=1`,
          as: viewer,
          check: async (p) => {
            await expect.poll(() => frames(p), { timeout: 15_000 }).toBeGreaterThan(0);
            expect(await p.locator('header.top').count()).toBe(0);
            for (const el of [p.locator('video'), p.getByTestId('dvr-position'), p.getByLabel('Message', { exact: true })])
              expect(await onScreen(p, el)).toBe(true);
          },
        },
      ];
      const notFound: string[] = [];
      const variants = pages.flatMap((spec) =>
        (
          [
            ['phone', PHONE, 'light'],
            ['phone', PHONE, 'dark'],
            ['desktop', DESKTOP, 'light'],
            ['desktop', DESKTOP, 'dark'],
            ['phone-landscape', PHONE_LANDSCAPE, 'light'],
          ] as const
        ).map(([sizeName, size, scheme]) => ({ spec, sizeName, size, scheme })),
      );
      // three pages at a time: most of a page's time is waiting (network idle, frames), not CPU
      await inTurns(variants, 3, async ({ spec, sizeName, size, scheme }) => {
        const p = await spec.as.context.newPage();
        p.on('response', (r) => r.status() === 404 && !r.url().includes('/api/') && notFound.push(r.url()));
        await p.setViewportSize(size);
        await p.emulateMedia({ colorScheme: scheme });
        const origin = spec.as === lan ? `http://${LAN_HOST}:${new URL(server.url).port}` : server.url;
        await p.goto(origin + spec.path);
        await p.waitForLoadState('networkidle').catch(() => {});
        const label = `${spec.name} ${sizeName} ${scheme}`;
        // the page has rendered (its title is set once its route has loaded): a page not drawn yet has no overflow
        await expect.poll(() => p.title(), { message: `${label}: page title`, timeout: 15_000 }).toMatch(/ · whipcast$/);
        await spec.check?.(p);
        expect(await overflowX(p), `${label}: no sideways scroll`).toBeLessThanOrEqual(0);
        expect(await axeSerious(p), `${label}: axe`).toEqual([]);
        await p.screenshot({ path: `${SHOTS}${spec.name}-${sizeName}-${scheme}.png` });
        await p.close();
      });
      expect(notFound, 'no 404s for assets (favicon included)').toEqual([]);
      const missing = await viewer.context.newPage();
      await missing.goto(`${server.url}/no/such/page`);
      await missing.getByRole('link', { name: 'Back to Browse' }).click();
      await missing.waitForURL((url) => url.pathname === '/');
      await missing.close();
    },
  );

  it('only the embed route can be framed by another site', { timeout: 60_000 }, async () => {
    for (const path of ['/', '/login', `/live/${streamId}`, '/live/go-live']) {
      const res = await fetch(server.url + path);
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
    }
    const embed = await fetch(`${server.url}/embed/${streamId}?chat=1`);
    expect(embed.headers.get('x-frame-options')).toBeNull();
    expect(embed.headers.get('content-security-policy') ?? '').not.toContain('frame-ancestors');

    // In a real browser: a page on another site (another port on loopback, no policy of its own) frames the embed
    // (it plays) and the channel page (refused).
    const host = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Another site</title>'),
    );
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    const p = await viewer.context.newPage();
    await p.goto(`http://127.0.0.1:${(host.address() as AddressInfo).port}/`);
    await p.evaluate(
      ([embedUrl, pageUrl]) => {
        document.body.innerHTML = '';
        for (const [id, src] of [
          ['embed', embedUrl],
          ['page', pageUrl],
        ] as const) {
          const f = document.createElement('iframe');
          Object.assign(f, { id, src, width: 640, height: 400, allow: 'autoplay' });
          document.body.append(f);
        }
      },
      [`${server.url}/embed/${streamId}`, `${server.url}/live/${streamId}`],
    );
    const embedFrame = p.frameLocator('#embed');
    await expect
      .poll(
        () =>
          embedFrame
            .locator('video')
            .getAttribute('data-frames-decoded', { timeout: 1000 })
            .then(Number)
            .catch(() => 0),
        { timeout: 15_000 },
      )
      .toBeGreaterThan(0);
    expect(await embedFrame.locator('header.top').count()).toBe(0);
    const pageFrame = p.frames().find((f) => f.parentFrame() && f.url() !== `${server.url}/embed/${streamId}`);
    expect(await pageFrame!.locator('video').count()).toBe(0);
    expect(await pageFrame!.locator('header.top').count()).toBe(0);
    // the browser says why it refused the channel page
    await expect.poll(() => cspViolations.some((v) => v.includes('frame-ancestors'))).toBe(true);
    cspViolations.splice(0);
    await p.close();
    host.close();
  });

  it('every player control works from the keyboard', { timeout: 120_000 }, async () => {
    const b = await viewer.context.newPage();
    await b.setViewportSize(DESKTOP);
    await b.goto(`${server.url}/live/${streamId}`);
    await expect.poll(() => frames(b), { timeout: 15_000 }).toBeGreaterThan(0);

    // Tap to unmute, from the keyboard; remembered on the next visit
    const video = b.locator('video');
    expect(await video.evaluate((v: HTMLVideoElement) => v.muted)).toBe(true);
    await b.getByRole('button', { name: 'Tap to unmute' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.muted)).toBe(false);
    expect(await b.getByRole('button', { name: 'Tap to unmute' }).count()).toBe(0);
    await b.getByRole('button', { name: 'Mute', exact: true }).focus();
    await b.keyboard.press('Space');
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.muted)).toBe(true);
    expect(await b.getByRole('button', { name: 'Tap to unmute' }).count()).toBe(0); // the viewer's own choice
    await b.getByRole('button', { name: 'Unmute', exact: true }).focus();
    await b.keyboard.press('Space');
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.muted)).toBe(false);
    const volume = b.getByRole('slider', { name: 'Volume' });
    await volume.focus();
    for (let i = 0; i < 4; i++) await b.keyboard.press('ArrowLeft');
    await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.volume)).toBeCloseTo(0.8);
    await b.reload();
    await expect.poll(() => frames(b), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await video.evaluate((v: HTMLVideoElement) => [v.muted, v.volume])).toEqual([false, 0.8]);
    expect(await b.getByRole('button', { name: 'Tap to unmute' }).count()).toBe(0);

    // the delay at live is a real figure, once, beside LIVE
    await expect.poll(() => b.getByTestId('delay').textContent(), { timeout: 5000 }).toMatch(/^\d+\.\d s$/);
    expect(parseFloat((await b.getByTestId('delay').textContent())!)).toBeLessThan(2);
    // (in the player: the past-broadcasts list below marks the recording in progress LIVE too)
    expect(await b.locator('.player').getByText('LIVE', { exact: true }).count()).toBe(1);

    // Space on a focused button presses that button (once), not the player's pause
    await b.getByRole('button', { name: 'Stats for nerds' }).focus();
    await b.keyboard.press('Space');
    const stats = b.getByRole('region', { name: 'Stats for nerds' });
    await expect.poll(() => stats.locator('[data-stat="Resolution"]').textContent(), { timeout: 5000 }).toMatch(/^\d+×\d+$/);
    await expect.poll(() => stats.locator('[data-stat="Frame rate"]').textContent(), { timeout: 5000 }).toMatch(/^\d+ fps$/);
    await expect.poll(() => stats.locator('[data-stat="Bitrate"]').textContent(), { timeout: 5000 }).toMatch(/^\d+ kbit\/s$/);
    expect(await stats.locator('[data-stat="Codec"]').textContent()).toBe('H264 + opus');
    expect(await stats.locator('[data-stat="Packet loss"]').textContent()).toMatch(/^\d+\.\d %$/);
    // over an interval in which no frame left the jitter buffer (a stall of the loaded machine) it reads "—": a figure
    // must come within the next samples
    await expect.poll(() => stats.locator('[data-stat="Jitter buffer"]').textContent(), { timeout: 5000 }).toMatch(/\d+ ms$/);
    expect(await stats.locator('[data-stat="Behind live"]').textContent()).toMatch(/server → screen$/);
    expect(await b.getByRole('button', { name: 'Pause' }).count()).toBe(1); // still playing
    await b.screenshot({ path: `${SHOTS}player-stats.png` });
    await b.keyboard.press('Enter');
    expect(await stats.count()).toBe(0);

    const pause = b.getByRole('button', { name: 'Pause' });
    await pause.focus();
    await b.keyboard.press('Space');
    await expect.poll(() => b.getByRole('button', { name: 'Play' }).count()).toBe(1);
    expect(await b.getByTestId('delay').textContent()).toBe('Paused');
    await b.waitForTimeout(2500);
    await b.getByRole('button', { name: 'Play' }).focus();
    await b.keyboard.press('Space');
    await expect.poll(() => b.getByRole('button', { name: 'Pause' }).count()).toBe(1);
    // resuming after a pause at live plays on from where it stopped: behind live, then LIVE brings it back
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeGreaterThan(0);
    await b.getByRole('button', { name: 'LIVE' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => position(b), { timeout: 5000 }).toBe('LIVE');

    // what is on screen at live is under a second behind what the publisher sent
    await expect.poll(() => framesBehind(b), { timeout: 5000 }).toBeLessThan(FPS);

    // the seek bar: ← is 10 s (not the slider's own step), End is live
    const seekBar = b.getByRole('slider', { name: 'Position behind live' });
    await seekBar.focus();
    const outline = await seekBar.evaluate((el) => getComputedStyle(el).outlineColor);
    expect(outline).toBe('rgb(255, 209, 102)'); // the yellow focus ring, not blue on black
    await b.keyboard.press('ArrowLeft');
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeGreaterThanOrEqual(9);
    expect(await behind(b)).toBeLessThanOrEqual(13);
    expect(await b.getByTestId('delay').textContent()).toMatch(/^-0:\d\d behind$/);
    await expect.poll(() => decodedInASecond(b), { timeout: 8000 }).toBeGreaterThan(10);
    // and the picture itself is ~10 s old (the keyframe at or before the target: 1 s GOP), and stays so
    for (let i = 0; i < 3; i++) {
      const late = await framesBehind(b);
      expect(late, 'a numbered picture on screen').not.toBeNull();
      expect(late!).toBeGreaterThan(9 * FPS);
      expect(late!).toBeLessThan(13 * FPS);
      await b.waitForTimeout(500);
    }
    await b.screenshot({ path: `${SHOTS}player-dvr.png` });
    await b.keyboard.press('End');
    await expect.poll(() => position(b), { timeout: 5000 }).toBe('LIVE');
    await expect.poll(() => framesBehind(b), { timeout: 5000 }).toBeLessThan(FPS); // the picture is live again

    // Back / Forward 10 s buttons
    await b.getByRole('button', { name: 'Back 10 seconds' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeGreaterThanOrEqual(9);
    await b.keyboard.press('Space');
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeGreaterThanOrEqual(19);
    const far = await behind(b);
    await b.getByRole('button', { name: 'Forward 10 seconds' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeLessThanOrEqual(far - 8);

    // page shortcuts away from any control: l goes live, ← seeks back
    await b.locator('h1').click();
    await b.keyboard.press('l');
    await expect.poll(() => position(b), { timeout: 5000 }).toBe('LIVE');
    await b.keyboard.press('ArrowLeft');
    await expect.poll(() => behind(b), { timeout: 5000 }).toBeGreaterThanOrEqual(9);
    await b.keyboard.press('l');
    await expect.poll(() => position(b), { timeout: 5000 }).toBe('LIVE');

    // full screen and back
    await b.getByRole('button', { name: 'Full screen' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => b.evaluate(() => document.fullscreenElement?.className ?? '')).toContain('player');
    await b.getByRole('button', { name: 'Exit full screen' }).focus();
    await b.keyboard.press('Enter');
    await expect.poll(() => b.evaluate(() => document.fullscreenElement)).toBeNull();
    await b.close();
  });

  it(
    'chat: slow mode counts down, moderation from a per-message menu, ban asks first, bans listed with unban',
    { timeout: 90_000 },
    async () => {
      const a = await streamer.context.newPage();
      const b = await viewer.context.newPage();
      await a.goto(`${server.url}/live/${streamId}`);
      await b.goto(`${server.url}/live/${streamId}`);
      const input = b.getByLabel('Message', { exact: true });
      await input.waitFor();

      await a.getByLabel('Slow mode').selectOption('30');
      await expect.poll(() => b.getByTestId('slow-mode').textContent()).toBe('Slow mode: 0:30');
      expect(await a.getByText('Slow mode', { exact: false }).count()).toBe(1); // the owner's header says it once
      await input.fill('first');
      await b.getByRole('button', { name: 'Send' }).click();
      await expect.poll(() => input.inputValue()).toBe('');
      await input.fill('second');
      await b.getByRole('button', { name: 'Send' }).click();
      const notice = b.getByTestId('chat-notice');
      await expect.poll(() => notice.textContent().then((t) => t?.trim())).toMatch(/^Slow mode: \d+ s$/);
      const n1 = Number(/(\d+)/.exec((await notice.textContent())!)![1]);
      await expect.poll(async () => Number(/(\d+)/.exec((await notice.textContent()) ?? '0')![1]), { timeout: 4000 }).toBeLessThan(n1);
      await a.getByLabel('Slow mode').selectOption('0');
      await expect.poll(() => b.getByTestId('slow-mode').count()).toBe(0);

      // remove everything the viewer said, in one action
      await expect.poll(() => a.locator('li[data-message-id]', { hasText: 'first' }).count()).toBe(1);
      const viewerMessages = () => a.locator('li[data-message-id]', { has: a.getByText(viewerName, { exact: true }) }).count();
      expect(await viewerMessages()).toBeGreaterThanOrEqual(2);
      expect(await a.getByRole('button', { name: 'Delete message' }).count()).toBe(0); // no buttons under every message
      await a
        .getByRole('button', { name: `Moderate message from ${viewerName}` })
        .last()
        .click();
      await a.getByRole('button', { name: 'Remove their messages' }).click();
      await expect.poll(viewerMessages, { timeout: 5000 }).toBe(0);
      await expect.poll(() => b.getByText('first', { exact: true }).count(), { timeout: 5000 }).toBe(0);

      // time out: the viewer sees why and for how long
      await input.fill('sorry');
      await b.getByRole('button', { name: 'Send' }).click();
      await a
        .getByRole('button', { name: `Moderate message from ${viewerName}` })
        .last()
        .click();
      await a.screenshot({ path: `${SHOTS}chat-moderation.png` });
      await a.getByRole('button', { name: 'Time out 10 min' }).click();
      await expect.poll(() => b.getByTestId('chat-notice').textContent()).toMatch(/The streamer timed you out: (9:5\d|10:00) left/);
      expect(await input.count()).toBe(0);
      // ...and still after a reload
      await b.reload();
      await expect.poll(() => b.getByTestId('chat-notice').textContent()).toMatch(/The streamer timed you out: 9:[45]\d left/);
      expect(await input.count()).toBe(0);

      // ban asks first
      await a
        .getByRole('button', { name: `Moderate message from ${viewerName}` })
        .last()
        .click();
      await a.getByRole('button', { name: 'Ban…' }).click();
      await a.getByRole('button', { name: 'Cancel' }).click();
      await a.keyboard.press('Escape');
      await a
        .getByRole('button', { name: `Moderate message from ${viewerName}` })
        .last()
        .click();
      await a.getByRole('button', { name: 'Ban…' }).click();
      expect(await a.getByText(`Ban ${viewerName} from this chat?`).count()).toBe(1);
      await a.getByRole('button', { name: 'Yes, ban' }).click();
      await expect.poll(() => b.getByTestId('chat-notice').textContent()).toMatch(/banned you/);

      // the owner's list of banned and timed-out people, with unban
      await a.getByRole('button', { name: 'Banned' }).click();
      const bans = a.getByRole('region', { name: 'Banned and timed out' });
      await expect.poll(() => bans.getByRole('listitem').textContent()).toMatch(new RegExp(`^${viewerName}\\s+banned`));
      await a.getByRole('button', { name: `Unban ${viewerName}` }).click();
      await expect.poll(() => bans.textContent()).toContain('Nobody is banned or timed out.');
      await expect.poll(() => input.count(), { timeout: 5000 }).toBe(1); // the viewer may chat again at once
      await a.close();
      await b.close();
    },
  );

  it('a plain-http LAN address: Copy selects for a manual copy; the camera explains it needs HTTPS', { timeout: 60_000 }, async () => {
    const origin = `http://${LAN_HOST}:${new URL(server.url).port}`;
    const p = await lan.context.newPage();
    await p.goto(`${origin}/`);
    const login = (await (
      await server.api('/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: streamerName, password: 'correct horse battery' }),
      })
    ).json()) as { token: string };
    await p.evaluate((t) => localStorage.setItem('whipcast.token', t), login.token);
    await p.goto(`${origin}/live/go-live`);
    expect(await p.evaluate(() => window.isSecureContext)).toBe(false);
    await p.getByRole('button', { name: 'Copy the bearer token (stream key)' }).click();
    await expect.poll(() => p.getByText(/^Selected: press Ctrl\+C/).count()).toBe(1);
    expect(await p.getByText('Copied', { exact: false }).count()).toBe(0);
    expect(await p.evaluate(() => getSelection()?.toString())).toBe(key);
    expect(await p.getByTestId('insecure-note').textContent()).toContain('needs a secure page: HTTPS');
    expect(await p.getByRole('button', { name: 'Camera' }).isDisabled()).toBe(true);
    await p.screenshot({ path: `${SHOTS}go-live-insecure.png`, fullPage: true });
    await p.close();
  });

  it(
    'the browser camera asks before taking over a live OBS session, shows itself, and warns before leaving',
    { timeout: 90_000 },
    async () => {
      const a = await streamer.context.newPage();
      await a.setViewportSize(DESKTOP);
      await a.goto(`${server.url}/live/go-live`);
      await expect.poll(() => a.getByTestId('live-status').textContent()).toBe('LIVE');
      const obsPackets = () => pub!.counters.videoPackets;

      await a.getByRole('button', { name: 'Camera' }).click();
      const dialog = a.getByRole('alertdialog');
      await expect.poll(() => dialog.textContent()).toContain('Your channel is already live.');
      await a.getByRole('button', { name: 'Cancel' }).click();
      expect(await dialog.count()).toBe(0);
      expect(await a.locator('video.self').count()).toBe(0); // nothing was published

      await a.getByRole('button', { name: 'Camera' }).click();
      await a.getByRole('button', { name: 'Replace it and go live' }).click();
      // the self-view shows the camera
      await expect
        .poll(() => a.locator('video.self').evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 10_000 })
        .toBeGreaterThan(0);
      await expect
        .poll(() => a.locator('video.self').evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 10_000 })
        .toBeGreaterThan(0);
      void obsPackets;
      await a.screenshot({ path: `${SHOTS}go-live-camera.png` });

      // leaving asks first: dismissing stays, accepting leaves and ends the stream
      const asked: string[] = [];
      a.once('dialog', (d) => (asked.push(d.message()), void d.dismiss()));
      await a.getByRole('link', { name: 'View my channel' }).click();
      await expect.poll(() => asked.length).toBe(1);
      expect(asked[0]).toContain('Leaving this page ends your stream');
      expect(new URL(a.url()).pathname).toBe('/live/go-live');
      a.once('dialog', (d) => void d.accept());
      await a.getByRole('link', { name: 'View my channel' }).click();
      await a.waitForURL((url) => url.pathname === `/live/${streamId}`);
      await expect.poll(() => a.locator('.player').getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
      await a.close();
    },
  );

  it('offline: a readable overlay and only the controls that make sense', { timeout: 60_000 }, async () => {
    const b = await viewer.context.newPage();
    await b.goto(`${server.url}/live/${streamId}`);
    await expect.poll(() => b.locator('.player').getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    expect(await b.getByRole('status').filter({ hasText: 'The stream is offline.' }).count()).toBe(1);
    for (const name of ['Pause', 'Back 10 seconds', 'Forward 10 seconds', 'Stats for nerds'])
      expect(await b.getByRole('button', { name }).count(), name).toBe(0);
    expect(await b.getByTestId('delay').count()).toBe(0);
    expect(await b.getByRole('slider', { name: 'Position behind live' }).count()).toBe(0);
    expect(await axeSerious(b)).toEqual([]);
    await b.screenshot({ path: `${SHOTS}player-offline.png` });

    // OBS again, then rotating the key ends it; the viewer's player shows offline
    pub?.drop();
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    await pub.connected();
    await expect.poll(() => frames(b), { timeout: 15_000 }).toBeGreaterThan(0);
    const a = await streamer.context.newPage();
    await a.goto(`${server.url}/live/go-live`);
    await a.getByRole('button', { name: 'Rotate…' }).click();
    await a.getByRole('button', { name: 'Yes, rotate' }).click();
    await expect.poll(() => a.getByTestId('live-status').textContent(), { timeout: 10_000 }).toBe('Offline');
    await expect.poll(() => b.locator('.player').getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    const newKey = (await a.getByTestId('stream-key').textContent())!.trim();
    expect(newKey).toMatch(/^wck_/);
    expect(newKey).not.toBe(key);
    pub.drop();
    pub = null;
    await a.close();
    await b.close();
  });
});
