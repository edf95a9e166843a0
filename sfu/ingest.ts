/**
 * What feeds a channel on this node: a WHIP publisher (`WhipIngest`) or a
 * relay from the channel's origin node (`RelayIngest`). Each watches its own
 * liveness: first media → `media`; silent for `timeoutMs` → it closes.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import { SfuError } from './errors.ts';
import { createPipe, endpointOf, type PipeConfig } from './relay.ts';
import { buildAnswer } from './sdp/answer.ts';
import { SdpError } from './sdp/errors.ts';
import type { MediaKind, ParsedOffer } from './sdp/offer.ts';
import type { IngestTrack } from './sdp/plan.ts';
import { connectOffer, createWebRtcTransport, newSessionId, onDtlsEnd, transportInfo } from './transport.ts';
import type { IceRestartResult, IngestSource, PipeEndpoint, RelayOffer } from './types.ts';
import type { PooledWorker } from './workers.ts';

export interface IngestEvents {
  /** The first media arrived. */
  media: [];
  /** The ingest ended: DELETE, timeout, DTLS failure, replaced, its channel closed… */
  close: [reason: string];
}

export interface IngestOptions {
  /** The channel it feeds. */
  channelId: string;
  /** Silent (no RTP) this long → it closes. */
  timeoutMs: number;
  /** Anything the owner wants to keep with it. */
  appData?: Record<string, unknown>;
}

const MONITOR_INTERVAL_MS = 250;

export abstract class Ingest extends EventEmitter<IngestEvents> {
  /** Emits `close` for outsiders (metrics, tests). */
  readonly observer = new EventEmitter<{ close: [reason: string] }>();
  readonly channelId: string;
  readonly createdAt = Date.now();
  readonly appData: Record<string, unknown>;
  abstract readonly source: IngestSource;
  #closed = false;
  #bytes = 0;
  #lastMediaAt = Date.now();
  #polling = false;
  readonly #monitor: NodeJS.Timeout;

  protected constructor(
    readonly id: string,
    /** WebRTC from a WHIP client, or a PipeTransport from the channel's origin node. */
    readonly transport: types.WebRtcTransport | types.PipeTransport,
    /** One producer per kind. */
    readonly producers: ReadonlyMap<MediaKind, types.Producer>,
    opts: IngestOptions,
  ) {
    super();
    this.channelId = opts.channelId;
    this.appData = opts.appData ?? {};
    this.#monitor = setInterval(() => this.#poll(opts.timeoutMs), MONITOR_INTERVAL_MS);
    const base: types.Transport = transport;
    base.observer.once('close', () => this.close('transport closed'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Ends the ingest: its transport and producers close. Idempotent. */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#monitor);
    this.transport.close();
    this.emit('close', reason);
    this.observer.emit('close', reason);
  }

  #poll(timeoutMs: number): void {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    void this.#inboundBytes()
      .then((bytes) => {
        if (this.#closed) return;
        const now = Date.now();
        if (bytes > this.#bytes) {
          const first = this.#bytes === 0;
          this.#bytes = bytes;
          this.#lastMediaAt = now;
          if (first) this.emit('media');
        } else if (now - this.#lastMediaAt > timeoutMs) {
          this.close(this.#bytes ? 'publisher sent no media (timeout)' : 'publisher never sent media');
        }
      })
      .catch(() => {})
      .finally(() => (this.#polling = false));
  }

  async #inboundBytes(): Promise<number> {
    let total = 0;
    for (const p of this.producers.values()) {
      if (p.closed) continue;
      for (const st of await p.getStats()) total += st.byteCount;
    }
    return total;
  }
}

/** A WHIP publisher (RFC 9725): its session URL is `/whip/sessions/<id>`; ICE-restartable, deletable by its client. */
export class WhipIngest extends Ingest {
  readonly source = 'publisher';
  declare readonly transport: types.WebRtcTransport;
  /** The SDP answer for the client. */
  readonly answer: string;
  #remoteIceUfrag: string;

  private constructor(
    id: string,
    transport: types.WebRtcTransport,
    producers: Map<MediaKind, types.Producer>,
    offer: ParsedOffer,
    answer: string,
    opts: IngestOptions,
  ) {
    super(id, transport, producers, opts);
    this.answer = answer;
    this.#remoteIceUfrag = offer.iceUfrag;
    onDtlsEnd(transport, (reason) => this.close(reason));
  }

  /** @internal Made by `Channel.publish()`. */
  static async create(
    slot: PooledWorker,
    router: types.Router,
    offer: ParsedOffer,
    tracks: IngestTrack[],
    opts: IngestOptions,
  ): Promise<WhipIngest> {
    const id = newSessionId();
    const transport = await createWebRtcTransport(slot, router, {
      tcp: false,
      appData: { channelId: opts.channelId, sessionId: id, role: 'publisher' },
    });
    await connectOffer(transport, offer);
    const producers = new Map<MediaKind, types.Producer>();
    try {
      for (const t of tracks)
        producers.set(
          t.kind,
          await transport.produce({
            kind: t.kind,
            rtpParameters: t.rtpParameters,
            keyFrameRequestDelay: 1000,
            appData: { channelId: opts.channelId },
          }),
        );
    } catch (err) {
      transport.close();
      throw new SdpError(422, 'unsupported_media', `mediasoup refused the tracks: ${(err as Error).message}`);
    }
    const answer = buildAnswer({
      offer,
      accepted: tracks.map((t) => t.accepted),
      transport: transportInfo(transport),
      direction: 'recvonly',
    });
    return new WhipIngest(id, transport, producers, offer, answer, opts);
  }

  /** The client's current ICE username fragment (from its offer or its last ICE restart). */
  get remoteIceUfrag(): string {
    return this.#remoteIceUfrag;
  }

  /** ICE restart (WHIP PATCH): new server credentials for the client's new ones. */
  async restartIce(remote: { ufrag: string; pwd: string }): Promise<IceRestartResult> {
    if (this.closed) throw new SfuError('not_found', 'No such session');
    const iceParameters = await this.transport.restartIce();
    this.#remoteIceUfrag = remote.ufrag;
    return { iceParameters, iceCandidates: this.transport.iceCandidates };
  }
}

/** Edge side of a relay: the channel as its origin node sends it. Closing it tells the origin to stop (`close` event). */
export class RelayIngest extends Ingest {
  readonly source = 'relay';
  declare readonly transport: types.PipeTransport;

  /**
   * @internal Made by `Channel.pull()`. `open` sends this node's pipe end to
   * the origin and returns the origin's.
   */
  static async create(
    router: types.Router,
    pipe: PipeConfig,
    open: (local: PipeEndpoint) => Promise<RelayOffer>,
    opts: IngestOptions,
  ): Promise<RelayIngest> {
    const transport = await createPipe(router, pipe, { channelId: opts.channelId, role: 'relay-in' });
    const producers = new Map<MediaKind, types.Producer>();
    try {
      const offer = await open(endpointOf(transport, pipe));
      await transport.connect(offer.endpoint);
      for (const t of offer.tracks)
        producers.set(
          t.kind,
          await transport.produce({ kind: t.kind, rtpParameters: t.rtpParameters, appData: { channelId: opts.channelId } }),
        );
      if (producers.size === 0) throw new SfuError('stream_offline', 'The origin sends no tracks');
    } catch (err) {
      transport.close();
      throw err;
    }
    return new RelayIngest(transport.id, transport, producers, opts);
  }
}
