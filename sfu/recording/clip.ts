/**
 * A clip: the last N seconds of a channel (or N seconds ending some way
 * behind live, for a viewer watching in the DVR window) cut from the DVR
 * buffer's packets at a keyframe, without re-encoding, as one small file with
 * its index first (MP4 `moov` before `mdat` for H.264, VP9 and AV1; WebM for VP8).
 *
 * The cut starts at the last keyframe at or before the requested start, so a
 * clip never misses a moment that was asked for; it can begin up to one
 * keyframe interval early (1 s with whipcast's recommended OBS settings).
 */
import { mediabunny } from './mediabunny.ts';
import type { Depacketizer } from './depacketizer.ts';
import { createDepacketizer, Timeline, TrackClock } from './timeline.ts';
import {
  containerFor,
  frameStartIndex,
  recordableCodec,
  type Container,
  type DvrSource,
  type MediaKind,
  type ProgramCodec,
} from './types.ts';
import { MediaWriter } from './writer.ts';

export const MIN_CLIP_SECONDS = 5;
export const MAX_CLIP_SECONDS = 60;

export interface ClipOptions {
  /** Length asked for, seconds (5–60). */
  durationS: number;
  /** How far behind the newest buffered packet the clip ends, ms (default 0: the live edge). */
  endOffsetMs?: number;
  /** Codec of the program's video track. */
  video: ProgramCodec;
  /** Codec of the program's audio track, if it has one. */
  audio?: ProgramCodec;
}

export interface Clip {
  /** The file. */
  data: Buffer;
  container: Container;
  /** MIME type to serve it with. */
  mimeType: 'video/mp4' | 'video/webm';
  /** Media duration, seconds. */
  seconds: number;
  /** Arrival time (ms since the epoch) of the clip's first frame: the keyframe it starts at. */
  startMs: number;
  /** Arrival time of the end asked for. */
  endMs: number;
}

/** Why a clip could not be made (the caller maps it to a 4xx; the stream is unaffected). */
export class ClipError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid' | 'empty' | 'unsupported',
  ) {
    super(message);
    this.name = 'ClipError';
  }
}

/** Cuts a clip from the DVR buffer. Rejects with a `ClipError` when it cannot. */
export async function makeClip(dvr: DvrSource, opts: ClipOptions): Promise<Clip> {
  if (!(opts.durationS >= MIN_CLIP_SECONDS && opts.durationS <= MAX_CLIP_SECONDS)) {
    throw new ClipError(`clip length must be ${MIN_CLIP_SECONDS}–${MAX_CLIP_SECONDS} s`, 'invalid');
  }
  const endOffsetMs = opts.endOffsetMs ?? 0;
  if (!(endOffsetMs >= 0)) throw new ClipError('endOffsetMs must be ≥ 0', 'invalid');
  const video = recordableCodec(opts.video.mimeType);
  if (video === null || video === 'opus') throw new ClipError(`cannot clip video codec ${opts.video.mimeType}`, 'unsupported');
  const audio = opts.audio ? recordableCodec(opts.audio.mimeType) : null;
  if (opts.audio && audio !== 'opus') throw new ClipError(`cannot clip audio codec ${opts.audio.mimeType}`, 'unsupported');

  const range = dvr.range();
  if (!range) throw new ClipError('nothing is buffered', 'empty');
  const endMs = range.end - endOffsetMs;
  const kf = dvr.keyframeAtOrBefore(endMs - opts.durationS * 1000);
  const first = kf === null ? null : frameStartIndex(dvr, kf);
  const firstPacket = first === null ? undefined : dvr.at(first);
  if (first === null || !firstPacket || firstPacket.at > endMs) throw new ClipError('no keyframe in the requested window', 'empty');

  const container = containerFor(video);
  const target = new (mediabunny().BufferTarget)();
  const writer = new MediaWriter({
    container,
    layout: 'file',
    target,
    video,
    maxBacklog: Infinity, // all frames are handed over at once; a clip is at most 60 s, in memory by design
    ...(opts.audio && audio ? { audio: { channels: opts.audio.channels ?? 2, sampleRate: opts.audio.clockRate } } : {}),
  });
  const timeline = new Timeline();
  timeline.zeroMs = firstPacket.at;
  const readers = new Map<MediaKind, { depacketizer: Depacketizer; clock: TrackClock }>();
  readers.set('video', { depacketizer: createDepacketizer(video), clock: new TrackClock(opts.video.clockRate, timeline) });
  if (opts.audio && audio)
    readers.set('audio', { depacketizer: createDepacketizer(audio), clock: new TrackClock(opts.audio.clockRate, timeline) });

  const stop = Math.min(dvr.end, dvr.indexAtOrAfter(endMs + 1));
  for (let i = first; i < stop; i++) {
    const p = dvr.at(i);
    if (!p || p.rank) continue; // evicted while we read (the window moved on), or a lower simulcast layer
    const reader = readers.get(p.kind);
    if (!reader) continue;
    for (const frame of reader.depacketizer.push(p.data, p.at)) writer.write(p.kind, reader.clock.place(frame));
  }
  try {
    await writer.finalize();
  } catch (err) {
    throw new ClipError(`clip could not be written: ${(err as Error).message}`, 'empty');
  }
  return {
    data: Buffer.from(target.buffer!),
    container,
    mimeType: container === 'mp4' ? 'video/mp4' : 'video/webm',
    seconds: writer.endTime,
    startMs: firstPacket.at,
    endMs,
  };
}
