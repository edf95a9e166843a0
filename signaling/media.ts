import type { EventEmitter } from 'node:events';
import type { Database } from '@whipcast/db';
import type { DvrSource, ProgramCodec, RtpCapabilities, SocketViewer } from '@whipcast/sfu';
import type { Logger } from 'pino';
import type { Channels } from './channels.ts';
import type { Cluster } from './cluster/node.ts';
import type { Config } from './config.ts';
import type { Route } from './http/types.ts';
import type { Metrics } from './metrics.ts';
import type { Recordings } from './recordings.ts';

/** What the socket needs from the SFU for mediasoup-client viewers: it holds the `SocketViewer` objects and calls them. */
export interface SocketMedia {
  /** What a mediasoup-client Device loads: the same for every channel (sent in the socket's `hello`). */
  readonly routerRtpCapabilities: RtpCapabilities;
  /** The router capabilities a mediasoup-client Device loads, and whether the channel is live here (an edge pulls it first). */
  capabilities(channelId: string): Promise<{ routerRtpCapabilities: RtpCapabilities; live: boolean }>;
  /** A viewer of the channel: a receive transport for the client to connect, then consume. */
  createViewer(channelId: string): Promise<SocketViewer>;
  /** Before a viewer consumes: on an edge node the channel is pulled from its origin (no-op on the origin or a lone node). */
  ensure(channelId: string): Promise<void>;
}

/** What clips and thumbnails read of a channel live on this node: its DVR buffer and program codecs. */
export interface ProgramSource {
  readonly channelId: string;
  readonly dvr: DvrSource;
  /** Codec of the program's video track. */
  readonly video: ProgramCodec;
  /** Codec of the program's audio track, if it has one. */
  readonly audio?: ProgramCodec;
}

/** The DVR buffers of the channels live on this node. */
export interface ProgramSources {
  /** A channel live here with video, or null. */
  get(channelId: string): ProgramSource | null;
  /** Every channel live here with video. */
  live(): ProgramSource[];
}

export interface MediaEvents {
  /** The channel's status is now `live` in the database. */
  live: [channelId: string];
  /** The channel's status is now `offline` in the database. */
  offline: [channelId: string, reason: string];
  viewers: [channelId: string, count: number];
  /** Socket viewers must consume again (the channel's codecs changed). */
  reconsume: [channelId: string];
}

/** What a media layer is built from (`StartOptions.media`). */
export interface MediaDeps {
  config: Config;
  logger: Logger;
  db: Database;
  channels: Channels;
  metrics: Metrics;
  cluster: Cluster;
  /** Past broadcasts: the SFU records sessions into it (none: nothing is recorded). */
  recordings?: Recordings | undefined;
}

/**
 * What the server needs from the media layer. Implemented by the SFU adapter
 * (`sfu-adapter.ts`); a server without media (tests of the API alone) uses
 * `NO_MEDIA`.
 */
export interface MediaLayer {
  /** True when media workers run and can take sessions. */
  ready(): boolean;
  /** Ends a channel's publisher session (key rotated, account removed…). */
  endPublisher(channelId: string, reason: string): void;
  /** HTTP routes the media layer serves (WHIP, WHEP). */
  routes(): Route[];
  /** mediasoup-client viewers over the socket. */
  readonly socketViewers?: SocketMedia;
  /** Channel lifecycle, after the database reflects it. */
  readonly events?: EventEmitter<MediaEvents>;
  /** DVR buffers of live channels (clips, thumbnails). */
  readonly programs?: ProgramSources;
  close(): Promise<void>;
}

export const NO_MEDIA: MediaLayer = {
  ready: () => false,
  endPublisher: () => {},
  routes: () => [],
  close: async () => {},
};
