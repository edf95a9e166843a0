/** State the SFU keeps per channel, publisher session and viewer. */
import type { types } from 'mediasoup';
import type { DvrBuffer } from './dvr/buffer.ts';
import type { ReplaySession } from './dvr/replay.ts';
import type { ProgramTrack } from './program.ts';
import type { MediaKind } from './sdp/offer.ts';
import type { PooledWorker } from './workers.ts';

export interface IngestSession {
  readonly id: string;
  readonly streamId: string;
  /** WebRTC from a WHIP client, or a PipeTransport from the channel's origin node (relay). */
  readonly transport: types.WebRtcTransport | types.PipeTransport;
  readonly source: 'publisher' | 'relay';
  /** Relays: tells the origin node to stop sending. */
  readonly onEnd?: () => void;
  readonly producers: Map<MediaKind, types.Producer>;
  readonly createdAt: number;
  /** ICE ufrag of the last offer/restart: the session's ETag. */
  etag: string;
  bytes: number;
  lastMediaAt: number;
  monitor?: NodeJS.Timeout;
  ended: boolean;
}

/** A WHIP publisher session (ICE-restartable, deletable by its client). */
export type WhipSession = IngestSession & { readonly transport: types.WebRtcTransport; readonly source: 'publisher' };

/** A channel piped from this node to another node that relays it to its own viewers. */
export interface RelayOut {
  readonly id: string;
  readonly streamId: string;
  /** The node it goes to. */
  readonly peer: string;
  readonly transport: types.PipeTransport;
}

export interface Viewer {
  readonly id: string;
  readonly streamId: string;
  readonly via: 'whep' | 'socket';
  readonly transport: types.WebRtcTransport;
  rtpCapabilities: types.RtpCapabilities;
  /** The router the viewer's consumers live on (origin or a payload-type-scheme egress router). */
  readonly router: types.Router;
  /** Where the viewer was placed; its slot is given back when it leaves. */
  readonly shard: AudienceShard;
  /** The m-line (mid) each kind is delivered on; kept across publisher changes. */
  readonly mids: Partial<Record<MediaKind, string>>;
  readonly consumers: Map<MediaKind, types.Consumer>;
  etag: string;
  closed: boolean;
  /** Set while the viewer watches the past (seek) or catches up (instant start). */
  replay?: ReplaySession | undefined;
  /** Catch-up viewers: paused program consumers, resumed at the next live keyframe. */
  standby?: Map<MediaKind, types.Consumer> | undefined;
}

export interface EgressRouter {
  readonly router: types.Router;
  /** Origin producer id → its pipe producer in this router. */
  readonly piped: Map<string, Promise<types.Producer>>;
}

/**
 * One router of a channel's audience. A channel's viewers fill a router up to
 * a limit, then the next router opens on the least-loaded worker and the
 * program is piped to it (`pipeToRouter`). Shard 0 of the socket audience is
 * the channel's own router.
 */
export interface AudienceShard {
  readonly slot: PooledWorker;
  readonly ready: Promise<EgressRouter>;
  /** Viewers placed here (counted when placed, before the router is ready). */
  viewers: number;
  /** The channel's own router: never closed for being empty. */
  readonly origin: boolean;
  /** The `ChannelMedia.egress` list it belongs to (it leaves it when its router closes or empties). */
  readonly list: AudienceShard[];
}

/** Takes a shard out of its channel's list (no-op when already out). */
export function dropShard(shard: AudienceShard): void {
  const i = shard.list.indexOf(shard);
  if (i >= 0) shard.list.splice(i, 1);
}

/** Closes a non-origin shard's router once it exists (the channel's own router is closed with the channel). */
export function closeShard(shard: AudienceShard): void {
  dropShard(shard);
  if (!shard.origin)
    void shard.ready.then(
      (e) => e.router.close(),
      () => {},
    );
}

export interface ChannelMedia {
  readonly streamId: string;
  readonly slot: PooledWorker;
  readonly router: types.Router;
  publisher: IngestSession | null;
  live: boolean;
  readonly viewers: Set<Viewer>;
  /** Audience routers by delivery scheme ('socket' or a WHEP payload-type scheme). */
  readonly egress: Map<string, AudienceShard[]>;
  /** Stable per-kind producers viewers consume, fed by the current publisher. */
  readonly program: Partial<Record<MediaKind, ProgramTrack>>;
  readonly tapTransport: types.DirectTransport;
  /** The time-shift buffer (DVR and the GOP cache for instant start). */
  readonly dvr: DvrBuffer;
  readonly programTransport: types.DirectTransport;
}
