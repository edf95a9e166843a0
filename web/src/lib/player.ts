/**
 * Watches a channel over WebRTC with mediasoup-client on the app socket:
 * load the router capabilities, open one receive transport, consume, resume.
 * Survives the publisher leaving and coming back (the server keeps the same
 * consumers), re-consumes when told to, and rebuilds after a reconnect.
 */
import { Device, type types } from 'mediasoup-client';
import { socket } from './socket.svelte.ts';

export type PlayerState = 'connecting' | 'playing' | 'offline' | 'error';

export class ChannelPlayer {
  readonly stream = new MediaStream();
  #device: Device | null = null;
  #transport: types.Transport | null = null;
  #consumers: types.Consumer[] = [];
  #off: (() => void)[] = [];
  #closed = false;

  constructor(
    readonly streamId: string,
    private readonly onState: (s: PlayerState, detail?: string) => void,
  ) {}

  async start(): Promise<void> {
    this.#off.push(
      socket.on((f) => {
        if (!('room' in f) || f.room !== this.streamId) return;
        if (f.t === 'stream.live') void this.#consume();
        if (f.t === 'stream.offline') this.onState('offline', f.reason);
        if (f.t === 'rtc.reconsume') void this.#consume();
      }),
      socket.onReconnect(() => void this.#rebuild()),
    );
    await this.#rebuild();
  }

  async #rebuild(): Promise<void> {
    if (this.#closed) return;
    this.#transport?.close();
    this.#transport = null;
    this.onState('connecting');
    try {
      const caps = await socket.request({ t: 'rtc.capabilities', streamId: this.streamId });
      if (!this.#device) {
        this.#device = new Device();
        await this.#device.load({ routerRtpCapabilities: caps.routerRtpCapabilities as types.RtpCapabilities });
      }
      const t = await socket.request({ t: 'rtc.transport', streamId: this.streamId });
      const transport = this.#device.createRecvTransport({
        id: t.id,
        iceParameters: t.iceParameters as types.IceParameters,
        iceCandidates: t.iceCandidates as unknown as types.IceCandidate[],
        dtlsParameters: t.dtlsParameters as types.DtlsParameters,
      });
      transport.on('connect', ({ dtlsParameters }, callback, errback) => {
        socket
          .request({ t: 'rtc.connect', transportId: t.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> })
          .then(callback, errback);
      });
      transport.on('connectionstatechange', (state) => {
        if (state === 'failed')
          void socket
            .request({ t: 'rtc.restartIce', transportId: t.id })
            .then((r) => transport.restartIce({ iceParameters: r.iceParameters as types.IceParameters }));
      });
      this.#transport = transport;
      if (caps.live) await this.#consume();
      else this.onState('offline');
    } catch (e) {
      this.onState('error', (e as Error).message);
    }
  }

  async #consume(): Promise<void> {
    const transport = this.#transport;
    if (!transport || !this.#device || this.#closed) return;
    try {
      const { consumers } = await socket.request({
        t: 'rtc.consume',
        transportId: transport.id,
        rtpCapabilities: this.#device.rtpCapabilities as unknown as Record<string, unknown>,
      });
      for (const c of this.#consumers) c.close();
      for (const track of this.stream.getTracks()) this.stream.removeTrack(track);
      this.#consumers = [];
      for (const info of consumers) {
        const consumer = await transport.consume({
          id: info.id,
          producerId: info.producerId,
          kind: info.kind,
          rtpParameters: info.rtpParameters as unknown as types.RtpParameters,
        });
        this.#consumers.push(consumer);
        this.stream.addTrack(consumer.track);
        await socket.request({ t: 'rtc.resume', consumerId: consumer.id });
      }
      this.onState('playing');
    } catch (e) {
      const code = (e as { code?: string }).code;
      this.onState(code === 'stream_offline' ? 'offline' : 'error', (e as Error).message);
    }
  }

  /** WebRTC stats for the latency indicator and tests. */
  async stats(): Promise<{ framesDecoded: number; jitterBufferMs: number | null }> {
    const video = this.#consumers.find((c) => c.kind === 'video');
    if (!video) return { framesDecoded: 0, jitterBufferMs: null };
    let framesDecoded = 0;
    let jitterBufferMs: number | null = null;
    (await video.getStats()).forEach(
      (s: { type: string; framesDecoded?: number; jitterBufferDelay?: number; jitterBufferEmittedCount?: number }) => {
        if (s.type === 'inbound-rtp') {
          framesDecoded = s.framesDecoded ?? 0;
          if (s.jitterBufferEmittedCount) jitterBufferMs = ((s.jitterBufferDelay ?? 0) / s.jitterBufferEmittedCount) * 1000;
        }
      },
    );
    return { framesDecoded, jitterBufferMs };
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#off) off();
    const id = this.#transport?.id;
    this.#transport?.close();
    if (id) void socket.request({ t: 'rtc.close', transportId: id }).catch(() => {});
  }
}
