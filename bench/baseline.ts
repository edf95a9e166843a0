/**
 * The baseline: the same WHIP/WHEP wire protocol in front of a bare mediasoup
 * pipe — one worker, one router, viewers consume the publisher's producers
 * directly. No program relay, DVR, egress routers, database or lifecycle: the
 * cost of mediasoup itself on this machine, to divide whipcast's figures by.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { buildAnswer, parseOffer, planEgress, planIngest, remoteDtlsRole, resolveWorkerBin } from '@whipcast/sfu';

/** The bots' payload types (testkit WhepViewer): the router uses them so no egress router is needed. */
const CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, preferredPayloadType: 111 },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    preferredPayloadType: 102,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

export interface Baseline {
  url: string;
  workerPid: number;
  stop(): Promise<void>;
}

export async function startBaseline(): Promise<Baseline> {
  const worker = await mediasoup.createWorker({ workerBin: resolveWorkerBin(), logLevel: 'warn' });
  const router = await worker.createRouter({ mediaCodecs: CODECS });
  const webRtcServer = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1', port: 0 }] });
  const producers = new Map<string, types.Producer>();
  const transports = new Map<string, types.WebRtcTransport>();

  async function transportFor(sdp: string) {
    const offer = parseOffer(sdp);
    const transport = await router.createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: false });
    await transport.connect({
      dtlsParameters: { role: remoteDtlsRole(offer), fingerprints: [offer.fingerprint as types.DtlsFingerprint] },
    });
    const id = randomBytes(8).toString('hex');
    transports.set(id, transport);
    return { offer, transport, id };
  }
  const info = (t: types.WebRtcTransport) => ({
    iceParameters: t.iceParameters,
    iceCandidates: t.iceCandidates,
    dtlsParameters: t.dtlsParameters,
  });

  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      void (async () => {
        if (req.method === 'DELETE') {
          const t = transports.get(req.url!.split('/').pop()!);
          t?.close();
          res.writeHead(t ? 200 : 404).end();
          return;
        }
        if (req.method === 'POST' && req.url === '/whip') {
          const { offer, transport, id } = await transportFor(body);
          const tracks = planIngest(offer, router.rtpCapabilities);
          for (const t of tracks) producers.set(t.kind, await transport.produce({ kind: t.kind, rtpParameters: t.rtpParameters }));
          const answer = buildAnswer({ offer, accepted: tracks.map((t) => t.accepted), transport: info(transport), direction: 'recvonly' });
          res.writeHead(201, { 'content-type': 'application/sdp', location: `/session/${id}` }).end(answer);
          return;
        }
        if (req.method === 'POST' && req.url?.startsWith('/whep/')) {
          const { offer, transport, id } = await transportFor(body);
          const source = Object.fromEntries([...producers].map(([k, p]) => [k, p.rtpParameters.codecs[0]!]));
          const plan = planEgress(offer, source, router.rtpCapabilities);
          for (const a of plan.accepted) {
            const c = await transport.consume({
              producerId: producers.get(a.media.kind)!.id,
              rtpCapabilities: plan.rtpCapabilities,
              mid: a.media.mid,
            });
            const enc = c.rtpParameters.encodings![0]!;
            a.sendSsrcs = { ssrc: enc.ssrc!, cname: c.rtpParameters.rtcp?.cname ?? 'baseline' };
          }
          const answer = buildAnswer({ offer, accepted: plan.accepted, transport: info(transport), direction: 'sendonly' });
          res.writeHead(201, { 'content-type': 'application/sdp', location: `/session/${id}` }).end(answer);
          return;
        }
        res.writeHead(404).end();
      })().catch((err: Error) => res.writeHead(500).end(err.message));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    workerPid: worker.pid,
    async stop() {
      server.close();
      worker.close();
    },
  };
}
