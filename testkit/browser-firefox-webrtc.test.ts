/**
 * Firefox as a WHEP viewer of a VP8 channel on a real whipcast: it decodes
 * (getStats) and shows the publisher's rising frame numbers.
 *
 * Firefox here has no H.264 decoder (no OpenH264 plugin without internet),
 * hence VP8. It also pairs no ICE candidates over loopback (its
 * `media.peerconnection.ice.loopback` pref does not bring back loopback host
 * candidates in 153 ESR), so the server's 127.0.0.1 candidate is replaced by a
 * plain relay listening on the host end of a test-created veth pair.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchFirefox, type FirefoxBrowser } from './browser.ts';
import { numberedVp8Fixture } from './media/fixtures.ts';
import { frameNumberInPage } from './media/frame-number.ts';
import { ImpairedPeer, impairPage } from './net/impaired-peer.ts';
import { NetworkNamespace } from './net/netns.ts';
import { inboundVideoStats, startWhepInPage, WHEP_VIDEO_ID } from './page-viewer.ts';
import { ObsPublisher } from './peers/obs-publisher.ts';
import { registerStreamer, waitLive } from './streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from './whipcast-process.ts';

let server: WhipcastProcess;
let firefox: FirefoxBrowser;
let ns: NetworkNamespace;

beforeAll(async () => {
  await numberedVp8Fixture(); // encoded once and cached; not inside the test's timeout
  [server, firefox, ns] = await Promise.all([startWhipcastProcess(), launchFirefox(), NetworkNamespace.create()]);
}, 300_000);
afterAll(async () => {
  await firefox?.close();
  await server?.stop();
  await ns?.close();
});

it('Firefox decodes a VP8 channel over WHEP and shows rising frame numbers', { timeout: 60_000 }, async () => {
  const streamer = await registerStreamer(server.url);
  const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey, codec: 'VP8' });
  const link = new ImpairedPeer({ listenAddress: ns.hostAddress });
  const page = await firefox.newPage();
  try {
    await pub.connected();
    await waitLive(server.url, streamer.id);
    await impairPage(page, link);
    await page.goto(`${server.url}/healthz`);
    expect((await startWhepInPage(page, streamer.whepUrl)).status).toBe(201);
    const numbers: number[] = [];
    const deadline = Date.now() + 20_000;
    while (numbers.length < 10 && Date.now() < deadline) {
      const n = await frameNumberInPage(page, `#${WHEP_VIDEO_ID}`);
      if (n !== null) numbers.push(n);
      await new Promise((r) => setTimeout(r, 200));
    }
    const stats = await inboundVideoStats(page);
    expect(stats.codec.toLowerCase()).toBe('video/vp8');
    expect(stats.framesDecoded).toBeGreaterThan(30);
    expect(numbers.length, `numbers read: ${numbers.join(' ')}`).toBe(10);
    for (let i = 1; i < numbers.length; i++) expect(numbers[i]!).toBeGreaterThanOrEqual(numbers[i - 1]!);
    expect(numbers.at(-1)! - numbers[0]!).toBeGreaterThan(20);
    expect((await link.counters()).toPeer.sent).toBeGreaterThan(100);
  } finally {
    await page.close();
    await link.close();
    await pub.stop();
  }
});
