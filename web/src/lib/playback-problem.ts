/**
 * What stops a viewer from seeing the picture, told in words instead of a
 * silent black "LIVE" (issue #13 item 6):
 * - `codec`: the browser cannot decode the channel's video (the server said so
 *   when the player consumed: e.g. H.264 in a Firefox without OpenH264);
 * - `network`: frames are (nearly) not being decoded while the stream plays:
 *   the link cannot carry it (packets arrive but too many are lost), or no
 *   video arrives at all.
 * `StallWatch` judges the second from the receiver's own counters, sampled
 * about once a second.
 */

export type PlaybackProblem =
  | {
      kind: 'codec';
      /** The video codec this browser cannot decode, e.g. `video/H264`. */
      mimeType: string;
      /** Audio can still be played. */
      audio: boolean;
    }
  | {
      kind: 'network';
      /** Video packets are arriving (but not enough to decode): the link is too slow or too lossy. */
      receiving: boolean;
      /** Packet loss over the last seconds, when known. */
      lossPct: number | null;
    };

/** One reading of the receiver's video counters. */
export interface StallSample {
  /** ms, any monotonic clock. */
  at: number;
  framesDecoded: number;
  videoPacketsReceived: number;
  /** Loss over the last interval, audio + video (`PlayerStats.packetLossPct`). */
  packetLossPct: number | null;
}

export interface StallWatchOptions {
  /** How long decoding must fall short before the viewer is told (ms). */
  windowMs?: number;
  /** Fewer frames per second than this over the window is a stall: a keyframe now and then is not watching. */
  minFps?: number;
  /** Frames per second over the last two samples that end a stall. */
  recoverFps?: number;
}

export class StallWatch {
  readonly #windowMs: number;
  readonly #minFps: number;
  readonly #recoverFps: number;
  #samples: StallSample[] = [];
  #stalled = false;

  constructor(opts: StallWatchOptions = {}) {
    this.#windowMs = opts.windowMs ?? 5000;
    this.#minFps = opts.minFps ?? 3;
    this.#recoverFps = opts.recoverFps ?? 10;
  }

  /** Adds a reading; returns the problem it shows, or null while frames decode. */
  sample(s: StallSample): Extract<PlaybackProblem, { kind: 'network' }> | null {
    const last = this.#samples.at(-1);
    // the player swapped tracks (seek, back to live): counters start again
    if (last && (s.framesDecoded < last.framesDecoded || s.videoPacketsReceived < last.videoPacketsReceived || s.at <= last.at))
      this.#samples = [];
    this.#samples.push(s);
    while (this.#samples.length > 2 && s.at - this.#samples[1]!.at >= this.#windowMs) this.#samples.shift();
    const first = this.#samples[0]!;
    const span = s.at - first.at;
    const fps = (a: StallSample) => ((s.framesDecoded - a.framesDecoded) * 1000) / Math.max(1, s.at - a.at);

    if (this.#stalled) {
      const prev = this.#samples.at(-2);
      if (prev && fps(prev) >= this.#recoverFps) this.#stalled = false;
    } else if (span >= this.#windowMs && fps(first) < this.#minFps) this.#stalled = true;
    if (!this.#stalled) return null;

    const losses = this.#samples.map((x) => x.packetLossPct).filter((x): x is number => x !== null);
    return {
      kind: 'network',
      receiving: s.videoPacketsReceived > first.videoPacketsReceived,
      lossPct: losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : null,
    };
  }

  /** Forget what was seen (paused, audio only, a new connection): a stall is judged afresh. */
  reset(): void {
    this.#samples = [];
    this.#stalled = false;
  }
}

/** "H.264" for `video/H264`: a codec as people write it. */
export function codecName(mimeType: string): string {
  const name = mimeType.split('/')[1] ?? mimeType;
  return ({ h264: 'H.264', h265: 'H.265', vp8: 'VP8', vp9: 'VP9', av1: 'AV1' } as Record<string, string>)[name.toLowerCase()] ?? name;
}
