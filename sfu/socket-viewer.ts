/**
 * A mediasoup-client viewer signalled over the socket: the client builds a
 * receive transport from `view`, connects it, consumes the program (paused,
 * resumed once its side is set up), and can move in time (`seek`, `live`,
 * `pause`, `resume`) over the same transport. It counts as a viewer of its
 * channel once it consumes.
 */
import type { types } from 'mediasoup';
import type { Seat } from './audience.ts';
import type { Channel } from './channel.ts';
import type { CatchUpSlots } from './dvr/catch-up-slots.ts';
import { KeyframeRecovery } from './dvr/keyframe-recovery.ts';
import { LayerHoldDown } from './layer-hold-down.ts';
import { TimeShift, type ProgramConsumers } from './dvr/time-shift.ts';
import { SfuError } from './errors.ts';
import type { Vp8Rung } from './ladder/vp8-rung.ts';
import type { ProgramTrack } from './program.ts';
import type { MediaKind } from './sdp/offer.ts';
import { createWebRtcTransport, transportView } from './transport.ts';
import type {
  ConsumerInfo,
  DvrPosition,
  LayerChoice,
  ResumeResult,
  SeekResult,
  SeekTarget,
  TranscodedTrack,
  TransportView,
  UnplayableTrack,
} from './types.ts';
import { Viewer } from './viewer.ts';

export interface SocketViewerOptions {
  /** Start from the cached GOP (replay at 2×, then switch to live at a keyframe) instead of waiting for the publisher's next keyframe. */
  instantStart: boolean;
  /**
   * Keyframe recovery: when its live video asks for a keyframe and none comes from the publisher within 0.5 s,
   * serve this viewer's video from the cached GOP (like instant start); at most once per this many ms. 0: off.
   */
  keyframeRecoveryMs: number;
  /** Auto quality: after the estimate drops it from a layer, it is held below that layer this long at first, ms (`LayerHoldDown`); 0: off. */
  layerHoldMs: number;
  /** The node's bound on catch-ups (instant starts, keyframe recoveries) at once. */
  catchUps: CatchUpSlots;
}

export class SocketViewer extends Viewer {
  readonly client = 'player';
  readonly #shift: TimeShift;
  readonly #instantStart: boolean;
  /** The video layer the viewer chose (a spatial layer), or null for Auto (the best its bandwidth allows). */
  #preferredLayer: number | null = null;
  readonly #recovery: KeyframeRecovery;
  /** Keyframe recovery while watching the past (its replay's keyframes answer requests, not the publisher's). */
  readonly #dvrRecovery: KeyframeRecovery;
  /** Moves in time (consume, live, seek, recovery) run one after another. */
  #moves: Promise<unknown> = Promise.resolve();
  /** Auto quality: after the estimate drops it from a layer, it is held below that layer for a while (no flapping). */
  readonly #holdDown: LayerHoldDown;
  readonly #holdMs: number;
  /** Its video is the channel's VP8 rung (its device cannot decode the program's H.264): live only, one layer. */
  #onRung = false;

  private constructor(channel: Channel, transport: types.WebRtcTransport, router: types.Router, seat: Seat, opts: SocketViewerOptions) {
    super(transport.id, channel, transport, router, seat, {});
    this.#instantStart = opts.instantStart;
    this.#holdMs = opts.layerHoldMs;
    this.#shift = new TimeShift({
      router,
      transport,
      capabilities: () => this.rtpCapabilities,
      buffer: channel.dvr,
      replays: channel.replays,
      shares: channel.replayShares,
      catchUps: opts.catchUps,
      programTracks: () => channel.programTracks(),
      receives: (t) => channel.router.canConsume({ producerId: t.producer.id, rtpCapabilities: this.rtpCapabilities }),
      consumeProgram: (standby, kinds) => this.#consumeProgram(standby, kinds),
      currentConsumers: () => this.currentConsumers(),
      useConsumer: (c, ms) => {
        this.setConsumer(c, ms);
        void this.#applyLayer(c);
      },
      replayConsumer: (c) => void this.#watchReplayKeyframeRequests(c),
      replayKeyframe: () => this.#dvrRecovery.onKeyframe(),
      watching: () => channel.watching(this),
      switched: () => this.emit('switch'),
    });
    this.#recovery = new KeyframeRecovery({ intervalMs: opts.keyframeRecoveryMs, recover: () => this.#recover() });
    this.#holdDown = new LayerHoldDown({
      apply: () => void Promise.all([...this.currentConsumers(), ...this.#shift.standbyConsumers()].map((c) => this.#applyLayer(c))),
      estimate: async () => (await transport.getStats())[0]?.availableOutgoingBitrate ?? 0,
      layerBitrates: async () => (await this.channel.programTrack('video')?.layerBitrates()) ?? [],
      holdMs: opts.layerHoldMs,
      maxHoldMs: 4 * opts.layerHoldMs,
    });
    this.#holdDown.enabled = opts.layerHoldMs > 0;
    this.#dvrRecovery = new KeyframeRecovery({ intervalMs: opts.keyframeRecoveryMs, recover: () => this.#recoverDvr() });
  }

  /** @internal Made by `Channel.createSocketViewer()`: a transport on its seat's router, not yet connected. */
  static async create(channel: Channel, seat: Seat, opts: SocketViewerOptions): Promise<SocketViewer> {
    const router = await seat.router();
    const transport = await createWebRtcTransport(seat.worker, router, {
      tcp: true,
      startBitrate: await channel.viewerStartBitrate(),
      appData: { channelId: channel.id, role: 'viewer' },
    });
    return new SocketViewer(channel, transport, router, seat, opts);
  }

  /** What the client needs to build its receive transport. */
  get view(): TransportView {
    return transportView(this.transport);
  }

  /** The client's DTLS parameters. */
  async connect(dtlsParameters: types.DtlsParameters): Promise<void> {
    this.#assertOpen();
    await this.transport.connect({ dtlsParameters });
  }

  /** Consumes the channel's program (from the GOP cache when it can). Consumers start paused: `resumeConsumer` each once set up. */
  async consume(rtpCapabilities: types.RtpCapabilities): Promise<ConsumerInfo[]> {
    this.#assertOpen();
    if (!this.channel.live) throw new SfuError('stream_offline', 'The stream is not live');
    this.rtpCapabilities = rtpCapabilities;
    return this.live();
  }

  /**
   * The program tracks a device with `rtpCapabilities` cannot receive (its browser cannot decode their codec,
   * e.g. Firefox without OpenH264 on an H.264 channel): the player says so instead of showing a black picture.
   */
  unplayable(rtpCapabilities: types.RtpCapabilities): UnplayableTrack[] {
    return this.channel
      .programTracks()
      .filter((t) => !this.#canConsume(t, rtpCapabilities) && !this.#rungFor(t, rtpCapabilities))
      .map((t) => ({ kind: t.kind, mimeType: t.codec.mimeType }));
  }

  /**
   * The program tracks a device with `rtpCapabilities` gets as a transcoded copy instead (the VP8 rung of an
   * H.264 channel, with the ladder on): live only, no DVR seek, the player says so.
   */
  transcoded(rtpCapabilities: types.RtpCapabilities): TranscodedTrack[] {
    return this.channel.programTracks().flatMap((t) => {
      const rung = this.#canConsume(t, rtpCapabilities) ? undefined : this.#rungFor(t, rtpCapabilities);
      return rung ? [{ kind: t.kind, mimeType: t.codec.mimeType, as: rung.track.codec.mimeType, dvr: false }] : [];
    });
  }

  #canConsume(track: ProgramTrack, rtpCapabilities: types.RtpCapabilities): boolean {
    return this.channel.router.canConsume({ producerId: track.producer.id, rtpCapabilities });
  }

  /** The channel's VP8 rung, when it stands in for `track` on a device that can decode it. */
  #rungFor(track: ProgramTrack, rtpCapabilities: types.RtpCapabilities): Vp8Rung | undefined {
    const rung = track.kind === 'video' ? this.channel.vp8Rung : undefined;
    return rung && this.#canConsume(rung.track, rtpCapabilities) ? rung : undefined;
  }

  /** Back to live: consumers on the program again (from the GOP cache, like a new viewer). */
  async live(): Promise<ConsumerInfo[]> {
    this.#assertOpen();
    return this.#move(() => this.#live());
  }

  async #live(): Promise<ConsumerInfo[]> {
    this.#assertOpen();
    if (!this.channel.live) throw new SfuError('stream_offline', 'The stream is not live');
    this.#recovery.onKeyframe(); // a request pending from the old consumers is answered by this
    this.#dvrRecovery.onKeyframe();
    this.#shift.stop();
    const caughtUp = this.#instantStart ? await this.#shift.catchUp() : null;
    const infos = caughtUp ?? (await this.#consumeProgram(false)).infos;
    // a transport made before go-live (a waiting room) starts its estimate under the lowest layer
    this.estimateFloor.hold();
    return infos;
  }

  /** Seeks into the past: `offsetMs` behind live, or `deltaMs` from where it is. */
  async seek(target: SeekTarget): Promise<SeekResult> {
    this.#assertOpen();
    if (!this.channel.isWatching(this)) throw new SfuError('not_found', 'Consume the stream first');
    if (this.#onRung)
      throw new SfuError(
        'unavailable',
        `Seeking back is not available in this browser: it cannot decode this channel's ${this.channel.programTrack('video')?.codec.mimeType.replace('video/', '') ?? 'video'}, so it plays a live-only copy`,
      );
    return this.#move(() => {
      this.#dvrRecovery.onKeyframe(); // a seek starts at a keyframe: a request pending from the old replay is answered
      return this.#shift.seek(target, () => this.#live());
    });
  }

  /** Runs a move in time after the ones before it (a recovery must not interleave with a seek). */
  #move<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#moves.then(fn, fn);
    this.#moves = run.catch(() => {});
    return run;
  }

  /**
   * Keyframe recovery: the viewer's live video lost a keyframe and the publisher did not answer its request, so
   * its video alone is caught up from the cached GOP (audio stays live); the client gets the consumers in a
   * `recover` event and switches back to live at the next keyframe as after an instant start.
   */
  async #recover(): Promise<void> {
    const infos = await this.#move(async () => {
      const video = this.consumers.get('video');
      // watching the past or catching up already, or holding the video (audio only): nothing to recover
      if (this.closed || !this.channel.live || !this.#shift.idle || !video || video.paused) return null;
      return this.#shift.catchUp(['video']);
    });
    if (infos && !this.closed) {
      this.observer.emit('keyframerecovery', 'live');
      this.emit('recover', infos);
    }
  }

  /**
   * DVR keyframe recovery: the replayed video lost a keyframe and the replay sent none within 0.5 s, so it is
   * replayed again from the keyframe before where the viewer is, quickly back to that point (`TimeShift`).
   */
  async #recoverDvr(): Promise<void> {
    const infos = await this.#move(async () => {
      const video = this.consumers.get('video');
      if (this.closed || !video || video.paused) return null;
      return this.#shift.recoverKeyframe();
    });
    if (infos?.length && !this.closed) {
      this.observer.emit('keyframerecovery', 'dvr');
      this.emit('recover', infos);
    }
  }

  /** Keyframe recoveries this viewer had, live and in the past (tests). */
  get recoveries(): number {
    return this.#recovery.count + this.#dvrRecovery.count;
  }

  /** Holds the picture (DVR only: live playback cannot be held). */
  pause(): void {
    this.#assertOpen();
    this.#shift.pause();
  }

  /**
   * Plays on from where `pause()` held it. On a replay other viewers share (they played on meanwhile) that is a
   * seek to where it paused: the answer carries its new consumers.
   */
  async resume(): Promise<ResumeResult> {
    this.#assertOpen();
    return this.#move(() => {
      this.#dvrRecovery.onKeyframe();
      return this.#shift.resume();
    });
  }

  /** Viewers its DVR replay is shared with (0: its own, or live). */
  get sharedWith(): number {
    return this.#shift.sharedWith;
  }

  /** The channel's video layers this viewer can choose from (named by their picture sizes), and its choice. */
  layers(): LayerChoice {
    // on the VP8 rung: its one layer, named so the player shows what this viewer gets
    const rung = this.#onRung ? this.channel.vp8Rung?.track : undefined;
    const track = rung ?? this.channel.programTrack('video');
    const layers = (track?.layers ?? []).flatMap((l) => (l.size ? [{ spatialLayer: l.index, ...l.size }] : []));
    // one layer is no choice
    return { layers: (track?.layers.length ?? 0) > 1 || rung ? layers : [], preferred: rung ? null : this.#preferredLayer };
  }

  /**
   * Chooses the video layer to receive (`null`: Auto). mediasoup still sends a lower one when the viewer's
   * bandwidth cannot carry the choice; Auto prefers the top layer, so the bandwidth alone decides.
   */
  async preferLayer(spatialLayer: number | null): Promise<LayerChoice> {
    this.#assertOpen();
    const count = this.#onRung ? 1 : (this.channel.programTrack('video')?.layers.length ?? 0);
    if (spatialLayer !== null && (count < 2 || spatialLayer >= count))
      throw new SfuError('not_found', `No video layer ${spatialLayer} (the stream has ${count})`);
    this.#preferredLayer = spatialLayer;
    this.#holdDown.enabled = spatialLayer === null && this.#holdMs > 0;
    // the standby ones too: a catch-up (instant start after a reconnect, back to live) switches to them
    await Promise.all([...this.currentConsumers(), ...this.#shift.standbyConsumers()].map((c) => this.#applyLayer(c)));
    return this.layers();
  }

  /** Where the viewer is in the DVR window; null when it watches live. */
  position(): DvrPosition | null {
    return this.closed ? null : this.#shift.position();
  }

  /** True when the consumer is one of this viewer's. */
  hasConsumer(consumerId: string): boolean {
    return !!this.#consumer(consumerId);
  }

  /** The client set a consumer up: media flows (a replay starts its clock; a live video consumer asks for a keyframe). */
  async resumeConsumer(consumerId: string): Promise<void> {
    const c = this.#mustConsumer(consumerId);
    if (await this.#shift.resumeReplayConsumer(c)) return;
    if (this.#shift.isStandby(c)) return; // resumed at the switch
    await c.resume();
    // A new viewer needs a keyframe; OBS ignores the request, the GOP cache (DVR) covers it.
    if (c.kind === 'video') await c.requestKeyFrame();
  }

  /**
   * Starts what `consume()` gave without waiting for the client to resume each consumer (one-request watching):
   * live consumers at once (mediasoup sends nothing before DTLS is up, and asks for a keyframe then), a
   * catch-up replay's clock once DTLS is up. Standby consumers still wait for the switch.
   */
  async start(): Promise<void> {
    await Promise.all(this.currentConsumers().map((c) => this.resumeConsumer(c.id)));
  }

  async pauseConsumer(consumerId: string): Promise<void> {
    await this.#mustConsumer(consumerId).pause();
  }

  /** ICE restart: the server's new credentials. */
  async restartIce(): Promise<types.IceParameters> {
    this.#assertOpen();
    return this.transport.restartIce();
  }

  /** @internal A live packet is about to reach the program (`keyframe`: it starts one) or reached the buffer. */
  onLivePacket(stage: 'keyframe' | 'buffered'): void {
    if (stage === 'keyframe') {
      this.#recovery.onKeyframe();
      this.#shift.onLiveKeyframe();
    } else this.#shift.onLivePacket();
  }

  /** The Auto-quality hold-down (tests, logs). */
  get layerHoldDown(): LayerHoldDown {
    return this.#holdDown;
  }

  protected override setConsumer(consumer: types.Consumer, closeOldAfterMs = 0): void {
    super.setConsumer(consumer, closeOldAfterMs);
    if (consumer.kind === 'video' && consumer.type === 'simulcast') this.#holdDown.follow(consumer);
  }

  protected override onClose(): void {
    this.#holdDown.close();
    this.#recovery.close();
    this.#dvrRecovery.close();
    this.#shift.stop();
  }

  #consumer(id: string): types.Consumer | undefined {
    return [...this.consumers.values()].find((c) => c.id === id) ?? this.#shift.standbyConsumer(id);
  }

  #mustConsumer(id: string): types.Consumer {
    const c = this.closed ? undefined : this.#consumer(id);
    if (!c) throw new SfuError('not_found', 'No such consumer');
    return c;
  }

  #assertOpen(): void {
    if (this.closed) throw new SfuError('not_found', 'No such transport');
  }

  /**
   * Gives a (simulcast) video consumer the viewer's layer choice: the chosen layer, or for Auto the top one (below
   * a layer the hold-down holds it from).
   */
  async #applyLayer(consumer: types.Consumer): Promise<void> {
    if (consumer.kind !== 'video' || consumer.type !== 'simulcast' || consumer.closed) return;
    const top = this.channel.programTrack('video')?.layers.length ?? 1;
    const spatialLayer = Math.min(this.#preferredLayer ?? this.#holdDown.ceiling ?? top - 1, top - 1);
    if (consumer.preferredLayers?.spatialLayer === spatialLayer) return;
    await consumer.setPreferredLayers({ spatialLayer }).catch(() => {}); // closed meanwhile
  }

  /**
   * Paused consumers of the live program (of `kinds`, default all). `standby`: kept aside for the switch, not
   * replacing the current ones. Their video's keyframe requests start a keyframe recovery.
   */
  async #consumeProgram(standby: boolean, kinds?: readonly MediaKind[]): Promise<ProgramConsumers> {
    const out: ProgramConsumers = { infos: [], consumers: [] };
    const rtpCapabilities = this.rtpCapabilities;
    for (const program of this.channel.programTracks()) {
      if (kinds && !kinds.includes(program.kind)) continue;
      // a device without the program's video codec gets the VP8 rung, if the channel has one
      const rung = this.#canConsume(program, rtpCapabilities) ? undefined : this.#rungFor(program, rtpCapabilities);
      if (!rung && !this.#canConsume(program, rtpCapabilities)) continue;
      const track = rung?.track ?? program;
      const producer = track.producer;
      const source = await this.seat.source(producer);
      if (this.closed) throw new SfuError('not_found', 'No such transport');
      const consumer = await this.transport.consume({ producerId: source.id, rtpCapabilities, paused: true });
      if (track.kind === 'video' && !standby) this.#onRung = !!rung;
      // encoded while this consumer lives
      if (rung) consumer.observer.once('close', rung.hold());
      if (consumer.kind === 'video') await this.#watchKeyframeRequests(consumer);
      await this.#applyLayer(consumer);
      if (!standby) this.setConsumer(consumer);
      out.consumers.push(consumer);
      out.infos.push({ id: consumer.id, producerId: producer.id, kind: track.kind, rtpParameters: consumer.rtpParameters });
    }
    if (out.infos.length === 0) throw new SfuError('unavailable', 'Nothing this device can receive');
    this.channel.watching(this);
    return out;
  }

  /** The viewer's browser asking the video consumer of the replay it watches (the past) for a keyframe may start a DVR recovery. */
  async #watchReplayKeyframeRequests(consumer: types.Consumer): Promise<void> {
    if (consumer.kind !== 'video') return;
    consumer.on('trace', (t) => {
      // not while catching up to live (position null): that replay ends at the next live keyframe anyway
      // nor while a shared replay it joined has not reached its next keyframe yet (that keyframe answers it)
      if (
        t.direction === 'in' &&
        this.consumers.get('video') === consumer &&
        this.#shift.position() !== null &&
        !this.#shift.awaitingKeyframe
      )
        this.#dvrRecovery.onRequest();
    });
    await consumer.enableTraceEvent(['pli', 'fir']).catch(() => {}); // closed meanwhile
  }

  /** The viewer's browser asking this (live) consumer for a keyframe (PLI/FIR) may start a keyframe recovery. */
  async #watchKeyframeRequests(consumer: types.Consumer): Promise<void> {
    consumer.on('trace', (t) => {
      if (t.direction === 'in' && this.consumers.get('video') === consumer) this.#recovery.onRequest();
    });
    await consumer.enableTraceEvent(['pli', 'fir']);
  }
}
