import type { EventEmitter } from 'node:events';
import type { Route } from './http/types.ts';

export interface MediaEvents {
  /** The channel's status is now `live` in the database. */
  live: [streamId: string];
  /** The channel's status is now `offline` in the database. */
  offline: [streamId: string, reason: string];
  viewers: [streamId: string, count: number];
}

/**
 * What the server needs from the media layer. Implemented by the SFU adapter
 * (`sfu-adapter.ts`); a server without media (tests of the API alone) uses
 * `NO_MEDIA`.
 */
export interface MediaLayer {
  /** True when media workers run and can take sessions. */
  ready(): boolean;
  viewerCount(streamId: string): number;
  /** Ends a channel's publisher session (key rotated, account removed…). */
  endPublisher(streamId: string, reason: string): void;
  /** HTTP routes the media layer serves (WHIP, WHEP). */
  routes(): Route[];
  /** Channel lifecycle, after the database reflects it. */
  readonly events?: EventEmitter<MediaEvents>;
  close(): Promise<void>;
}

export const NO_MEDIA: MediaLayer = {
  ready: () => false,
  viewerCount: () => 0,
  endPublisher: () => {},
  routes: () => [],
  close: async () => {},
};
