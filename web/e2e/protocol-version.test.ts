/**
 * A page loaded before the server was updated: the server's `hello` names
 * another PROTOCOL_VERSION. The page must say so (an alert with a Reload
 * button), stop talking to the server (no request frames, no reconnect loop),
 * and a page whose version matches must not show the alert. The real server
 * runs; the test only rewrites the version in its `hello` on the way to the
 * page (Playwright's WebSocket routing), as an updated server would send it.
 */
import { fileURLToPath } from 'node:url';
import { decode, encode } from '@msgpack/msgpack';
import { launchChromium, type Browser } from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../signaling/protocol.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  [server, browser] = await Promise.all([startTestServer({ env: { WEB_DIR } }), launchChromium()]);
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** What went over the page's sockets: connections opened and frames the page sent. */
interface Traffic {
  connections: number;
  framesFromPage: number;
}

/** Routes the page's /ws through the real server, announcing `version` in the server's hello. */
async function routeSocket(page: Page, version: number): Promise<Traffic> {
  const traffic: Traffic = { connections: 0, framesFromPage: 0 };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    traffic.connections++;
    const upstream = ws.connectToServer();
    ws.onMessage((message) => {
      traffic.framesFromPage++;
      upstream.send(message);
    });
    upstream.onMessage((message) => {
      if (typeof message === 'string') return ws.send(message);
      const frame = decode(message) as Record<string, unknown>;
      ws.send(frame.t === 'hello' ? Buffer.from(encode({ ...frame, version })) : message);
    });
  });
  return traffic;
}

const alert = (page: Page) => page.getByRole('alert').filter({ hasText: 'updated on the server' });

describe('protocol version check in the web app', () => {
  it('a page whose protocol the server no longer speaks asks for a reload and stops sending', { timeout: 60_000 }, async () => {
    const page = await browser.context.newPage();
    const traffic = await routeSocket(page, PROTOCOL_VERSION + 1);
    await page.goto(`${server.url}/`);
    await expect.poll(() => alert(page).isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await alert(page).getByRole('button', { name: 'Reload the page' }).isVisible()).toBe(true);
    // the socket stays closed: no reconnect (its backoff starts at 0.5 s) and nothing was sent to an incompatible server
    await page.waitForTimeout(3_000);
    expect(traffic).toEqual({ connections: 1, framesFromPage: 0 });
    await page.close();
  });

  it('the same page with a matching version shows no alert and talks to the server', { timeout: 60_000 }, async () => {
    const page = await browser.context.newPage();
    const traffic = await routeSocket(page, PROTOCOL_VERSION);
    await page.goto(`${server.url}/`);
    await expect.poll(() => traffic.framesFromPage, { timeout: 10_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(1_000);
    expect(await alert(page).count()).toBe(0);
    expect(traffic.connections).toBe(1);
    await page.close();
  });
});
