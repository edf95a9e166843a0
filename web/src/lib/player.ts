/**
 * Watches a channel over WebRTC with mediasoup-client on the app socket, in
 * one round trip: the device is loaded from the server's hello and the DTLS
 * certificate made beforehand (`viewer-device.ts`), so a single `rtc.watch`
 * returns the receive transport (already connected to the certificate) and
 * the consumers (started by the server once DTLS is up); the client sets them
 * all up in one SDP exchange. Survives the publisher leaving and coming back
 * (the server keeps the same consumers), re-consumes when told to, and
 * rebuilds after a reconnect.
 */
import type { Device, types } from 'mediasoup-client';
import type { ConsumerView, LayerChoice, TranscodedTrack, UnplayableTrack } from '$shared/protocol.ts';
import { consumerParameters } from './rtc-params.ts';
import { markOnce } from './marks.ts';
import { socket } from './socket.svelte.ts';
import { namesCertificate, viewerCertificate, viewerDevice } from './viewer-device.ts';

/** `unplayable`: live, but this browser can decode nothing the channel sends (see `ChannelPlayer.unplayable`). */
export type PlayerState = 'connecting' | 'playing' | 'offline' | 'error' | 'unplayable';

export interface DvrState {
  /** Watching the live edge. */
  live: boolean;
  behindLiveMs: number;
  windowMs: number;
  paused: boolean;
}

export class ChannelPlayer {
  stream = new MediaStream();
  dvr: DvrState = { live: true, behindLiveMs: 0, windowMs: 0, paused: false };
  /** Called when the tracks to show change (seek, back to live, instant-start switch). */
  onStream: (stream: MediaStream) => void = () => {};
  onDvr: (dvr: DvrState) => void = () => {};
  /** What the channel sends that this browser cannot decode (not consumed), as the server said at the last consume. */
  unplayable: UnplayableTrack[] = [];
  /** What this browser gets as a transcoded copy instead (the VP8 rung of an H.264 channel: live only), as the server said. */
  transcoded: TranscodedTrack[] = [];
  /** Audio only: the server holds this viewer's video (the link cannot carry it); see `setVideo`. */
  videoOff = false;
  #device: Device | null = null;
  #transport: types.Transport | null = null;
  #consumers: types.Consumer[] = [];
  #standby: types.Consumer[] = [];
  #pausedAt: number | null = null;
  /** The viewer's quality choice (a spatial layer; null: Auto), kept across a rebuilt transport. */
  #preferredLayer: number | null = null;
  /** The standby consumers replace only their own kinds at the switch (a keyframe recovery's video). */
  #standbyPartial = false;
  /** Consumer changes (answers and pushes) are applied one after another, in arrival order. */
  #turns: Promise<unknown> = Promise.resolve();
  #off: (() => void)[] = [];
  #closed = false;

  constructor(
    readonly channelId: string,
    private readonly onState: (s: PlayerState, detail?: string) => void,
  ) {}

  async start(): Promise<void> {
    this.#off.push(
      socket.on((f) => {
        if (!('room' in f) || f.room !== this.channelId) return;
        if (f.t === 'stream.live') void this.#consume();
        if (f.t === 'stream.offline') this.onState('offline', f.reason);
        if (f.t === 'rtc.reconsume') void this.#consume();
      }),
      socket.on((f) => {
        if (f.t === 'dvr.switch' && f.transportId === this.#transport?.id)
          void this.#inTurn(async () => {
            this.#show(this.#standby, true);
            // the server resumes the standby at the switch: hold its video again while audio only
            if (this.videoOff) await this.setVideo(false);
          });
        // keyframe recovery: the video alone is caught up from the server's GOP cache (the audio stays)
        if (f.t === 'dvr.recover' && f.transportId === this.#transport?.id)
          void this.#replace(f.consumers, { partial: true }).catch(() => {});
        // the server lost the media worker under this transport
        if (f.t === 'rtc.closed' && f.transportId === this.#transport?.id) void this.#rebuild();
        if (f.t === 'dvr.position' && f.transportId === this.#transport?.id) {
          this.dvr = { live: false, behindLiveMs: f.behindLiveMs, windowMs: f.windowMs, paused: f.paused };
          this.onDvr(this.dvr);
        }
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
      const [device, cert] = await Promise.all([viewerDevice(), viewerCertificate()]);
      this.#device = device;
      if (this.#closed) return;
      const w = await socket.request({
        t: 'rtc.watch',
        streamId: this.channelId,
        rtpCapabilities: device.rtpCapabilities,
        ...(cert ? { dtlsParameters: cert.dtlsParameters } : {}),
      });
      if (this.#closed) {
        void socket.request({ t: 'rtc.close', transportId: w.transport.id }).catch(() => {});
        return;
      }
      const t = w.transport;
      const transport = device.createRecvTransport({
        id: t.id,
        iceParameters: t.iceParameters,
        iceCandidates: t.iceCandidates,
        dtlsParameters: t.dtlsParameters,
        ...(cert ? { additionalSettings: { certificates: [cert.certificate] } } : {}),
      });
      transport.on('connect', ({ dtlsParameters }, callback, errback) => {
        // the server connected the transport with the watch request: nothing to wait for
        if (cert && namesCertificate(dtlsParameters, cert)) return callback();
        socket.request({ t: 'rtc.connect', transportId: t.id, dtlsParameters }).then(callback, errback);
      });
      transport.on('connectionstatechange', (state) => {
        if (state === 'failed')
          void socket
            .request({ t: 'rtc.restartIce', transportId: t.id })
            .then((r) => transport.restartIce({ iceParameters: r.iceParameters }));
      });
      // No RTP probator: mediasoup-client would add a second video receiver (SSRC 1234) for the
      // server's bandwidth probes; it never decodes a frame, so Chromium asks it for a keyframe
      // several times a second for as long as the viewer watches (issue #13 item 7).
      Object.assign(transport, { _probatorConsumerCreated: true });
      this.#transport = transport;
      if (w.live) await this.#watch(w.consumers, w.unplayable, w.transcoded ?? [], true);
      else this.onState('offline');
    } catch (e) {
      const code = (e as { code?: string }).code;
      this.onState(code === 'stream_offline' ? 'offline' : 'error', (e as Error).message);
    }
  }

  /** The channel went live (or changed codecs) after the transport was made: consume on it. */
  async #consume(): Promise<void> {
    const transport = this.#transport;
    if (!transport || !this.#device || this.#closed) return;
    try {
      const { consumers, unplayable, transcoded } = await socket.request({
        t: 'rtc.consume',
        transportId: transport.id,
        rtpCapabilities: this.#device.rtpCapabilities,
      });
      await this.#watch(consumers, unplayable, transcoded ?? [], false);
    } catch (e) {
      const code = (e as { code?: string }).code;
      this.onState(code === 'stream_offline' ? 'offline' : 'error', (e as Error).message);
    }
  }

  /** Shows what the server gave (`started`: it starts the consumers itself) and says so. */
  async #watch(consumers: ConsumerView[], unplayable: UnplayableTrack[], transcoded: TranscodedTrack[], started: boolean): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    this.unplayable = unplayable;
    this.transcoded = transcoded;
    if (consumers.length === 0) {
      this.onState('unplayable');
      return;
    }
    await this.#replace(consumers, { started });
    markOnce('whipcast:consumed');
    // a new transport (reconnect) starts at Auto on the server: ask for the viewer's choice again
    if (this.#preferredLayer !== null)
      await socket.request({ t: 'rtc.preferLayer', transportId: transport.id, spatialLayer: this.#preferredLayer }).catch(() => {});
    this.dvr = { ...this.dvr, live: true, behindLiveMs: 0, paused: false };
    this.onDvr(this.dvr);
    this.onState('playing');
  }

  /** Runs `fn` after the consumer changes before it. */
  #inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turns.then(fn, fn);
    this.#turns = run.catch(() => {});
    return run;
  }

  /**
   * Creates client consumers for what the server gave (all in one SDP exchange), shows the non-standby ones,
   * and resumes them on the server unless it `started` them itself (`rtc.watch`).
   * `partial`: they replace only the consumers of their kinds (keyframe recovery), not all.
   */
  #replace(consumers: ConsumerView[], opts: { partial?: boolean; started?: boolean } = {}): Promise<void> {
    return this.#inTurn(() => this.#replaceNow(consumers, opts.partial ?? false, opts.started ?? false));
  }

  async #replaceNow(consumers: ConsumerView[], partial: boolean, started: boolean): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    // consume() calls made together are set up in one renegotiation (mediasoup-client batches them)
    const made = await Promise.all(
      consumers.map((info) =>
        transport.consume({
          id: info.id,
          producerId: info.producerId,
          kind: info.kind,
          rtpParameters: consumerParameters(info.rtpParameters),
        }),
      ),
    );
    const shown = made.filter((_, i) => !consumers[i]!.standby);
    const standby = made.filter((_, i) => consumers[i]!.standby);
    for (const c of this.#standby) c.close();
    this.#standby = standby;
    this.#standbyPartial = partial;
    this.#show(shown, false, partial);
    await Promise.all(
      [...shown, ...standby].map(async (c) => {
        if (this.videoOff && c.kind === 'video') {
          c.pause();
          if (started) await socket.request({ t: 'rtc.pause', consumerId: c.id });
        } else if (!started) await socket.request({ t: 'rtc.resume', consumerId: c.id });
      }),
    );
  }

  /** The channel's video layers (named by their sizes, from the server) and the viewer's choice; null before a transport. */
  async layers(): Promise<LayerChoice | null> {
    const transport = this.#transport;
    return transport ? socket.request({ t: 'rtc.layers', transportId: transport.id }) : null;
  }

  /** Quality: receive this layer when the link allows (`null`: Auto, the best the link allows). */
  async preferLayer(spatialLayer: number | null): Promise<LayerChoice | null> {
    this.#preferredLayer = spatialLayer;
    const transport = this.#transport;
    return transport ? socket.request({ t: 'rtc.preferLayer', transportId: transport.id, spatialLayer }) : null;
  }

  /** Audio only (`false`): the server stops sending this viewer video, so a slow link can still carry the sound. */
  async setVideo(on: boolean): Promise<void> {
    this.videoOff = !on;
    for (const c of [...this.#consumers, ...this.#standby]) {
      if (c.kind !== 'video') continue;
      if (on) c.resume();
      else c.pause();
      await socket.request({ t: on ? 'rtc.resume' : 'rtc.pause', consumerId: c.id });
    }
  }

  #show(consumers: types.Consumer[], fromStandby: boolean, partial = fromStandby && this.#standbyPartial): void {
    if (!consumers.length) return;
    const old = this.#consumers;
    // a partial change keeps the consumers of the other kinds (the live audio through a video recovery)
    const kept = partial ? old.filter((c) => !consumers.some((n) => n.kind === c.kind)) : [];
    consumers = [...kept, ...consumers];
    this.#consumers = consumers;
    if (fromStandby) this.#standby = [];
    this.stream = new MediaStream(consumers.map((c) => c.track));
    this.onStream(this.stream);
    // Let the element switch before the old tracks end.
    setTimeout(() => {
      for (const c of old) if (!consumers.includes(c)) c.close();
    }, 500);
  }

  /** DVR: go `offsetMs` behind live, or move by `deltaMs` from the current position. */
  async seek(target: { offsetMs: number } | { deltaMs: number }): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    const r = await socket.request({ t: 'dvr.seek', transportId: transport.id, ...target });
    await this.#replace(r.consumers);
    this.#pausedAt = null;
    this.dvr = { live: r.live, behindLiveMs: r.behindLiveMs, windowMs: r.windowMs, paused: false };
    this.onDvr(this.dvr);
  }

  async goLive(): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    const r = await socket.request({ t: 'dvr.live', transportId: transport.id });
    await this.#replace(r.consumers);
    this.#pausedAt = null;
    this.dvr = { ...this.dvr, live: true, behindLiveMs: 0, paused: false };
    this.onDvr(this.dvr);
  }

  /** Holds the position (the server stops feeding); live playback becomes time-shifted on resume. */
  async setPaused(paused: boolean): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    if (this.dvr.live) {
      if (paused) this.#pausedAt = Date.now();
      else if (this.#pausedAt !== null) await this.seek({ offsetMs: Date.now() - this.#pausedAt });
      this.dvr = { ...this.dvr, paused };
    } else if (paused) {
      await socket.request({ t: 'dvr.pause', transportId: transport.id });
      this.dvr = { ...this.dvr, paused };
    } else {
      const r = await socket.request({ t: 'dvr.resume', transportId: transport.id });
      // a replay shared with other viewers played on meanwhile: the server moved this one to where it paused
      if (r.consumers) await this.#replace(r.consumers);
      this.dvr = { ...this.dvr, paused, ...(r.behindLiveMs !== undefined ? { behindLiveMs: r.behindLiveMs } : {}) };
    }
    this.onDvr(this.dvr);
  }

  /** The receiver's WebRTC stats for the shown tracks (see player-stats.ts). */
  async stats(): Promise<{ video: RTCStatsReport | null; audio: RTCStatsReport | null }> {
    const of = (kind: 'audio' | 'video') => this.#consumers.find((c) => c.kind === kind)?.getStats() ?? Promise.resolve(null);
    const [video, audio] = await Promise.all([of('video'), of('audio')]);
    return { video, audio };
  }

  close(): void {
    this.#closed = true;
    for (const off of this.#off) off();
    const id = this.#transport?.id;
    this.#transport?.close();
    if (id) void socket.request({ t: 'rtc.close', transportId: id }).catch(() => {});
  }
}
