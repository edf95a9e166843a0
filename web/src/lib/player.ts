/**
 * Watches a channel over WebRTC with mediasoup-client on the app socket:
 * load the router capabilities, open one receive transport, consume, resume.
 * Survives the publisher leaving and coming back (the server keeps the same
 * consumers), re-consumes when told to, and rebuilds after a reconnect.
 */
import { Device, type types } from 'mediasoup-client';
import type { ConsumerView, LayerChoice, UnplayableTrack } from '$shared/protocol.ts';
import { consumerParameters, deviceCapabilities } from './rtc-params.ts';
import { socket } from './socket.svelte.ts';

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
        if (f.t === 'dvr.recover' && f.transportId === this.#transport?.id) void this.#replace(f.consumers, true).catch(() => {});
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
      const caps = await socket.request({ t: 'rtc.capabilities', streamId: this.channelId });
      if (!this.#device) {
        this.#device = new Device();
        await this.#device.load({ routerRtpCapabilities: deviceCapabilities(caps.routerRtpCapabilities) });
      }
      const t = await socket.request({ t: 'rtc.transport', streamId: this.channelId });
      const transport = this.#device.createRecvTransport({
        id: t.id,
        iceParameters: t.iceParameters,
        iceCandidates: t.iceCandidates,
        dtlsParameters: t.dtlsParameters,
      });
      transport.on('connect', ({ dtlsParameters }, callback, errback) => {
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
      const { consumers, unplayable } = await socket.request({
        t: 'rtc.consume',
        transportId: transport.id,
        rtpCapabilities: this.#device.rtpCapabilities,
      });
      this.unplayable = unplayable;
      if (consumers.length === 0) {
        this.onState('unplayable');
        return;
      }
      await this.#replace(consumers);
      // a new transport (reconnect) starts at Auto on the server: ask for the viewer's choice again
      if (this.#preferredLayer !== null)
        await socket.request({ t: 'rtc.preferLayer', transportId: transport.id, spatialLayer: this.#preferredLayer }).catch(() => {});
      this.dvr = { ...this.dvr, live: true, behindLiveMs: 0, paused: false };
      this.onDvr(this.dvr);
      this.onState('playing');
    } catch (e) {
      const code = (e as { code?: string }).code;
      this.onState(code === 'stream_offline' ? 'offline' : 'error', (e as Error).message);
    }
  }

  /** Runs `fn` after the consumer changes before it. */
  #inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turns.then(fn, fn);
    this.#turns = run.catch(() => {});
    return run;
  }

  /**
   * Creates client consumers for what the server gave, shows the non-standby ones, resumes them.
   * `partial`: they replace only the consumers of their kinds (keyframe recovery), not all.
   */
  #replace(consumers: ConsumerView[], partial = false): Promise<void> {
    return this.#inTurn(() => this.#replaceNow(consumers, partial));
  }

  async #replaceNow(consumers: ConsumerView[], partial: boolean): Promise<void> {
    const transport = this.#transport;
    if (!transport) return;
    const shown: types.Consumer[] = [];
    const standby: types.Consumer[] = [];
    for (const info of consumers) {
      const consumer = await transport.consume({
        id: info.id,
        producerId: info.producerId,
        kind: info.kind,
        rtpParameters: consumerParameters(info.rtpParameters),
      });
      (info.standby ? standby : shown).push(consumer);
    }
    for (const c of this.#standby) c.close();
    this.#standby = standby;
    this.#standbyPartial = partial;
    this.#show(shown, false, partial);
    for (const c of [...shown, ...standby]) {
      if (this.videoOff && c.kind === 'video') c.pause();
      else await socket.request({ t: 'rtc.resume', consumerId: c.id });
    }
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
    } else {
      await socket.request({ t: paused ? 'dvr.pause' : 'dvr.resume', transportId: transport.id });
      this.dvr = { ...this.dvr, paused };
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
