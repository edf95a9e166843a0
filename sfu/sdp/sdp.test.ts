/**
 * The SDP layer against offers real clients sent (fixtures/, captured by
 * fixtures/capture.ts): OBS's stack (libdatachannel), GStreamer webrtcbin
 * with max-bundle (bundle-only audio), Chromium and Firefox as WHIP
 * publishers and WHEP players. Parsing, planning against a real router's
 * capabilities, and the answers written for them.
 */
import { readFileSync } from 'node:fs';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import * as sdpTransform from 'sdp-transform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from '../codecs.ts';
import { resolveWorkerBin } from '../worker-bin.ts';
import { buildAnswer, remoteDtlsRole, type TransportInfo } from './answer.ts';
import { SdpError } from './errors.ts';
import { parseOffer, type ParsedOffer } from './offer.ts';
import { egressRouterKey, planEgress, planIngest, type SourceCodecs } from './plan.ts';

const fixture = (name: string): string => readFileSync(new URL(`fixtures/${name}.sdp`, import.meta.url), 'utf8');
const OBS = fixture('obs-libdatachannel');
const GST = fixture('gstreamer-max-bundle');
const CHROMIUM_WHIP = fixture('chromium-whip');
const CHROMIUM_WHEP = fixture('chromium-whep');
const FIREFOX_WHIP = fixture('firefox-whip');
const FIREFOX_WHEP = fixture('firefox-whep');

const sdpError = (fn: () => unknown): SdpError => {
  try {
    fn();
  } catch (e) {
    if (e instanceof SdpError) return e;
    throw e;
  }
  throw new Error('no SdpError thrown');
};

describe('parseOffer', () => {
  it("OBS's stack: sendonly Opus + H.264 (packetization-mode 1), no candidates, actpass", () => {
    const o = parseOffer(OBS);
    expect(o.setup).toBe('actpass');
    expect(o.fingerprint.algorithm).toBe('sha-256');
    expect(o.iceUfrag).not.toBe('');
    expect(o.media.map((m) => [m.kind, m.mid, m.direction])).toEqual([
      ['audio', '0', 'sendonly'],
      ['video', '1', 'sendonly'],
    ]);
    const h264 = o.media[1]!.codecs[0]!;
    expect(h264.mimeType.toLowerCase()).toBe('video/h264');
    expect(Number(h264.parameters['packetization-mode'])).toBe(1);
    expect(o.media[0]!.codecs[0]).toMatchObject({ clockRate: 48000, channels: 2 });
    expect(OBS).not.toContain('a=candidate');
  });

  it('GStreamer max-bundle: the audio m-line has port 0 and a=bundle-only, and still counts', () => {
    const o = parseOffer(GST);
    expect(o.media.map((m) => [m.kind, m.mid, m.bundleOnly])).toEqual([
      ['video', 'video0', false],
      ['audio', 'audio1', true],
    ]);
    expect(o.media.every((m) => m.direction === 'sendrecv')).toBe(true);
  });

  it('Chromium WHIP: codecs in its preference order with RTX folded in, header extensions, SSRC + RTX pairs', () => {
    const o = parseOffer(CHROMIUM_WHIP);
    const video = o.media.find((m) => m.kind === 'video')!;
    expect(video.direction).toBe('sendonly');
    expect(video.codecs.some((c) => c.mimeType.toLowerCase().endsWith('/rtx'))).toBe(false);
    expect(video.codecs[0]).toMatchObject({ mimeType: 'video/VP8', payloadType: 96, rtxPayloadType: 97 });
    expect(video.codecs.some((c) => c.mimeType.toLowerCase() === 'video/h264')).toBe(true);
    expect(video.extensions.some((e) => e.uri === 'urn:ietf:params:rtp-hdrext:sdes:mid')).toBe(true);
    expect(video.ssrcs).toHaveLength(1);
    expect(video.ssrcs[0]!.rtxSsrc).toBeGreaterThan(0);
  });

  it('Firefox WHIP: sendonly VP8/VP9/AV1 (no H.264 without its OpenH264 plugin)', () => {
    const o = parseOffer(FIREFOX_WHIP);
    const video = o.media.find((m) => m.kind === 'video')!;
    expect(o.media.map((m) => m.direction)).toEqual(['sendonly', 'sendonly']);
    expect(video.codecs.map((c) => c.mimeType.toUpperCase())).toEqual(expect.arrayContaining(['VIDEO/VP8', 'VIDEO/VP9', 'VIDEO/AV1']));
    expect(video.codecs.some((c) => c.mimeType.toLowerCase() === 'video/h264')).toBe(false);
  });

  it('Chromium and Firefox WHEP: recvonly on both m-lines', () => {
    for (const sdp of [CHROMIUM_WHEP, FIREFOX_WHEP])
      expect(parseOffer(sdp).media.map((m) => m.direction)).toEqual(['recvonly', 'recvonly']);
  });

  it('refuses what is not an offer with a 400, and data channels with a 422', () => {
    expect(sdpError(() => parseOffer('hello')).status).toBe(400);
    expect(sdpError(() => parseOffer(OBS.replace(/^a=fingerprint:.*\r\n/gm, ''))).status).toBe(400);
    expect(sdpError(() => parseOffer(OBS.replace(/^a=mid:1\r\n/m, 'a=mid:0\r\n'))).message).toMatch(/mid/);
    expect(sdpError(() => parseOffer(OBS.replace(/^a=ice-pwd:.*\r\n/gm, ''))).status).toBe(400);
    const withData = OBS + 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n';
    expect(sdpError(() => parseOffer(withData)).status).toBe(422);
  });
});

describe('planning and answers against a real router', () => {
  let worker: types.Worker;
  let caps: types.RtpCapabilities;
  beforeAll(async () => {
    worker = await mediasoup.createWorker({ workerBin: resolveWorkerBin(process.env), logLevel: 'warn' });
    caps = (await worker.createRouter({ mediaCodecs: MEDIA_CODECS })).rtpCapabilities;
  });
  afterAll(() => worker?.close());

  const transport: TransportInfo = {
    iceParameters: { usernameFragment: 'srvufrag', password: 'srvpassword0123456789', iceLite: true },
    iceCandidates: [
      {
        foundation: 'udpcandidate',
        priority: 1076302079,
        ip: '127.0.0.1',
        address: '127.0.0.1',
        protocol: 'udp',
        port: 40000,
        type: 'host',
      },
    ],
    dtlsParameters: { role: 'auto', fingerprints: [{ algorithm: 'sha-256', value: 'AB:'.repeat(31) + 'AB' }] },
  };
  const sourceOf = (offer: ParsedOffer): SourceCodecs => {
    const out: SourceCodecs = {};
    for (const t of planIngest(offer, caps)) out[t.kind] = t.rtpParameters.codecs[0]!;
    return out;
  };

  it('ingest: OBS and GStreamer give one Opus and one H.264 track on their own payload types; Chromium and Firefox their first choice', () => {
    for (const sdp of [OBS, GST]) {
      const offer = parseOffer(sdp);
      const tracks = planIngest(offer, caps);
      expect(tracks.map((t) => t.kind).sort()).toEqual(['audio', 'video']);
      for (const t of tracks) {
        const offered = offer.media.find((m) => m.kind === t.kind)!.codecs[0]!;
        expect(t.rtpParameters.codecs[0]!.payloadType).toBe(offered.payloadType);
        expect(t.rtpParameters.mid).toBe(offer.media.find((m) => m.kind === t.kind)!.mid);
      }
      expect(tracks.find((t) => t.kind === 'video')!.rtpParameters.codecs[0]!.mimeType.toLowerCase()).toBe('video/h264');
    }
    expect(sourceOf(parseOffer(CHROMIUM_WHIP)).video!.mimeType).toBe('video/VP8');
    expect(sourceOf(parseOffer(FIREFOX_WHIP)).video!.mimeType).toBe('video/VP8');
    // the RTX of a sender's codec comes along (Chromium sends it)
    const chromiumVideo = planIngest(parseOffer(CHROMIUM_WHIP), caps).find((t) => t.kind === 'video')!;
    expect(chromiumVideo.rtpParameters.encodings![0]!.rtx?.ssrc).toBeGreaterThan(0);
  });

  it('ingest refuses a player (recvonly) offer with a 422', () => {
    expect(sdpError(() => planIngest(parseOffer(CHROMIUM_WHEP), caps)).status).toBe(422);
  });

  it("egress: each player gets the channel's codec on the player's own payload types, or a 422 it cannot decode", () => {
    const obs = sourceOf(parseOffer(OBS));
    const chromium = parseOffer(CHROMIUM_WHEP);
    const plan = planEgress(chromium, obs, caps);
    const video = plan.accepted.find((a) => a.media.kind === 'video')!;
    expect(video.codec.mimeType.toLowerCase()).toBe('video/h264');
    expect(video.codec.parameters['profile-level-id']).toBe(obs.video!.parameters!['profile-level-id']);
    expect(plan.routerCodecs.find((c) => c.kind === 'video')!.preferredPayloadType).toBe(video.codec.payloadType);
    // players whose payload types agree share an audience router; Firefox's differ
    const firefox = parseOffer(FIREFOX_WHEP);
    const vp8 = sourceOf(parseOffer(FIREFOX_WHIP));
    expect(egressRouterKey(planEgress(firefox, vp8, caps).routerCodecs)).not.toBe(
      egressRouterKey(planEgress(chromium, vp8, caps).routerCodecs),
    );
    // an H.264 channel to a Firefox without OpenH264: told so, not given a black picture
    const refused = sdpError(() => planEgress(firefox, obs, caps));
    expect(refused.status).toBe(422);
    expect(refused.message).toMatch(/cannot receive.*H264/i);
  });

  it('answers: every accepted m-line in order with its mid, our direction, ICE-lite credentials, passive DTLS and candidates', () => {
    for (const sdp of [OBS, GST, CHROMIUM_WHIP, FIREFOX_WHIP]) {
      const offer = parseOffer(sdp);
      const tracks = planIngest(offer, caps);
      const answer = sdpTransform.parse(buildAnswer({ offer, accepted: tracks.map((t) => t.accepted), transport, direction: 'recvonly' }));
      expect(answer.icelite).toBe('ice-lite');
      expect(answer.groups?.[0]).toMatchObject({ type: 'BUNDLE', mids: offer.media.map((m) => m.mid).join(' ') });
      expect(answer.media.map((m) => String(m.mid))).toEqual(offer.media.map((m) => m.mid));
      for (const m of answer.media) {
        expect(m.direction).toBe('recvonly');
        expect(m.setup).toBe('passive');
        expect(m.iceUfrag).toBe('srvufrag');
        expect(m.candidates?.[0]).toMatchObject({ ip: '127.0.0.1', port: 40000, transport: 'udp', type: 'host' });
        expect(m.rtp.map((r) => r.payload)).toEqual(String(m.payloads).split(' ').map(Number));
      }
      expect(remoteDtlsRole(offer)).toBe('client');
    }
    // WHEP: sendonly, with the SSRCs players without MID demuxing need
    const offer = parseOffer(CHROMIUM_WHEP);
    const plan = planEgress(offer, sourceOf(parseOffer(OBS)), caps);
    for (const a of plan.accepted) a.sendSsrcs = { ssrc: a.media.kind === 'audio' ? 1111 : 2222, cname: 'whipcast' };
    const answer = sdpTransform.parse(buildAnswer({ offer, accepted: plan.accepted, transport, direction: 'sendonly' }));
    expect(answer.media.map((m) => m.direction)).toEqual(['sendonly', 'sendonly']);
    expect(answer.media.map((m) => m.ssrcs?.[0]?.id)).toEqual([1111, 2222]);
  });
});
