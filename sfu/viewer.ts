/**
 * A viewer of a channel: one WebRTC transport on an audience router and a
 * consumer per kind. Subclasses: `WhepViewer` (a WHEP session) and
 * `SocketViewer` (a mediasoup-client over the socket, with DVR).
 *
 * The close cascade lives here once: closing a viewer (its client left, DTLS
 * failed, its router or channel closed) closes its transport (with it its
 * consumers) and gives its seat back.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { Seat } from './audience.ts';
import type { Channel } from './channel.ts';
import type { MediaKind } from './sdp/offer.ts';
import type { ConsumerInfo } from './types.ts';
import { EstimateFloor } from './estimate-floor.ts';
import { onDtlsEnd } from './transport.ts';

export interface ViewerEvents {
  /**
   * The viewer is gone. `byServer`: the server ended it (its router's worker
   * was lost, its channel closed), not its client: a socket client builds a
   * new one.
   */
  close: [reason: string, byServer: boolean];
  /** Socket viewers: the catch-up replay reached the live edge and the standby consumers took over (the client switches too). */
  switch: [];
  /** Socket viewers: keyframe recovery replaced the video with these consumers (a catch-up; `switch` follows at live). */
  recover: [consumers: ConsumerInfo[]];
}

/**
 * How long a viewer starting on a live program has its estimate held up to the start bitrate at most (the
 * viewer's own feedback usually takes over sooner): two of OBS's keyframe intervals.
 */
const ESTIMATE_HOLD_MS = 4000;
/** How often the held estimate and the start bitrate are read. */
const ESTIMATE_CHECK_MS = 250;

/** Where a viewer was watching when its picture was recovered from the buffer: the live edge or the past (DVR). */
export type RecoveryPosition = 'live' | 'dvr';

export interface ViewerObserverEvents {
  close: [reason: string];
  /** Its video lost a keyframe and was served one from the DVR buffer instead of waiting for the publisher's next one. */
  keyframerecovery: [position: RecoveryPosition];
}

/** How a viewer is signalled: the web player over the socket (mediasoup-client), or a WHEP player. */
export type ViewerClient = 'player' | 'whep';

export abstract class Viewer extends EventEmitter<ViewerEvents> {
  /** How it is signalled. */
  abstract readonly client: ViewerClient;
  /** Emits `close` for outsiders (metrics, tests). */
  readonly observer = new EventEmitter<ViewerObserverEvents>();
  /** The current consumer of each kind. */
  protected readonly consumers = new Map<MediaKind, types.Consumer>();
  /** What the viewer's device can receive. */
  protected rtpCapabilities: types.RtpCapabilities;
  /** Holds its transport's bandwidth estimate up to its channel's start bitrate while it starts on a live program. */
  readonly estimateFloor: EstimateFloor;
  #closed = false;

  protected constructor(
    /** The viewer's id: its WHEP session id, or its transport's id. */
    readonly id: string,
    /** The channel it watches. */
    readonly channel: Channel,
    readonly transport: types.WebRtcTransport,
    /** The router its transport and consumers live on. */
    readonly router: types.Router,
    /** Its place in the channel's audience. */
    protected readonly seat: Seat,
    rtpCapabilities: types.RtpCapabilities,
  ) {
    super();
    this.rtpCapabilities = rtpCapabilities;
    this.estimateFloor = new EstimateFloor(transport, {
      target: () => channel.viewerStartBitrate(),
      wanted: () => (channel.programTrack('video')?.layers.length ?? 0) > 1,
      holdMs: ESTIMATE_HOLD_MS,
      checkMs: ESTIMATE_CHECK_MS,
    });
    onDtlsEnd(transport, (reason) => this.close(reason));
    // its router closed under it (worker died, audience torn down)
    transport.observer.once('close', () => this.close('transport closed by the server', true));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Its current consumers, one per kind (stats, metrics). */
  currentConsumers(): types.Consumer[] {
    return [...this.consumers.values()];
  }

  /** The index of the worker it was placed on. */
  get worker(): number {
    return this.seat.worker.index;
  }

  /**
   * Makes `consumer` the viewer's consumer of its kind. The one it replaces
   * closes now, or after `closeOldAfterMs` (a switch at a keyframe lets the
   * client's decoder move over first); a lingering one is paused at once, so
   * it no longer takes a share of the transport's bandwidth estimate from the
   * new one (mediasoup splits it among the active consumers: with room for one
   * layer, a catch-up's lingering consumer could keep it and leave the live
   * one without a layer until the publisher's next keyframe, issue #13).
   */
  protected setConsumer(consumer: types.Consumer, closeOldAfterMs = 0): void {
    const kind = consumer.kind;
    const old = this.consumers.get(kind);
    this.consumers.set(kind, consumer);
    consumer.observer.once('close', () => {
      if (this.consumers.get(kind) === consumer) this.consumers.delete(kind);
    });
    if (!old || old === consumer) return;
    if (closeOldAfterMs > 0) {
      void old.pause().catch(() => {}); // closed meanwhile
      setTimeout(() => old.close(), closeOldAfterMs).unref();
    } else old.close();
  }

  /** Ends the viewer: its transport, consumers and seat. Idempotent. */
  close(reason = 'closed by the client', byServer = false): void {
    if (this.#closed) return;
    this.#closed = true;
    this.estimateFloor.close();
    this.onClose();
    this.transport.close();
    this.seat.release();
    this.emit('close', reason, byServer);
    this.observer.emit('close', reason);
  }

  /** Subclasses stop what they run besides the transport (replays). */
  protected onClose(): void {}
}
