/**
 * A Chromium viewer inside a network namespace behind a tbf-capped veth: at a
 * 1 Mbit/s downlink it cannot receive a 2.5 Mbit/s channel in full (the cap
 * drops, the browser's bitrate stays under the cap); lifting the cap lets the
 * whole stream through. The namespace is gone after close.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CHROMIUM_PATH, launchChromium, type Browser } from '../browser.ts';
import { inboundVideoStats, startWhepInPage } from '../page-viewer.ts';
import { ObsPublisher } from '../peers/obs-publisher.ts';
import { registerStreamer, waitLive } from '../streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from '../whipcast-process.ts';
import { ImpairedPeer, impairPage } from './impaired-peer.ts';
import { NetworkNamespace } from './netns.ts';

let server: WhipcastProcess;
let ns: NetworkNamespace;
let browser: Browser;

beforeAll(async () => {
  [server, ns] = await Promise.all([startWhipcastProcess(), NetworkNamespace.create({ down: { kbps: 1000 } })]);
  browser = await launchChromium({ executablePath: await ns.wrapExecutable(CHROMIUM_PATH) });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await ns?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a viewer in a namespace capped at 1 Mbit/s gets at most that, and all of it once the cap is lifted', { timeout: 90_000 }, async () => {
  const streamer = await registerStreamer(server.url);
  const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, video: { kbps: 2500 } });
  // Inside the namespace, the server's loopback HTTP and UDP are reached through the host end of the veth.
  const httpPort = await ns.forwardTcp(Number(new URL(server.url).port));
  const link = new ImpairedPeer({ listenAddress: ns.hostAddress });
  const page = await browser.context.newPage();
  const bytes = () =>
    page.evaluate(async () => {
      let n = 0;
      (await (window as unknown as { __whep: RTCPeerConnection }).__whep.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.bytesReceived ?? 0;
      });
      return n;
    });
  const kbpsOver = async (ms: number) => {
    const b0 = await bytes();
    await sleep(ms);
    return (((await bytes()) - b0) * 8) / ms;
  };
  try {
    await pub.connected();
    await waitLive(server.url, streamer.id);
    await impairPage(page, link);
    await page.goto(`http://${ns.hostAddress}:${httpPort}/healthz`);
    expect((await startWhepInPage(page, `/whep/${streamer.id}`)).status).toBe(201);
    await sleep(3000);
    const capped = await kbpsOver(5000);
    const drops = (await ns.capStats('down')).dropped;
    expect(capped).toBeLessThan(1050);
    expect(capped).toBeGreaterThan(400);
    expect(drops).toBeGreaterThan(50);

    await ns.setCap('down', null);
    await sleep(2000);
    const free = await kbpsOver(5000);
    expect(free).toBeGreaterThan(1800);
    expect((await inboundVideoStats(page)).framesDecoded).toBeGreaterThan(30);
  } finally {
    await page.close();
    await link.close();
    await pub.stop();
  }
});

it('close removes the namespace and both veth ends', async () => {
  const other = await NetworkNamespace.create({ up: { kbps: 500 } });
  expect(execFileSync('ip', ['netns', 'list']).toString()).toContain(other.name);
  await other.close();
  await other.close();
  expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(other.name);
  expect(execFileSync('ip', ['link']).toString()).not.toContain(other.hostIf);
});
