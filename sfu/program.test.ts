/**
 * ProgramTrack rewriting through a real mediasoup worker: packets of two
 * publishers (different SSRCs, sequence numbers and timestamps) reach a
 * viewer of the program as one stream — one SSRC, sequence numbers without a
 * gap or jump at the switch, timestamps that keep going forward by the time
 * that passed.
 */
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { buildRtp, numberedLayerFixtures, packetizeH264, parseRtp } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from './codecs.ts';
import { ProgramTrack } from './program.ts';
import { resolveWorkerBin } from './worker-bin.ts';

let worker: types.Worker;
let router: types.Router;
beforeAll(async () => {
  worker = await mediasoup.createWorker({ workerBin: resolveWorkerBin(process.env), logLevel: 'warn' });
  router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
});
afterAll(() => worker?.close());

const OPUS = { mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 };

/** A publisher: an Opus producer on a DirectTransport, sending 20 ms packets from its own seq/timestamp base. */
async function publisher(ssrc: number, seq0: number, ts0: number) {
  const transport = await router.createDirectTransport();
  const producer = await transport.produce({ kind: 'audio', rtpParameters: { codecs: [OPUS], encodings: [{ ssrc }] } });
  let i = 0;
  return {
    producer,
    send(n: number) {
      for (let k = 0; k < n; k++, i++) {
        const header = {
          payloadType: OPUS.payloadType,
          sequenceNumber: (seq0 + i) & 0xffff,
          timestamp: (ts0 + i * 960) >>> 0,
          ssrc,
          marker: false,
        };
        producer.send(buildRtp(header, Uint8Array.from([0xfc, i & 0xff, 0, 0])));
      }
    },
  };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ProgramTrack', () => {
  it('keeps SSRC, sequence numbers and timestamps continuous across a publisher switch', async () => {
    const [tap, programTransport, viewer] = await Promise.all([
      router.createDirectTransport(),
      router.createDirectTransport(),
      router.createDirectTransport(),
    ]);
    const first = await publisher(1111, 65_500, 4_000_000_000); // wraps seq and timestamp on the way
    const second = await publisher(2222, 7, 123);
    const track = await ProgramTrack.create({ kind: 'audio', source: first.producer, router, tapTransport: tap, programTransport });
    expect(track.accepts(second.producer)).toBe(true);
    const seen: { seq: number; ts: number; ssrc: number; at: number }[] = [];
    const consumer = await viewer.consume({ producerId: track.producer.id, rtpCapabilities: router.rtpCapabilities });
    consumer.on('rtp', (buf) => {
      const p = parseRtp(buf)!;
      seen.push({ seq: p.sequenceNumber, ts: p.timestamp, ssrc: p.ssrc, at: Date.now() });
    });

    for (let k = 0; k < 10; k++) {
      first.send(5);
      await tick(20);
    }
    const before = seen.length;
    expect(before).toBeGreaterThan(30);
    await tick(200); // the switch happens 200 ms of media later
    await track.attach(second.producer);
    for (let k = 0; k < 10; k++) {
      second.send(5);
      await tick(20);
    }
    expect(seen.length).toBeGreaterThan(before + 30);

    expect(new Set(seen.map((s) => s.ssrc)).size).toBe(1);
    for (let i = 1; i < seen.length; i++) expect((seen[i]!.seq - seen[i - 1]!.seq) & 0xffff, `seq step at ${i}`).toBe(1);
    for (let i = 1; i < seen.length; i++) {
      const step = (seen[i]!.ts - seen[i - 1]!.ts) >>> 0;
      if (i === before) {
        // across the switch: forward by about the wall time between the two packets (48 kHz), never backwards
        const wall = ((seen[i]!.at - seen[i - 1]!.at) * 48_000) / 1000;
        expect(step).toBeGreaterThan(0);
        expect(step).toBeLessThan(wall + 48 * 100);
        expect(step).toBeGreaterThan(wall - 48 * 100);
      } else expect(step, `timestamp step at ${i}`).toBe(960);
    }
    track.close();
    expect(track.producer.closed).toBe(true);
  });

  it('offers viewers NACK, PLI/FIR and RTX on video, and Opus in-band FEC whatever the publisher signalled', async () => {
    const [tap, programTransport] = await Promise.all([router.createDirectTransport(), router.createDirectTransport()]);
    const audio = await publisher(3333, 1, 1); // its Opus codec carries no fmtp at all
    const audioTrack = await ProgramTrack.create({ kind: 'audio', source: audio.producer, router, tapTransport: tap, programTransport });
    const opus = audioTrack.producer.rtpParameters.codecs[0]!;
    expect(opus.parameters?.useinbandfec).toBe(1);
    expect(opus.rtcpFeedback).toContainEqual({ type: 'nack', parameter: '' });

    const videoSource = await (
      await router.createDirectTransport()
    ).produce({
      kind: 'video',
      rtpParameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }], encodings: [{ ssrc: 4444 }] },
    });
    const videoTrack = await ProgramTrack.create({ kind: 'video', source: videoSource, router, tapTransport: tap, programTransport });
    const feedback = videoTrack.producer.rtpParameters.codecs[0]!.rtcpFeedback;
    expect(feedback).toEqual(
      expect.arrayContaining([
        { type: 'nack', parameter: '' },
        { type: 'nack', parameter: 'pli' },
        { type: 'ccm', parameter: 'fir' },
      ]),
    );

    // What a browser viewer is offered: a consumer of the program producer on a WebRTC transport.
    const webrtc = await router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
    const caps = router.rtpCapabilities;
    const opusConsumer = await webrtc.consume({ producerId: audioTrack.producer.id, rtpCapabilities: caps, paused: true });
    expect(opusConsumer.rtpParameters.codecs[0]!.parameters?.useinbandfec).toBe(1);
    // (Audio consumers carry no NACK: mediasoup's Opus capability has none, and browsers do not offer it for Opus.)
    const videoConsumer = await webrtc.consume({ producerId: videoTrack.producer.id, rtpCapabilities: caps, paused: true });
    expect(videoConsumer.rtpParameters.codecs.some((c) => c.mimeType.toLowerCase() === 'video/rtx')).toBe(true);
    webrtc.close();
    audioTrack.close();
    videoTrack.close();
  });

  it('keeps every simulcast layer, each continuous, and lets a viewer switch layers both ways (Sender Reports)', async () => {
    const [tap, programTransport, viewer, sourceTransport] = await Promise.all([
      router.createDirectTransport(),
      router.createDirectTransport(),
      router.createDirectTransport(),
      router.createDirectTransport(),
    ]);
    // three layers of the numbered picture (full, ½, ¼), keyframes on the same frames every 0.5 s
    const fixtures = await numberedLayerFixtures({ width: 320, height: 180, kbps: 600, keyframeInterval: 0.5, seconds: 4 });
    const ssrcs = [5001, 5002, 5003]; // lowest first, as mediasoup wants
    const h264 = {
      mimeType: 'video/H264',
      payloadType: 102,
      clockRate: 90000,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' },
    };
    const source = await sourceTransport.produce({
      kind: 'video',
      rtpParameters: { codecs: [h264], encodings: ssrcs.map((ssrc) => ({ ssrc })) },
    });
    const track = await ProgramTrack.create({ kind: 'video', source, router, tapTransport: tap, programTransport });
    expect(track.layers.map((l) => l.rank)).toEqual([2, 1, 0]);
    expect(track.producer.type).toBe('simulcast');
    expect(new Set(track.layers.map((l) => l.ssrc)).size).toBe(3);

    const consumer = await viewer.consume({
      producerId: track.producer.id,
      rtpCapabilities: router.rtpCapabilities,
      preferredLayers: { spatialLayer: 2 },
    });
    expect(consumer.type).toBe('simulcast');
    const received: number[] = []; // payload bytes per frame... counted per packet
    consumer.on('rtp', (buf) => received.push(buf.length));
    const topOnly: number[] = [];
    track.onPacket((p, info) => topOnly.push(info.rank));

    const seq = [1000, 20_000, 40_000];
    let frame = 0;
    const sendFrame = () => {
      const i = frame++;
      fixtures.forEach((f, k) => {
        const au = f.frames[i % f.frames.length]!;
        const payloads = packetizeH264(au.nals);
        const layer = 2 - k; // fixtures are largest first
        payloads.forEach((payload, n) =>
          source.send(
            buildRtp(
              {
                payloadType: 102,
                sequenceNumber: seq[layer]!++ & 0xffff,
                timestamp: (i * 3000 + layer * 777) >>> 0,
                ssrc: ssrcs[layer]!,
                marker: n === payloads.length - 1,
              },
              payload,
            ),
          ),
        );
      });
    };
    const play = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        sendFrame();
        await tick(33);
      }
    };
    const spatial = () => consumer.currentLayers?.spatialLayer;

    await play(1200);
    expect(spatial()).toBe(2);
    expect(topOnly.every((r) => r === 0)).toBe(true);
    await consumer.setPreferredLayers({ spatialLayer: 0 });
    await play(1200);
    expect(spatial()).toBe(0);
    // back up: only possible when mediasoup knows every layer's capture clock (the program's Sender Reports)
    await consumer.setPreferredLayers({ spatialLayer: 1 });
    await play(1200);
    expect(spatial()).toBe(1);
    expect(received.length).toBeGreaterThan(50);

    // a publisher with another number of layers cannot feed this program without viewers renegotiating
    const single = await sourceTransport.produce({ kind: 'video', rtpParameters: { codecs: [h264], encodings: [{ ssrc: 6001 }] } });
    expect(track.accepts(single)).toBe(false);
    track.close();
    sourceTransport.close();
  });
});
