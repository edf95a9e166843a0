/**
 * RTP timestamps → seconds on one timeline shared by a recording's tracks.
 *
 * The program's tracks have unrelated random RTP timestamp origins, so each
 * track is anchored by the arrival time of its first frame relative to the
 * timeline's zero (the first video keyframe); after that its RTP clock alone
 * advances it (no jitter). A publisher reconnect is a jump in the program's
 * timestamps by the wall-clock time that passed, so the gap appears in the
 * recording at its real length on every track.
 */
import { Av1Depacketizer } from './av1.ts';
import { Depacketizer } from './depacketizer.ts';
import { H264Depacketizer } from './h264.ts';
import { OpusDepacketizer } from './opus.ts';
import type { CodedFrame, RecordableCodec } from './types.ts';
import { Vp8Depacketizer } from './vp8.ts';
import { Vp9Depacketizer } from './vp9.ts';

export function createDepacketizer(codec: RecordableCodec): Depacketizer {
  switch (codec) {
    case 'h264':
      return new H264Depacketizer();
    case 'vp8':
      return new Vp8Depacketizer();
    case 'vp9':
      return new Vp9Depacketizer();
    case 'av1':
      return new Av1Depacketizer();
    case 'opus':
      return new OpusDepacketizer();
  }
}

export class Timeline {
  /** Arrival time (ms since the epoch) that is time 0, once set. */
  zeroMs: number | null = null;
}

export interface TimedFrame extends CodedFrame {
  /** Presentation time in seconds on the timeline. */
  time: number;
}

/** Places one track's frames on a timeline. */
export class TrackClock {
  #anchorSec: number | null = null;
  #lastTs = 0;
  /** Extended (unwrapped) timestamp of the last frame, relative to the first. */
  #ext = 0;

  constructor(
    readonly clockRate: number,
    readonly timeline: Timeline,
  ) {}

  /** The frame's time in seconds; the timeline's zero must be set. */
  place(frame: CodedFrame): TimedFrame {
    const zero = this.timeline.zeroMs!;
    if (this.#anchorSec === null) {
      this.#anchorSec = (frame.arrivalMs - zero) / 1000;
      this.#lastTs = frame.rtpTimestamp;
      this.#ext = 0;
    } else {
      this.#ext += ((frame.rtpTimestamp - this.#lastTs + 0x80000000) >>> 0) - 0x80000000;
      this.#lastTs = frame.rtpTimestamp;
    }
    return { ...frame, time: this.#anchorSec + this.#ext / this.clockRate };
  }
}
