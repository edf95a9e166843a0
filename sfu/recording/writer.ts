/**
 * Timed coded frames → a container file through mediabunny, without
 * re-encoding. Two layouts:
 *
 * - `live`: fragmented MP4 (a `moof`+`mdat` pair per fragment, each starting
 *   at a video keyframe) or append-only WebM (a cluster per keyframe
 *   interval). Bytes only ever append, each fragment is flushed as soon as the
 *   next keyframe closes it, and a file cut anywhere plays up to its last
 *   complete fragment.
 * - `file`: a regular file with its index first (MP4 `moov` before `mdat`,
 *   WebM with cues), built in memory — for clips, which are small.
 *
 * A frame's duration is only known when the next one arrives, so each track
 * holds back one frame.
 */
import type { EncodedAudioPacketSource, EncodedVideoPacketSource, Output, OutputFormat, Target } from 'mediabunny';
import { mediabunny } from './mediabunny.ts';
import { opusPacketSamples } from './opus.ts';
import type { TimedFrame } from './timeline.ts';
import type { Container, MediaKind, VideoCodecName, VideoConfig } from './types.ts';

/** mediabunny's name of each video codec. */
const MEDIABUNNY_CODEC = { h264: 'avc', vp8: 'vp8', vp9: 'vp9', av1: 'av1' } as const;

export interface MediaWriterOptions {
  /** Container to write (see `containerFor`). */
  container: Container;
  /** `live`: fragmented/append-only, playable while written; `file`: index first, written at `finalize()`. */
  layout: 'live' | 'file';
  /** Where the bytes go. */
  target: Target;
  /** Codec of the video track; none = no video track. */
  video?: VideoCodecName;
  /** Opus audio track; none = no audio track. */
  audio?: { channels: number; sampleRate: number };
  /** Live layout: shortest fragment (or WebM cluster) in seconds; fragments start at keyframes (default 0.5). */
  minFragmentSeconds?: number;
  /**
   * Live layout: called as each fragment (MP4) or cluster (WebM) starts being written, with its byte position and
   * start time: everything before `position` is complete fragments holding the media before `startSeconds`.
   */
  onFragment?: (position: number, startSeconds: number) => void;
  /** Called once, with the first write error; nothing more is written after it. */
  onError?: (err: Error) => void;
  /** Frames that may wait for a slow target before the writer gives up with an error (default 2000, ≈ 25 s of 30 fps video + Opus). */
  maxBacklog?: number;
  /** How long `finalize()` may wait for the target before giving up with an error (default 30 s). */
  finalizeTimeoutMs?: number;
}

interface TrackState {
  kind: MediaKind;
  source: EncodedVideoPacketSource | EncodedAudioPacketSource;
  pending: TimedFrame | null;
  started: boolean;
  lastDuration: number;
}

/** `finalize()` found no frame to write (e.g. the stream never sent a keyframe). */
export class NothingWrittenError extends Error {
  constructor() {
    super('nothing was written: no decodable frame arrived');
    this.name = 'NothingWrittenError';
  }
}

export class MediaWriter {
  readonly #output: Output;
  readonly #tracks = new Map<MediaKind, TrackState>();
  #chain: Promise<void> = Promise.resolve();
  #error: Error | null = null;
  #started: Promise<void>;
  #finished: Promise<void> | null = null;
  readonly #audio: MediaWriterOptions['audio'];
  readonly #onError: MediaWriterOptions['onError'];
  readonly #maxBacklog: number;
  readonly #finalizeMs: number;
  /** Frames dropped because their time did not advance. */
  droppedFrames = 0;
  /** Frames handed to the muxer and not yet written. */
  #queued = 0;
  /** End time (s) of the newest frame handed to the muxer. */
  endTime = 0;

  constructor(opts: MediaWriterOptions) {
    if (!opts.video && !opts.audio) throw new Error('MediaWriter needs at least one track');
    const { EncodedAudioPacketSource, EncodedVideoPacketSource, Mp4OutputFormat, Output, WebMOutputFormat } = mediabunny();
    this.#audio = opts.audio;
    const live = opts.layout === 'live';
    const min = opts.minFragmentSeconds ?? 0.5;
    let format: OutputFormat;
    if (opts.container === 'mp4') {
      format = new Mp4OutputFormat({
        fastStart: live ? 'fragmented' : 'in-memory',
        minimumFragmentDuration: min,
        ...(opts.onFragment ? { onMoof: (_d: Uint8Array, p: number, t: number) => opts.onFragment!(p, t) } : {}),
      });
    } else {
      format = new WebMOutputFormat({
        appendOnly: live,
        minimumClusterDuration: min,
        ...(opts.onFragment ? { onCluster: (_d: Uint8Array, p: number, t: number) => opts.onFragment!(p, t) } : {}),
      });
    }
    this.#onError = opts.onError;
    this.#maxBacklog = opts.maxBacklog ?? 2000;
    this.#finalizeMs = opts.finalizeTimeoutMs ?? 30_000;
    this.#output = new Output({ format, target: opts.target });
    if (opts.video) {
      const source = new EncodedVideoPacketSource(MEDIABUNNY_CODEC[opts.video]);
      this.#output.addVideoTrack(source);
      this.#tracks.set('video', { kind: 'video', source, pending: null, started: false, lastDuration: 1 / 30 });
    }
    if (opts.audio) {
      const source = new EncodedAudioPacketSource('opus');
      this.#output.addAudioTrack(source);
      this.#tracks.set('audio', { kind: 'audio', source, pending: null, started: false, lastDuration: 0.02 });
    }
    this.#started = this.#output.start();
    this.#chain = this.#started.catch((err: unknown) => this.#fail(err));
  }

  /** The first write error, once there is one (nothing more is written after it). */
  get error(): Error | null {
    return this.#error;
  }

  /** Frames waiting for the muxer (a slow disk shows here). */
  get backlog(): number {
    return this.#queued;
  }

  /** Adds a frame (in order per track; the first video frame must be a keyframe carrying its config). */
  write(kind: MediaKind, frame: TimedFrame): void {
    const track = this.#tracks.get(kind);
    if (!track || this.#error || this.#finished) return;
    const prev = track.pending;
    if (prev && frame.time <= prev.time) {
      this.droppedFrames++;
      return;
    }
    if (!prev && !track.started && kind === 'video' && !(frame.keyframe && frame.config)) {
      this.droppedFrames++;
      return;
    }
    track.pending = frame;
    if (prev) {
      const gap = frame.time - prev.time;
      const duration = kind === 'audio' ? this.#audioDuration(prev, gap) : gap;
      track.lastDuration = duration;
      this.#add(track, prev, duration);
    }
  }

  #audioDuration(frame: TimedFrame, gap: number): number {
    const samples = opusPacketSamples(frame.data);
    return samples > 0 ? Math.min(gap, samples / 48000) : gap;
  }

  #add(track: TrackState, frame: TimedFrame, duration: number): void {
    if (this.#error) return;
    const packet = new (mediabunny().EncodedPacket)(frame.data, frame.keyframe ? 'key' : 'delta', frame.time, duration);
    const meta = track.started ? undefined : this.#meta(track.kind, frame.config);
    track.started = true;
    this.endTime = Math.max(this.endTime, frame.time + duration);
    if (this.#queued >= this.#maxBacklog) {
      // a stalled disk must not make the recording hold the whole stream in memory
      this.#fail(new Error(`the target does not keep up: ${this.#queued} frames waiting`));
      return;
    }
    this.#queued++;
    this.#chain = this.#chain.then(async () => {
      this.#queued--;
      if (this.#error) return;
      try {
        if (track.source instanceof mediabunny().EncodedVideoPacketSource)
          await track.source.add(packet, meta as EncodedVideoChunkMetadata | undefined);
        else await track.source.add(packet, meta as EncodedAudioChunkMetadata | undefined);
      } catch (err) {
        this.#fail(err);
      }
    });
  }

  #meta(kind: MediaKind, config: VideoConfig | undefined): EncodedVideoChunkMetadata | EncodedAudioChunkMetadata {
    if (kind === 'video') {
      const c = config!;
      return {
        decoderConfig: {
          codec: c.codecString,
          codedWidth: c.width,
          codedHeight: c.height,
          ...(c.description ? { description: c.description } : {}),
        },
      };
    }
    return { decoderConfig: { codec: 'opus', numberOfChannels: this.#audio!.channels, sampleRate: this.#audio!.sampleRate } };
  }

  #fail(err: unknown): void {
    if (this.#error) return;
    this.#error = err instanceof Error ? err : new Error(String(err));
    this.#onError?.(this.#error);
  }

  /** Resolves when everything handed over so far reached the target (or failed). */
  async drain(): Promise<void> {
    await this.#chain;
  }

  /** Writes the held-back frames and completes the file; idempotent. Rejects with the write error, if any. */
  finalize(): Promise<void> {
    this.#finished ??= (async () => {
      for (const track of this.#tracks.values()) {
        const last = track.pending;
        track.pending = null;
        if (!last) continue;
        const duration = track.kind === 'audio' ? this.#audioDuration(last, Infinity) : track.lastDuration;
        this.#add(track, last, duration);
      }
      if (!this.#error) {
        const done = this.#chain.then(async () => {
          if (!this.#error && [...this.#tracks.values()].every((t) => !t.started)) throw new NothingWrittenError();
          if (!this.#error) await this.#output.finalize().catch((err: unknown) => this.#fail(err));
        });
        const stalled = await bounded(done, this.#finalizeMs);
        if (stalled) this.#fail(new Error(`the target stalled: not finished after ${this.#finalizeMs} ms`));
      }
      if (this.#error) {
        await this.#cancelOutput();
        throw this.#error;
      }
    })();
    return this.#finished;
  }

  /** Stops without completing the file (what is written stays); a stalled target gets at most 2 s. */
  async cancel(): Promise<void> {
    this.#finished ??= Promise.resolve();
    await this.#cancelOutput();
  }

  async #cancelOutput(): Promise<void> {
    await bounded(
      this.#chain.then(() => this.#output.cancel()).catch(() => {}),
      2000,
    );
  }
}

/** Waits for `p` at most `ms`; true when it timed out. Rejections of `p` propagate. */
async function bounded(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<true>((r) => (timer = setTimeout(() => r(true), ms)));
  try {
    return await Promise.race([p.then(() => false as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
