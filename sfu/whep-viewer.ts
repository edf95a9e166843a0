/**
 * A WHEP viewer: a player that POSTed a recvonly offer. Its session URL is
 * `/whep/sessions/<id>`. It keeps its m-lines (mids) for its whole life: when
 * the channel's program tracks are re-made (a codec change), it is attached
 * to the new ones without renegotiation.
 */
import type { types } from 'mediasoup';
import type { Seat } from './audience.ts';
import type { Channel } from './channel.ts';
import { SfuError } from './errors.ts';
import type { SfuLogger } from './logger.ts';
import { LossBasedLayers } from './loss-based-layers.ts';
import type { PipeWarmUp } from './pipe-warm-up.ts';
import { buildAnswer } from './sdp/answer.ts';
import type { MediaKind, ParsedOffer } from './sdp/offer.ts';
import type { EgressPlan } from './sdp/plan.ts';
import { connectOffer, createWebRtcTransport, newSessionId, transportInfo } from './transport.ts';
import type { IceRestartResult } from './types.ts';
import { Viewer } from './viewer.ts';

const TRANSPORT_CC = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

export class WhepViewer extends Viewer {
  readonly client = 'whep';
  /** The m-line (mid) each kind is delivered on. */
  readonly #mids: Partial<Record<MediaKind, string>>;
  readonly #offer: ParsedOffer;
  readonly #plan: EgressPlan;
  readonly #log: SfuLogger;
  #remoteIceUfrag: string;
  #layers: LossBasedLayers | null = null;
  #warmingUp = false;
  #answer = '';

  private constructor(
    id: string,
    channel: Channel,
    transport: types.WebRtcTransport,
    router: types.Router,
    seat: Seat,
    caps: types.RtpCapabilities,
    offer: ParsedOffer,
    plan: EgressPlan,
    log: SfuLogger,
  ) {
    super(id, channel, transport, router, seat, caps);
    this.#offer = offer;
    this.#plan = plan;
    this.#log = log;
    this.#remoteIceUfrag = offer.iceUfrag;
    const mids: Partial<Record<MediaKind, string>> = {};
    for (const a of plan.accepted) mids[a.media.kind] = a.media.mid;
    this.#mids = mids;
  }

  /** @internal Made by `Channel.watch()`: a connected transport on its seat's router. */
  static async create(channel: Channel, seat: Seat, offer: ParsedOffer, plan: EgressPlan, log: SfuLogger): Promise<WhepViewer> {
    const id = newSessionId();
    const router = await seat.router();
    const transport = await createWebRtcTransport(seat.worker, router, {
      tcp: true,
      startBitrate: await channel.viewerStartBitrate(),
      appData: { channelId: channel.id, sessionId: id, role: 'viewer' },
    });
    await connectOffer(transport, offer);
    // RTX only when the audience router's RTX payload type is the one the player offered.
    const caps: types.RtpCapabilities = {
      codecs: [...(plan.rtpCapabilities.codecs ?? [])],
      headerExtensions: plan.rtpCapabilities.headerExtensions ?? [],
    };
    for (const a of plan.accepted) {
      const offeredRtx = a.codec.rtxPayloadType;
      const routerRtx = router.rtpCapabilities.codecs?.find(
        (c) => c.mimeType.toLowerCase().endsWith('/rtx') && c.kind === a.media.kind && c.parameters?.apt === a.codec.payloadType,
      );
      if (offeredRtx !== undefined && routerRtx?.preferredPayloadType === offeredRtx) {
        a.rtxPayloadType = offeredRtx;
        caps.codecs!.push({ ...routerRtx });
      }
    }
    return new WhepViewer(id, channel, transport, router, seat, caps, offer, plan, log);
  }

  /** The SDP answer for the player (after `start()`). */
  get answer(): string {
    return this.#answer;
  }

  /** The player's current ICE username fragment (from its offer or its last ICE restart). */
  get remoteIceUfrag(): string {
    return this.#remoteIceUfrag;
  }

  /** @internal Consumes the program and writes the answer. */
  async start(): Promise<void> {
    await this.attach();
    const accepted = this.#plan.accepted;
    // Players without MID demuxing (libdatachannel, GStreamer) need the SSRCs signalled.
    for (const a of accepted) {
      const c = this.consumers.get(a.media.kind);
      const enc = c?.rtpParameters.encodings?.[0];
      if (c && enc?.ssrc)
        a.sendSsrcs = {
          ssrc: enc.ssrc,
          ...(enc.rtx?.ssrc ? { rtxSsrc: enc.rtx.ssrc } : {}),
          cname: c.rtpParameters.rtcp?.cname ?? 'whipcast',
        };
    }
    this.#answer = buildAnswer({ offer: this.#offer, accepted, transport: transportInfo(this.transport), direction: 'sendonly' });
  }

  /** @internal Consumes the channel's current program tracks on the viewer's own mids (again after they were re-made). */
  async attach(): Promise<void> {
    for (const [kind, mid] of Object.entries(this.#mids) as [MediaKind, string][]) {
      if (this.closed) return;
      const producer = this.channel.programTrack(kind)?.producer;
      if (!producer) continue;
      if (this.consumers.get(kind)?.producerId === producer.id) continue;
      try {
        const source = await this.seat.source(producer);
        const warmUp = await this.#warmUpHold(kind, producer);
        if (this.closed || producer.closed) return;
        this.consumers.get(kind)?.close();
        const consumer = await this.transport.consume({
          producerId: source.id,
          rtpCapabilities: this.rtpCapabilities,
          mid,
          paused: false,
          ...(warmUp ? { preferredLayers: { spatialLayer: 0 } } : {}),
        });
        this.setConsumer(consumer);
        this.#steerLayers(consumer);
        if (warmUp) this.#releaseWhenWarm(consumer, warmUp);
      } catch (err) {
        this.#log.warn({ err, channelId: this.channel.id, viewer: this.id, kind }, 'could not deliver track to viewer');
      }
    }
  }

  /**
   * A simulcast consumer mediasoup cannot estimate the bandwidth of (the player's transport-wide-cc id is not the
   * router's, see `planEgress`) gets its layer from the loss the player reports instead.
   */
  #steerLayers(consumer: types.Consumer): void {
    if (consumer.kind !== 'video') return;
    this.#layers?.close();
    this.#layers = null;
    const estimated = consumer.rtpParameters.headerExtensions?.some((h) => h.uri === TRANSPORT_CC);
    if (consumer.type !== 'simulcast' || estimated) return;
    this.#layers = new LossBasedLayers({ consumer, layers: () => this.channel.programTrack('video')?.layers.length ?? 1 });
  }

  /**
   * A simulcast consumer with a bandwidth estimate on a pipe still warming up (see `PipeWarmUp`) is made
   * preferring the lowest layer, which it gets at the next keyframe, and is given every layer when the pipe is warm.
   */
  async #warmUpHold(kind: MediaKind, producer: types.Producer): Promise<PipeWarmUp | null> {
    const estimated = this.rtpCapabilities.headerExtensions?.some((h) => h.uri === TRANSPORT_CC && h.kind === kind);
    if (kind !== 'video' || producer.type !== 'simulcast' || !estimated) return null;
    const warmUp = await this.seat.warmUp(producer);
    return warmUp && !warmUp.warm ? warmUp : null;
  }

  #releaseWhenWarm(consumer: types.Consumer, warmUp: PipeWarmUp): void {
    this.#warmingUp = true;
    warmUp.once('warm', () => {
      if (this.consumers.get('video') === consumer) this.#warmingUp = false;
      if (consumer.closed) return;
      const top = (this.channel.programTrack('video')?.layers.length ?? 1) - 1;
      consumer.setPreferredLayers({ spatialLayer: top }).catch(() => {}); // closed meanwhile
    });
  }

  /** Its video is held on the lowest layer while the pipe into its router warms up (tests). */
  get warmingUp(): boolean {
    return this.#warmingUp;
  }

  /** The layer steering of its video, when mediasoup has no bandwidth estimate for it (tests). */
  get lossBasedLayers(): LossBasedLayers | null {
    return this.#layers;
  }

  protected override onClose(): void {
    this.#layers?.close();
  }

  /** ICE restart (WHEP PATCH): new server credentials for the player's new ones. */
  async restartIce(remote: { ufrag: string; pwd: string }): Promise<IceRestartResult> {
    if (this.closed) throw new SfuError('not_found', 'No such session');
    const iceParameters = await this.transport.restartIce();
    this.#remoteIceUfrag = remote.ufrag;
    return { iceParameters, iceCandidates: this.transport.iceCandidates };
  }
}
