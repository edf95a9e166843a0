/**
 * WHIP ingest and WHEP playback end to end: a real server with a real
 * mediasoup worker, an OBS-like publisher (libdatachannel) sending real H.264
 * and Opus over ICE/DTLS/SRTP on 127.0.0.1, and WHEP viewers receiving it.
 */
import { ObsPublisher, startGstPublisher, waitUntil, WhepViewer, WhipRefused } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';
import { detectAnnouncedAddress } from './config.ts';

let server: TestServer;

async function channel(srv = server): Promise<{ channelId: string; key: string; auth: { authorization: string } }> {
  const server = srv;
  const user = await server.register();
  const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
  const key = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
  return { channelId: me.id, key: key.streamKey, auth: user.auth };
}

async function status(channelId: string, srv = server): Promise<{ status: string; viewerCount: number; startedAt: string | null }> {
  return (await (await srv.api(`/api/live/streams/${channelId}`)).json()) as {
    status: string;
    viewerCount: number;
    startedAt: string | null;
  };
}

async function waitStatus(channelId: string, want: string, timeoutMs = 20_000, srv = server): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await status(channelId, srv)).status === want) return;
    if (Date.now() > deadline) throw new Error(`channel did not become ${want}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  server = await startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500' } });
});
afterAll(() => server?.close());

describe('WHIP from an OBS-like publisher to WHEP viewers', () => {
  it('goes live on first media, delivers decodable H.264 and Opus, and goes offline on DELETE 200', async () => {
    const { channelId, key } = await channel();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    expect(pub.exchange!.status).toBe(201);
    expect(pub.exchange!.headers.get('location')).toMatch(/^\/whip\/sessions\/[\w-]{20,}$/);
    expect(pub.exchange!.etag).toMatch(/^"[^"]+"$/);
    const answer = pub.exchange!.answer;
    expect(answer).toMatch(/a=recvonly/);
    expect(answer).toMatch(/a=rtpmap:111 opus\/48000\/2/);
    expect(answer).toMatch(/a=rtpmap:96 H264\/90000/);
    expect(answer.match(/^a=candidate:/gm)?.length).toBe(2); // one UDP candidate per m-line: OBS wants exactly one
    await pub.connected();
    await waitStatus(channelId, 'live');
    expect((await status(channelId)).startedAt).not.toBeNull();
    expect((await fetch(`${server.url}/whep/${channelId}`, { method: 'HEAD' })).status).toBe(200);

    const viewer = await WhepViewer.watch({ url: `${server.url}/whep/${channelId}` });
    expect(viewer.exchange!.answer).toMatch(/a=sendonly/);
    await viewer.connected();
    const r = viewer.receiver;
    await waitUntil(() => r.video.keyframes >= 1 && r.audio.packets >= 50, 8000, 'keyframe and audio at the viewer');
    expect(r.video.firstFrameDecodable).toBe(true);
    expect(r.video.frames).toBeGreaterThan(5);
    expect(r.video.lastStamp).not.toBeNull();
    await waitUntil(() => pub.counters.frames > 0 && r.video.latenciesMs.length > 10, 3000, 'latency samples');
    const sorted = [...r.video.latenciesMs].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(200); // loopback glass-to-glass
    expect((await status(channelId)).viewerCount).toBe(1);

    expect(await pub.stop()).toBe(200);
    await waitStatus(channelId, 'offline');
    viewer.close();
  });
});

const OFFER_HEADERS = { 'content-type': 'application/sdp' };

/** A minimal well-formed sendonly offer. */
function offer(mlines: string): string {
  return [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:abcdefghijklmnopqrstuvwx',
    'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
    'a=setup:actpass',
    mlines,
    '',
  ].join('\r\n');
}
const H265_ONLY = offer(
  'm=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:98 H265/90000',
);
const DATA_ONLY = offer('m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000');

describe('WHIP error paths', () => {
  let key: string;
  beforeAll(async () => {
    key = (await channel()).key;
  });
  const post = (body: string, headers: Record<string, string>) => fetch(`${server.url}/whip`, { method: 'POST', headers, body });

  it('answers CORS preflight with Accept-Post', async () => {
    const res = await fetch(`${server.url}/whip`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('accept-post')).toBe('application/sdp');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Location/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  });

  it('415 for a body that is not application/sdp', async () => {
    const res = await post('v=0', { 'content-type': 'text/plain', authorization: `Bearer ${key}` });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });

  it('401 with WWW-Authenticate for a missing or unknown key', async () => {
    for (const headers of [OFFER_HEADERS, { ...OFFER_HEADERS, authorization: 'Bearer wck_not-a-key' }]) {
      const res = await post(H265_ONLY, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('400 for malformed SDP, 422 for tracks it cannot take, 413 for a huge offer', async () => {
    const auth = { ...OFFER_HEADERS, authorization: `Bearer ${key}` };
    const bad = await post('hello, this is not SDP', auth);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('malformed_sdp');
    const noMid = await post(offer('m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2'), auth);
    expect(noMid.status).toBe(400);
    for (const sdp of [H265_ONLY, DATA_ONLY]) {
      const res = await post(sdp, auth);
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media');
    }
    const huge = await post(H265_ONLY + 'a=x-padding:' + 'x'.repeat(70_000) + '\r\n', auth);
    expect(huge.status).toBe(413);
  });

  it('404 for DELETE/PATCH of an unknown session, 415 for a PATCH that is not an sdpfrag', async () => {
    const del = await fetch(`${server.url}/whip/sessions/nope`, { method: 'DELETE' });
    expect(del.status).toBe(404);
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    try {
      const patch = (headers: Record<string, string>, body: string) => fetch(pub.location, { method: 'PATCH', headers, body });
      expect((await patch({ 'content-type': 'text/plain' }, 'x')).status).toBe(415);
      const trickle = await patch({ 'content-type': 'application/trickle-ice-sdpfrag' }, 'a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n');
      expect(trickle.status).toBe(204);
      const stale = await patch(
        { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '"stale"' },
        'a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n',
      );
      expect(stale.status).toBe(412);
      const restart = await patch(
        { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*' },
        'a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n',
      );
      expect(restart.status).toBe(200);
      expect(restart.headers.get('etag')).toBe('"new1"');
      expect(await restart.text()).toMatch(/^a=ice-ufrag:\S+\r\na=ice-pwd:\S+\r\na=candidate:/);
    } finally {
      await pub.stop();
    }
  });

  it('keeps serving other clients while refusing bad input', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
  });
});

describe('publisher lifecycle', () => {
  it('a fresh POST with the same key replaces a live session (OBS reconnect wins)', async () => {
    const { channelId, key } = await channel();
    const first = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    await first.connected();
    await waitStatus(channelId, 'live');
    const viewer = await WhepViewer.watch({ url: `${server.url}/whep/${channelId}` });
    await viewer.connected();
    const v = viewer.receiver.video;
    await waitUntil(() => v.keyframes >= 1, 5000, 'media from the first publisher');
    const second = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    expect(second.exchange!.status).toBe(201);
    await second.connected();
    // the old session is gone, the channel never went offline
    expect(await fetch(first.location, { method: 'DELETE' }).then((r) => r.status)).toBe(404);
    expect((await status(channelId)).status).toBe('live');
    // the viewer's session carries on: same SSRC, frames from the new publisher (its own frame counter restarts at 0)
    const framesBefore = v.frames;
    await waitUntil(() => v.frames > framesBefore + 30 && (v.lastStamp?.frame ?? 1e9) < 60, 8000, 'frames from the new publisher');
    expect(v.ssrcs.size).toBe(1);
    expect(v.incompleteFrames).toBeLessThan(3);
    expect(await second.stop()).toBe(200);
    await waitStatus(channelId, 'offline');
    first.drop();
    viewer.close();
  });

  it('rotating the stream key ends the live session and refuses the old key', async () => {
    const { channelId, key, auth } = await channel();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    await pub.connected();
    await waitStatus(channelId, 'live');
    const rotated = await server.api('/api/live/streams/me/key', { method: 'POST', headers: auth });
    expect(rotated.status).toBe(200);
    await waitStatus(channelId, 'offline');
    expect(await fetch(pub.location, { method: 'DELETE' }).then((r) => r.status)).toBe(404);
    const again = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(WhipRefused);
    expect((again as WhipRefused).status).toBe(401);
    pub.drop();
  });

  it('a publisher that stops sending RTP times out and the channel goes offline', async () => {
    const { channelId, key } = await channel();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    await pub.connected();
    await waitStatus(channelId, 'live');
    pub.pauseMedia();
    const t0 = Date.now();
    await waitStatus(channelId, 'offline', 6000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // PUBLISHER_TIMEOUT_MS=1500, not instant
    pub.drop();
  });

  it('a publisher that vanishes without DELETE (DTLS closed) takes the channel offline', async () => {
    const { channelId, key } = await channel();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: key });
    await pub.connected();
    await waitStatus(channelId, 'live');
    pub.drop();
    await waitStatus(channelId, 'offline', 6000);
  });

  it('WHEP for a channel that is not live is 404 stream_offline', async () => {
    const { channelId } = await channel();
    const res = await fetch(`${server.url}/whep/${channelId}`, { method: 'POST', headers: OFFER_HEADERS, body: H265_ONLY });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('stream_offline');
    // HEAD answers as the POST would: no channel, or not live, is 404
    for (const id of [channelId, 'a3bb189e-8bf9-3888-9912-ace4e6543002', 'not-a-channel']) {
      expect((await fetch(`${server.url}/whep/${id}`, { method: 'HEAD' })).status, id).toBe(404);
    }
  });
});

describe('GStreamer webrtcbin publisher (max-bundle, bundle-only audio)', () => {
  // libnice gathers no loopback candidates: this server announces the host's own address.
  let gstServer: TestServer;
  beforeAll(async () => {
    gstServer = await startTestServer({
      media: createSfuMedia,
      env: { MEDIA_WORKERS: '1', RTC_LISTEN_IP: '0.0.0.0', RTC_ANNOUNCED_ADDRESS: detectAnnouncedAddress() },
    });
  });
  afterAll(() => gstServer?.close());

  it('publishes H.264 + Opus that a WHEP viewer receives', async () => {
    const { channelId, key } = await channel(gstServer);
    const server = gstServer;
    const gst = startGstPublisher(`${server.url}/whip`, key, 12);

    try {
      expect(await gst.waitFor('STATUS', 10_000)).toBe('STATUS 201');
      expect(await gst.waitFor('BUNDLE_ONLY', 1000)).toBe('BUNDLE_ONLY True');
      await waitStatus(channelId, 'live', 10_000, server); // first media arrived: ICE and DTLS are up
      await gst.waitFor('CONNECTED', 2_000);
      await waitStatus(channelId, 'live', 10_000, server);
      const viewer = await WhepViewer.watch({ url: `${server.url}/whep/${channelId}` });
      await viewer.connected();
      const r = viewer.receiver;
      await waitUntil(() => r.video.keyframes >= 1 && r.audio.packets >= 25, 8000, 'GStreamer media at the viewer');
      expect(r.video.firstFrameDecodable).toBe(true);
      viewer.close();
      expect(await gst.waitFor('DELETE', 15_000)).toBe('DELETE 200');
      await waitStatus(channelId, 'offline', 10_000, server);
    } finally {
      gst.kill();
    }
  });
});
