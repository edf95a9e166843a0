/** Messages between the soak runner and its bots processes (bench/soak-bots.ts), over the fork IPC channel. */
import type { SoakVerdict } from './soak-check.ts';

/** A publisher a bots process runs: OBS-like, looping an H.264 fixture + Opus. */
export interface SoakPublisherSpec {
  /** Node the publisher goes to. */
  url: string;
  key: string;
  video: { kbps: number; width: number; height: number; keyframeInterval: number };
}

/** A viewer bot a bots process runs. */
export interface SoakViewerSpec {
  /** Named in failures, e.g. `c3-v7@origin`. */
  name: string;
  /** Node the viewer joins. */
  url: string;
  /** The channel watched (the WHEP path's and the socket protocol's `streamId`). */
  channelId: string;
  via: 'whep' | 'socket';
  /** Pause this viewer's consumers on the server `afterMs` into the measured window, for `forMs` (a fault to catch; socket only). */
  stall?: { afterMs: number; forMs: number };
}

export type SoakBotsCommand =
  | { t: 'start'; publishers: SoakPublisherSpec[]; viewers: SoakViewerSpec[]; joinSpacingMs: number }
  | { t: 'measure'; maxGapMs: number; maxLossFraction: number }
  | { t: 'finish' }
  | { t: 'close' };

export type SoakBotsReply =
  | { t: 'up' }
  | { t: 'ready'; viewers: number; joinErrors: string[] }
  | { t: 'error'; message: string }
  /** `publisherFrames`: video frames each publisher sent in the measured window. */
  | { t: 'result'; verdict: SoakVerdict; eventLoopMaxMs: number; publisherFrames: number[] };
