import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedWorkerPath, resolveWorkerBin } from './worker-bin.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SUITES: types.SrtpCryptoSuite[] = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

describe('mediasoup worker binary', () => {
  it('resolves to the same cached path the build script prints', () => {
    const env = { ...process.env, MEDIASOUP_WORKER_BIN: '' };
    const printed = execFileSync('bash', ['scripts/mediasoup-worker.sh'], { cwd: ROOT, env, encoding: 'utf8' }).trim().split('\n').at(-1);
    expect(printed).toBe(cachedWorkerPath(env));
    expect(resolveWorkerBin(env)).toBe(printed);
    expect(resolveWorkerBin({ ...env, MEDIASOUP_WORKER_BIN: '/custom/worker' })).toBe('/custom/worker');
  });

  it('fails with instructions when nothing is built', () => {
    expect(() => resolveWorkerBin({ WHIPCAST_CACHE_DIR: '/nonexistent-cache' })).toThrow(/scripts\/mediasoup-worker\.sh/);
  });
});

describe('patched worker at run time', () => {
  let worker: types.Worker;
  beforeAll(async () => {
    worker = await mediasoup.createWorker({ workerBin: resolveWorkerBin(), logLevel: 'warn' });
  });
  afterAll(() => worker?.close());

  it('creates routers and a WebRtcServer', async () => {
    const router = await worker.createRouter({
      mediaCodecs: [
        { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
        { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
        { kind: 'video', mimeType: 'video/H264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' } },
      ],
    });
    const server = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1', port: 0 }] });
    const transport = await router.createWebRtcTransport({ webRtcServer: server });
    expect(transport.dtlsParameters.fingerprints.length).toBeGreaterThan(0);
    expect(transport.iceCandidates[0]?.ip).toBe('127.0.0.1');
    server.close();
    router.close();
  });

  // libsrtp2 replaces mediasoup's libsrtp3 fork: every suite must encrypt and decrypt.
  it.each(SUITES.flatMap((suite) => [160, 1200].map((size) => [suite, size] as const)))(
    'forwards RTP through an SRTP link with %s, %i-byte payloads',
    async (suite, size) => {
      const codec: types.RouterRtpCodecCapability = {
        kind: 'audio',
        mimeType: 'audio/opus',
        clockRate: 48000,
        channels: 2,
        preferredPayloadType: 100,
      };
      const [r1, r2] = await Promise.all([worker.createRouter({ mediaCodecs: [codec] }), worker.createRouter({ mediaCodecs: [codec] })]);
      const opts = {
        listenInfo: { protocol: 'udp' as const, ip: '127.0.0.1' },
        rtcpMux: true,
        comedia: false,
        enableSrtp: true,
        srtpCryptoSuite: suite,
      };
      const [t1, t2] = await Promise.all([r1.createPlainTransport(opts), r2.createPlainTransport(opts)]);
      await t1.connect({ ip: '127.0.0.1', port: t2.tuple.localPort, srtpParameters: t2.srtpParameters! });
      await t2.connect({ ip: '127.0.0.1', port: t1.tuple.localPort, srtpParameters: t1.srtpParameters! });

      const rtpParameters: types.RtpParameters = {
        codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }],
        encodings: [{ ssrc: 1111 }],
      };
      const inject = await r1.createDirectTransport();
      const source = await inject.produce({ kind: 'audio', rtpParameters });
      const link = await t1.consume({ producerId: source.id, rtpCapabilities: r1.rtpCapabilities });
      const linked = await t2.produce({ kind: 'audio', rtpParameters: link.rtpParameters });
      const sink = await r2.createDirectTransport();
      const out = await sink.consume({ producerId: linked.id, rtpCapabilities: r2.rtpCapabilities });
      let received = 0;
      out.on('rtp', () => received++);

      const payload = randomBytes(size);
      for (let seq = 0; seq < 50; seq++) {
        const header = Buffer.alloc(12);
        header.writeUInt8(0x80, 0);
        header.writeUInt8(100, 1);
        header.writeUInt16BE(seq, 2);
        header.writeUInt32BE(seq * 960, 4);
        header.writeUInt32BE(1111, 8);
        source.send(Buffer.concat([header, payload]));
        await new Promise((r) => setTimeout(r, 4));
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(received).toBeGreaterThanOrEqual(48);
      const stats = await t2.getStats();
      expect(stats[0]?.rtpPacketLossReceived ?? 0).toBeLessThan(0.05);
      r1.close();
      r2.close();
    },
  );
});
