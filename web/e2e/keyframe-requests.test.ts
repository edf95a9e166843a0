/**
 * Issue #13 item 7: a Chromium viewer on a perfect (loopback) link holds one
 * inbound video stream, decodes it, and sends next to no keyframe requests
 * (PLI/FIR). mediasoup-client's RTP probator (a second video receiver, SSRC
 * 1234, fed only the server's bandwidth probes, never a frame) made Chromium
 * send ~50 PLIs per 20 s; the player leaves it out.
 */
import { fileURLToPath } from 'node:url';
import { launchChromium, ObsPublisher, type Browser } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from '../../signaling/sfu-adapter.ts';
import { startTestServer, type TestServer } from '../../signaling/testing.ts';

const WEB_DIR = fileURLToPath(new URL('../build', import.meta.url));
/** How long the viewer watches before its stats are read. */
const WATCH_MS = 20_000;
/** "A handful per minute": more than this many PLI+FIR in WATCH_MS fails. */
const MAX_REQUESTS = 3;

let server: TestServer;
let browser: Browser;
let pub: ObsPublisher | null = null;

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR } }),
    launchChromium(),
  ]);
}, 120_000);
afterAll(async () => {
  pub?.drop();
  await browser?.close();
  await server?.close();
});

interface VideoInbound {
  ssrc: number;
  framesDecoded: number;
  pliCount: number;
  firCount: number;
  packetsReceived: number;
}

describe('keyframe requests from a Chromium viewer', () => {
  it('one decoding inbound video stream, a handful of keyframe requests at most', { timeout: 90_000 }, async () => {
    const user = await server.register();
    const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
    const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey });
    await pub.connected();

    const page = await browser.context.newPage();
    // every peer connection the page makes, so its stats can be read
    await page.addInitScript(() => {
      const pcs: RTCPeerConnection[] = [];
      (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs = pcs;
      const Native = window.RTCPeerConnection;
      window.RTCPeerConnection = class extends Native {
        constructor(config?: RTCConfiguration) {
          super(config);
          pcs.push(this);
        }
      };
    });
    await page.goto(`${server.url}/live/${me.id}`);
    const videoStats = () =>
      page.evaluate(async () => {
        const out: VideoInbound[] = [];
        for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
          if (pc.connectionState === 'closed') continue;
          for (const s of (await pc.getStats()).values()) {
            if (s.type === 'inbound-rtp' && s.kind === 'video')
              out.push({
                ssrc: s.ssrc,
                framesDecoded: s.framesDecoded ?? 0,
                pliCount: s.pliCount ?? 0,
                firCount: s.firCount ?? 0,
                packetsReceived: s.packetsReceived ?? 0,
              });
          }
        }
        return out;
      });
    await expect.poll(async () => (await videoStats()).some((s) => s.framesDecoded > 0), { timeout: 15_000 }).toBe(true);
    // the instant-start switch to live (and the old replay stream's end) is over within a few seconds
    await page.waitForTimeout(3000);
    const before = await videoStats();
    await page.waitForTimeout(WATCH_MS);
    const after = await videoStats();
    const requests = (list: VideoInbound[]) => list.reduce((n, s) => n + s.pliCount + s.firCount, 0);
    const sent = requests(after) - requests(before);
    console.log(`keyframe requests in ${WATCH_MS / 1000} s: ${sent}; inbound video streams: ${JSON.stringify(after)}`);
    expect(after).toHaveLength(1);
    const [only] = after;
    const was = before.find((s) => s.ssrc === only!.ssrc);
    expect(only!.framesDecoded - (was?.framesDecoded ?? 0)).toBeGreaterThan((WATCH_MS / 1000) * 20); // ~30 fps decoded
    expect(sent).toBeLessThanOrEqual(MAX_REQUESTS);
    await page.close();
  });
});
