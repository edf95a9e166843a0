/**
 * What every player on the page shares, made once and as early as possible: the mediasoup-client `Device`
 * (loaded with the router capabilities from the socket's hello) and a DTLS certificate whose fingerprint is
 * known before any transport exists, so `rtc.watch` can hand the server the DTLS parameters with the request
 * and nothing waits for an `rtc.connect` round trip. A browser that cannot name its certificate's fingerprint
 * (`RTCCertificate.getFingerprints`, e.g. Firefox) gets none: its player connects with `rtc.connect`.
 */
import { Device } from 'mediasoup-client';
import type { DtlsParameters } from '$shared/protocol.ts';
import { deviceCapabilities } from './rtc-params.ts';
import { markOnce } from './marks.ts';
import { socket } from './socket.svelte.ts';

/** A certificate for the player's peer connections and the DTLS parameters that name it. */
export interface ViewerCertificate {
  certificate: RTCCertificate;
  /** The browser's side: DTLS client (the server is ICE-lite and answers as DTLS server). */
  dtlsParameters: DtlsParameters & { role: 'client' };
}

type Algorithm = DtlsParameters['fingerprints'][number]['algorithm'];
const ALGORITHMS: readonly string[] = ['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512'] satisfies Algorithm[];
const isAlgorithm = (a: string): a is Algorithm => ALGORITHMS.includes(a);

let device: Promise<Device> | null = null;
let certificate: Promise<ViewerCertificate | null> | null = null;

/** The page's device, loaded once the server said hello (the same capabilities for every channel). */
export function viewerDevice(): Promise<Device> {
  device ??= (async () => {
    const caps = await socket.routerRtpCapabilities();
    const d = new Device();
    await d.load({ routerRtpCapabilities: deviceCapabilities(caps) });
    markOnce('whipcast:device');
    return d;
  })();
  // a failure (e.g. the server had no media) is not kept: the next player asks again
  device.catch(() => (device = null));
  return device;
}

/** The page's certificate and its fingerprints; null when the browser cannot tell them beforehand. */
export function viewerCertificate(): Promise<ViewerCertificate | null> {
  certificate ??= (async () => {
    if (typeof RTCPeerConnection === 'undefined' || typeof RTCCertificate === 'undefined') return null;
    if (typeof RTCCertificate.prototype.getFingerprints !== 'function') return null;
    const cert = await RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams);
    const fingerprints = cert
      .getFingerprints()
      .flatMap((f) =>
        f.algorithm && f.value && isAlgorithm(f.algorithm) ? [{ algorithm: f.algorithm, value: f.value.toUpperCase() }] : [],
      );
    return fingerprints.length ? { certificate: cert, dtlsParameters: { role: 'client' as const, fingerprints } } : null;
  })().catch(() => null);
  return certificate;
}

/** True when the DTLS parameters a transport reports name the certificate the server was given. */
export function namesCertificate(dtls: { fingerprints: { algorithm: string; value: string }[] }, cert: ViewerCertificate): boolean {
  return dtls.fingerprints.some((f) =>
    cert.dtlsParameters.fingerprints.some((g) => g.algorithm === f.algorithm && g.value === f.value.toUpperCase()),
  );
}
