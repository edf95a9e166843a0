import type { EventEmitter } from 'node:events';
import type {
  ConsumerInfo,
  DtlsParameters,
  DvrPosition,
  IceParameters,
  RtpCapabilities,
  SeekResult,
  SeekTarget,
  TransportView,
} from '@whipcast/sfu';
import type { Route } from './http/types.ts';

/** What the socket needs from the SFU for mediasoup-client viewers (ids are mediasoup transport ids). */
export interface ViewerRtc {
  capabilities(channelId: string): Promise<{ routerRtpCapabilities: RtpCapabilities; live: boolean }>;
  createViewerTransport(channelId: string): Promise<TransportView>;
  connectViewerTransport(transportId: string, dtlsParameters: DtlsParameters): Promise<void>;
  consume(transportId: string, rtpCapabilities: RtpCapabilities): Promise<ConsumerInfo[]>;
  resumeConsumer(transportId: string, consumerId: string): Promise<void>;
  pauseConsumer(transportId: string, consumerId: string): Promise<void>;
  restartViewerIce(transportId: string): Promise<IceParameters>;
  closeViewerTransport(transportId: string): boolean;
  dvrSeek(transportId: string, target: SeekTarget): Promise<SeekResult>;
  dvrLive(transportId: string): Promise<ConsumerInfo[]>;
  dvrPause(transportId: string): void;
  dvrResume(transportId: string): void;
  dvrPosition(transportId: string): DvrPosition | null;
}

export interface MediaEvents {
  /** The channel's status is now `live` in the database. */
  live: [streamId: string];
  /** The channel's status is now `offline` in the database. */
  offline: [streamId: string, reason: string];
  viewers: [streamId: string, count: number];
  /** Socket viewers must consume again (the channel's codecs changed). */
  reconsume: [streamId: string];
  /** A socket viewer's catch-up is over: switch to its standby consumers. */
  dvrSwitch: [transportId: string];
  /** The server closed a socket viewer's transport; its client must build a new one. */
  transportClosed: [transportId: string, reason: string];
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
  endPublisher(streamId: string, reason: string): void;
  /** HTTP routes the media layer serves (WHIP, WHEP). */
  routes(): Route[];
  /** mediasoup-client viewers over the socket. */
  readonly viewerRtc?: ViewerRtc;
  /** Channel lifecycle, after the database reflects it. */
  readonly events?: EventEmitter<MediaEvents>;
  close(): Promise<void>;
}

export const NO_MEDIA: MediaLayer = {
  ready: () => false,
  endPublisher: () => {},
  routes: () => [],
  close: async () => {},
};
