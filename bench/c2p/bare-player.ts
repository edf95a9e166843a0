/**
 * The click-to-picture baseline (`npm run bench -- --mode c2p`): a page that does only the WebRTC part of
 * watching a channel, the way the web player does it, and nothing else — no app, no router, no chat. It opens
 * the socket, loads a mediasoup-client `Device` from the hello's router capabilities, makes a certificate,
 * sends one `rtc.watch` (the channel id is the `?channel=` query), sets the transport and consumers up and
 * shows them in its `<video>`. What whipcast's channel page takes beyond this is the app's own cost.
 */
import { Device } from 'mediasoup-client';
import { encodeRequest, parseResult, parseServerFrame, PROTOCOL_VERSION } from '../../signaling/protocol.ts';
// the web player's own conversions, so the baseline loads the device and consumes exactly as the player does
import { consumerParameters, deviceCapabilities } from '../../web/src/lib/rtc-params.ts';

const channel = new URLSearchParams(location.search).get('channel') ?? '';
const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
ws.binaryType = 'arraybuffer';
const certificate = RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams);

ws.onmessage = async (e) => {
  const parsed = parseServerFrame(new Uint8Array(e.data as ArrayBuffer));
  if (!parsed.ok || parsed.frame.t !== 'hello') return;
  const hello = parsed.frame;
  if (hello.version !== PROTOCOL_VERSION || !hello.routerRtpCapabilities) throw new Error('the server cannot be watched');
  ws.onmessage = null;
  const device = new Device();
  await device.load({ routerRtpCapabilities: deviceCapabilities(hello.routerRtpCapabilities) });
  const cert = await certificate;
  const fingerprints = cert
    .getFingerprints()
    .flatMap((f) => (f.algorithm === 'sha-256' && f.value ? [{ algorithm: 'sha-256' as const, value: f.value.toUpperCase() }] : []));
  ws.send(
    encodeRequest(
      { t: 'rtc.watch', streamId: channel, rtpCapabilities: device.rtpCapabilities, dtlsParameters: { role: 'client', fingerprints } },
      1,
    ),
  );
  const answer = await new Promise<unknown>((resolve, reject) => {
    ws.onmessage = (m) => {
      const f = parseServerFrame(new Uint8Array(m.data as ArrayBuffer));
      if (!f.ok || !('id' in f.frame) || f.frame.id !== 1) return;
      if (f.frame.t === 'ok') resolve(f.frame.r);
      else reject(new Error(f.frame.t === 'error' ? f.frame.message : 'unexpected frame'));
    };
  });
  const watched = parseResult('rtc.watch', answer);
  if (!watched.ok) throw new Error(watched.message);
  const w = watched.result;
  const transport = device.createRecvTransport({
    id: w.transport.id,
    iceParameters: w.transport.iceParameters,
    iceCandidates: w.transport.iceCandidates,
    dtlsParameters: w.transport.dtlsParameters,
    additionalSettings: { certificates: [cert] },
  });
  // connected by the server with the watch request
  transport.on('connect', (_p, callback) => callback());
  Object.assign(transport, { _probatorConsumerCreated: true });
  // all in one SDP exchange, as the player does; the standby ones take over at the live edge later
  const consumers = await Promise.all(
    w.consumers.map((c) =>
      transport.consume({
        id: c.id,
        producerId: c.producerId,
        kind: c.kind,
        rtpParameters: consumerParameters(c.rtpParameters),
      }),
    ),
  );
  const shown = consumers.filter((_, i) => !w.consumers[i]!.standby);
  const video = document.querySelector('video')!;
  video.srcObject = new MediaStream(shown.map((c) => c.track));
  void video.play().catch(() => {});
};
