/** WebRTC transport helpers shared by ingest and viewers. */
import { randomBytes } from 'node:crypto';
import type { types } from 'mediasoup';
import { remoteDtlsRole, type TransportInfo } from './sdp/answer.ts';
import type { ParsedOffer } from './sdp/offer.ts';
import type { TransportView } from './types.ts';
import type { PooledWorker } from './workers.ts';

/** A WHIP/WHEP session id: 144 random bits, URL-safe (it is the session URL). */
export const newSessionId = (): string => randomBytes(18).toString('base64url');

/** A WebRTC transport on a worker's WebRtcServer (one UDP and one TCP port per worker). */
export function createWebRtcTransport(
  slot: PooledWorker,
  router: types.Router,
  opts: {
    tcp: boolean;
    appData: Record<string, unknown>;
    /** Its bandwidth estimate before any feedback, bits/s (default mediasoup's, 600 kbit/s). */
    startBitrate?: number | undefined;
  },
): Promise<types.WebRtcTransport> {
  return router.createWebRtcTransport({
    webRtcServer: slot.webRtcServer,
    enableUdp: true,
    // OBS is confused by several candidates: publishers get the UDP one only.
    enableTcp: opts.tcp,
    preferUdp: true,
    ...(opts.startBitrate ? { initialAvailableOutgoingBitrate: opts.startBitrate } : {}),
    appData: opts.appData,
  });
}

/** Connects a transport with the DTLS fingerprint of an SDP offer; closes it when that fails. */
export async function connectOffer(transport: types.WebRtcTransport, offer: ParsedOffer): Promise<void> {
  try {
    await transport.connect({
      dtlsParameters: { role: remoteDtlsRole(offer), fingerprints: [offer.fingerprint as types.DtlsFingerprint] },
    });
  } catch (err) {
    transport.close();
    throw err;
  }
}

/** Calls `onEnd` once when the transport's DTLS fails or closes (the peer is gone). */
export function onDtlsEnd(transport: types.WebRtcTransport, onEnd: (reason: string) => void): void {
  transport.on('dtlsstatechange', (state) => {
    if (state === 'failed' || state === 'closed') onEnd(`DTLS ${state}`);
  });
}

/** Resolves when the transport's DTLS is connected, or after `timeoutMs` / when it fails (callers go on either way). */
export function dtlsConnected(transport: types.WebRtcTransport, timeoutMs: number): Promise<void> {
  if (transport.dtlsState === 'connected' || transport.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      transport.off('dtlsstatechange', onState);
      resolve();
    };
    const onState = (state: types.DtlsState) => {
      if (state !== 'new' && state !== 'connecting') done();
    };
    const timer = setTimeout(done, timeoutMs);
    transport.on('dtlsstatechange', onState);
  });
}

/** The transport's ICE/DTLS data for an SDP answer. */
export function transportInfo(t: types.WebRtcTransport): TransportInfo {
  return { iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
}

/** The transport as a mediasoup-client needs it. */
export function transportView(t: types.WebRtcTransport): TransportView {
  return { id: t.id, ...transportInfo(t) };
}
