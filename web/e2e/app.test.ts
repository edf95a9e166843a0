/**
 * The web app end to end in headless Chromium (Debian's package, driven by
 * playwright-core) against the real server with media: sign up, go live with
 * an OBS-like publisher, watch in a second browser, counts, chat, rotation.
 * Screenshots of each page go to artifacts/screenshots/.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { launchChromium, ObsPublisher, type Browser } from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));

let server: TestServer;
let streamer: Browser;
let viewer: Browser;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  [server, streamer, viewer] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
    launchChromium(),
  ]);
});
afterAll(async () => {
  await Promise.all([streamer?.close(), viewer?.close()]);
  await server?.close();
});

async function signUp(page: Page, username: string): Promise<void> {
  await page.goto(`${server.url}/login?next=/live/go-live`);
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.pathname === '/live/go-live');
  await expect.poll(() => page.getByText(`Signed in as ${username}`).count()).toBe(1);
}

async function axeSerious(page: Page): Promise<string[]> {
  const source = await readFile(fileURLToPath(import.meta.resolve('axe-core/axe.min.js')), 'utf8');
  await page.addScriptTag({ content: source });
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> } }).axe;
    return axe.run();
  });
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.nodes.length})`);
}

describe('web app in Chromium', () => {
  it('go live, watch, count, chat, rotate — with accessible pages', { timeout: 120_000 }, async () => {
    const a = await streamer.context.newPage();
    const b = await viewer.context.newPage();
    const suffix = Math.random().toString(36).slice(2, 8);

    await a.goto(`${server.url}/`);
    await expect.poll(() => a.getByText('Nobody is live right now.').count()).toBe(1);
    await a.screenshot({ path: `${SHOTS}browse-empty.png` });
    expect(await axeSerious(a)).toEqual([]);

    await a.goto(`${server.url}/login`);
    await a.screenshot({ path: `${SHOTS}login.png` });
    expect(await axeSerious(a)).toEqual([]);

    await signUp(a, `streamer_${suffix}`);
    await expect.poll(() => a.getByTestId('live-status').textContent()).toBe('Offline');
    await a.getByRole('button', { name: 'Reveal' }).click();
    const key = (await a.getByTestId('stream-key').textContent())!.trim();
    const whipUrl = (await a.getByTestId('whip-url').textContent())!.trim();
    expect(key).toMatch(/^wck_/);
    expect(whipUrl).toBe(`${server.url}/whip`);
    await a.screenshot({ path: `${SHOTS}go-live.png`, fullPage: true });
    expect(await axeSerious(a)).toEqual([]);

    const pub = await ObsPublisher.publish({ url: whipUrl, token: key });
    await pub.connected();
    await expect.poll(() => a.getByTestId('live-status').textContent(), { timeout: 10_000 }).toBe('LIVE');
    const streamId = ((await (await server.api('/api/live/streams')).json()) as { streams: { id: string }[] }).streams[0]!.id;

    await signUp(b, `viewer_${suffix}`);
    await b.goto(`${server.url}/live/${streamId}`);
    const t0 = Date.now();
    await expect
      .poll(() => b.locator('video').first().getAttribute('data-frames-decoded').then(Number), { timeout: 15_000 })
      .toBeGreaterThan(0);
    const firstFrameMs = Date.now() - t0;
    expect(firstFrameMs).toBeLessThan(15_000);
    await expect.poll(() => b.getByTestId('viewer-count').textContent()).toBe('1');
    await b.screenshot({ path: `${SHOTS}player.png`, fullPage: true });
    expect(await axeSerious(b)).toEqual([]);

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
    await b.screenshot({ path: `${SHOTS}player-chat.png`, fullPage: true });

    // DVR: back 10 s on the same connection, frames keep decoding, LIVE returns; keyboard too
    const frames = () => b.locator('video').first().getAttribute('data-frames-decoded').then(Number);
    await b.getByRole('button', { name: 'Back 10 s' }).click();
    await expect.poll(() => b.getByTestId('dvr-position').textContent(), { timeout: 5000 }).toMatch(/^-\d+:\d\d$/);
    const before = await frames();
    await expect.poll(frames, { timeout: 8000 }).toBeGreaterThan(before + 10);
    await b.screenshot({ path: `${SHOTS}player-dvr.png`, fullPage: true });
    await b.getByRole('button', { name: 'LIVE', exact: true }).click();
    await expect.poll(() => b.getByTestId('dvr-position').textContent(), { timeout: 5000 }).toBe('LIVE');
    const atLive = await frames();
    await expect.poll(frames, { timeout: 8000 }).toBeGreaterThan(atLive + 10);
    await b.locator('body').press('ArrowLeft');
    await expect.poll(() => b.getByTestId('dvr-position').textContent(), { timeout: 5000 }).not.toBe('LIVE');
    await b.locator('body').press('l');
    await expect.poll(() => b.getByTestId('dvr-position').textContent(), { timeout: 5000 }).toBe('LIVE');

    // rotating the key ends the publisher; the viewer's player shows offline
    await a.goto(`${server.url}/live/go-live`);
    await a.getByRole('button', { name: 'Rotate…' }).click();
    await a.getByRole('button', { name: 'Yes, rotate' }).click();
    await expect.poll(() => a.getByTestId('live-status').textContent(), { timeout: 10_000 }).toBe('Offline');
    await expect.poll(() => b.locator('.player').getAttribute('data-state'), { timeout: 10_000 }).toBe('offline');
    expect((await a.getByTestId('stream-key').textContent())!.trim()).not.toBe(key);
    pub.drop();
  });
});
