/**
 * "Go live from this browser": camera or screen published over WHIP, like OBS would, as three simulcast
 * layers (full, ½ and ¼ size; the browser drops a layer its picture is too small for or its CPU cannot keep
 * up with), so the server can give each viewer the layer their link carries.
 */

/** Simulcast layers, lowest first (whipcast keeps a browser's rid order: low to high). */
export const SIMULCAST_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 200_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 700_000 },
  { rid: 'f', maxBitrate: 2_500_000 },
];

export class BrowserPublisher {
  #pc: RTCPeerConnection | null = null;
  #stream: MediaStream | null = null;
  #location: string | null = null;
  #stopped = false;
  /** The connection ended without stop(): another publisher took over, or the network dropped. */
  onEnded: () => void = () => {};

  constructor(
    private readonly whipUrl: string,
    private readonly streamKey: string,
  ) {}

  async start(source: 'camera' | 'screen'): Promise<MediaStream> {
    const stream =
      source === 'screen'
        ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true })
        : await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    this.#stream = stream;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.#pc = pc;
    pc.addEventListener('connectionstatechange', () => {
      if (!this.#stopped && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) {
        this.stop();
        this.onEnded();
      }
    });
    for (const track of stream.getTracks())
      pc.addTransceiver(track, { direction: 'sendonly', ...(track.kind === 'video' ? { sendEncodings: SIMULCAST_ENCODINGS } : {}) });
    // H.264 first: every viewer's browser decodes it.
    for (const t of pc.getTransceivers()) {
      if (t.sender.track?.kind !== 'video') continue;
      const codecs = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
      const h264 = codecs.filter((c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''));
      if (h264.length) t.setCodecPreferences([...h264, ...codecs.filter((c) => !h264.includes(c))]);
    }
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(this.whipUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${this.streamKey}` },
      body: pc.localDescription!.sdp,
    });
    if (res.status !== 201) {
      this.stop();
      const body = (await res.json().catch(() => null)) as { error?: { message: string } } | null;
      throw new Error(body?.error?.message ?? `WHIP POST failed (${res.status})`);
    }
    this.#location = new URL(res.headers.get('location')!, this.whipUrl).toString();
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    return stream;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#location)
      void fetch(this.#location, { method: 'DELETE', headers: { authorization: `Bearer ${this.streamKey}` } }).catch(() => {});
    this.#location = null;
    this.#pc?.close();
    for (const t of this.#stream?.getTracks() ?? []) t.stop();
  }
}
