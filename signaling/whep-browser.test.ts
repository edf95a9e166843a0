/**
 * Headless Chromium (Debian's package) as a WHEP player: it must decode what
 * an OBS-like publisher sends (H.264 signalled as 42e01f), keep its session
 * across a publisher leaving and returning, without reloading.
 */
import { launchChromium, ObsPublisher, type Browser } from '@whipcast/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '2000' } }),
    launchChromium(),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Starts a plain WHEP client in the page; returns when the answer is applied. */
async function startWhep(page: Page, url: string): Promise<number> {
  return page.evaluate(async (whepUrl) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(whepUrl, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
    if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    (window as unknown as { pc: RTCPeerConnection }).pc = pc;
    return res.status;
  }, url);
}

async function videoStats(page: Page): Promise<{ framesDecoded: number; codec: string; audioPackets: number }> {
  return page.evaluate(async () => {
    const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
    const out = { framesDecoded: 0, codec: '', audioPackets: 0 };
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.framesDecoded += s.framesDecoded ?? 0;
        if (s.codecId) out.codec = stats.get(s.codecId)?.mimeType ?? '';
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets += s.packetsReceived ?? 0;
    });
    return out;
  });
}

async function waitFor<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Chromium as a WHEP viewer', () => {
  it('decodes the stream, and keeps decoding when the publisher leaves and comes back', async () => {
    const user = await server.register();
    const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
    const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
    const publish = async () => {
      const p = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { profile: 'high' } });
      await p.connected();
      return p;
    };
    let pub = await publish();
    await waitFor(
      () => server.api(`/api/live/streams/${me.id}`).then((r) => r.json() as Promise<{ status: string }>),
      (s) => s.status === 'live',
      5000,
      'live',
    );

    const page = await browser.context.newPage();
    await page.goto(`${server.url}/healthz`);
    expect(await startWhep(page, `/whep/${me.id}`)).toBe(201);
    const first = await waitFor(
      () => videoStats(page),
      (s) => s.framesDecoded > 10 && s.audioPackets > 20,
      15_000,
      'frames decoded',
    );
    expect(first.codec).toBe('video/H264'); // High-profile stream signalled as 42e01f, as OBS does

    // The publisher leaves (OBS "Stop Streaming") and returns with a fresh POST: the page is not reloaded.
    expect(await pub.stop()).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const paused = (await videoStats(page)).framesDecoded;
    pub = await publish();
    await waitFor(
      () => videoStats(page),
      (s) => s.framesDecoded > paused + 20,
      15_000,
      'frames after the publisher returned',
    );
    await pub.stop();
    await page.close();
  });
});
