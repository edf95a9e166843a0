/**
 * Records a channel's program to one file while it is live: fragmented MP4
 * (H.264, VP9 or AV1 + Opus) or append-only WebM (VP8 + Opus), no re-encoding.
 *
 * - Written as it goes: each fragment (one keyframe interval, ≥ 0.5 s; with
 *   the 1 s keyframe interval whipcast asks OBS for, 1 s) is appended as soon
 *   as the next keyframe closes it. A crash or `kill -9` loses the fragment
 *   being built (plus one held-back frame); the file up to there plays.
 * - A publisher that reconnects continues the same recording: the program's
 *   timestamps jump by the time that passed, which the file keeps as a gap.
 * - A write error (a full disk: ENOSPC; a disk that stops keeping up) stops the recording, emits `error`
 *   once, trims the file back to its last complete fragment and leaves the
 *   caller (the live stream) running; `push()` never throws.
 */
import { EventEmitter } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import type { StreamTargetChunk } from 'mediabunny';
import { mediabunny } from './mediabunny.ts';
import type { Depacketizer } from './depacketizer.ts';
import { createDepacketizer, Timeline, TrackClock } from './timeline.ts';
import {
  containerFor,
  recordableCodec,
  type Container,
  type MediaKind,
  type ProgramCodec,
  type ProgramPacketInfo,
  type ProgramTrackLike,
} from './types.ts';
import { MediaWriter, NothingWrittenError } from './writer.ts';

export interface RecorderOptions {
  /** File to write; created, or truncated if it exists. Use the extension of `Recorder.containerFor()`. */
  path: string;
  /** Codec of the program's video track; omit for audio only. */
  video?: ProgramCodec;
  /** Codec of the program's audio track; omit for video only. */
  audio?: ProgramCodec;
  /** Shortest fragment in seconds; a fragment spans whole keyframe intervals (default 0.5). */
  minFragmentSeconds?: number;
}

export type RecorderState = 'recording' | 'failed' | 'closed';

export interface RecorderStats {
  /** Bytes written to the file. */
  bytes: number;
  /** Media time written, seconds (complete fragments and the one being built). */
  seconds: number;
  /** Fragments appended. */
  fragments: number;
  /** Frames dropped by the depacketizers (loss, waiting for a keyframe) and the writer (time not advancing). */
  droppedFrames: number;
  /** RTP packets lost before the recorder. */
  lostPackets: number;
}

export interface RecorderEvents {
  /** Recording stopped on a write error (e.g. ENOSPC); the file holds what was written before it. Emitted once. */
  error: [Error];
  /** The file's first `bytes` are complete fragments holding the first `seconds` of media (a durable checkpoint). */
  fragment: [{ bytes: number; seconds: number }];
  /** The recorder closed (after `close()` or a failure). */
  close: [];
}

interface TrackReader {
  depacketizer: Depacketizer;
  clock: TrackClock;
}

export class Recorder extends EventEmitter<RecorderEvents> {
  readonly container: Container;
  readonly path: string;
  #state: RecorderState = 'recording';
  readonly #writer: MediaWriter;
  readonly #readers = new Map<MediaKind, TrackReader>();
  readonly #timeline = new Timeline();
  readonly #hasVideo: boolean;
  #file: Promise<FileHandle>;
  #bytes = 0;
  /** The file's first #goodBytes bytes are complete fragments (0 until the first one is written). */
  #goodBytes = 0;
  /** Starts of fragments (byte position, media seconds) not yet known to be behind the written bytes. */
  #marks: { position: number; seconds: number }[] = [];
  #fragments = 0;
  #detach: (() => void)[] = [];
  #closing: Promise<void> | null = null;
  #error: Error | null = null;

  /** The container a program with this video codec is recorded in. */
  static containerFor(video?: ProgramCodec): Container {
    return containerFor(video ? recordableCodec(video.mimeType) : null);
  }

  constructor(opts: RecorderOptions) {
    super();
    const video = opts.video ? recordableCodec(opts.video.mimeType) : null;
    const audio = opts.audio ? recordableCodec(opts.audio.mimeType) : null;
    if (opts.video && (video === null || video === 'opus')) throw new Error(`cannot record video codec ${opts.video.mimeType}`);
    if (opts.audio && audio !== 'opus') throw new Error(`cannot record audio codec ${opts.audio.mimeType}`);
    if (!opts.video && !opts.audio) throw new Error('a recording needs at least one track');
    this.path = opts.path;
    this.container = containerFor(video);
    this.#hasVideo = video !== null;
    this.#file = open(opts.path, 'w');
    this.#file.catch(() => {}); // surfaced through the writer
    const writable = new WritableStream<StreamTargetChunk>({
      write: async (chunk) => {
        const fh = await this.#file;
        let done = 0;
        while (done < chunk.data.byteLength) {
          const { bytesWritten } = await fh.write(chunk.data, done, chunk.data.byteLength - done, chunk.position + done);
          done += bytesWritten;
        }
        this.#bytes = Math.max(this.#bytes, chunk.position + chunk.data.byteLength);
        this.#checkpoint();
      },
    });
    this.#writer = new MediaWriter({
      container: this.container,
      layout: 'live',
      target: new (mediabunny().StreamTarget)(writable),
      ...(video && video !== 'opus' ? { video } : {}),
      ...(opts.audio ? { audio: { channels: opts.audio.channels ?? 2, sampleRate: opts.audio.clockRate } } : {}),
      minFragmentSeconds: opts.minFragmentSeconds ?? 0.5,
      onFragment: (position, seconds) => this.#onFragment(position, seconds),
      onError: (err) => this.#failed(err),
    });
    if (opts.video && video)
      this.#readers.set('video', { depacketizer: createDepacketizer(video), clock: new TrackClock(opts.video.clockRate, this.#timeline) });
    if (opts.audio && audio)
      this.#readers.set('audio', { depacketizer: createDepacketizer(audio), clock: new TrackClock(opts.audio.clockRate, this.#timeline) });
  }

  get state(): RecorderState {
    return this.#state;
  }

  /** The error that stopped the recording, if one did. */
  get error(): Error | null {
    return this.#error;
  }

  get stats(): RecorderStats {
    let dropped = this.#writer.droppedFrames;
    let lost = 0;
    for (const r of this.#readers.values()) {
      dropped += r.depacketizer.stats.droppedFrames;
      lost += r.depacketizer.stats.lostPackets;
    }
    return { bytes: this.#bytes, seconds: this.#writer.endTime, fragments: this.#fragments, droppedFrames: dropped, lostPackets: lost };
  }

  /** Records the packets of a program track until the recorder closes. */
  attach(track: ProgramTrackLike): void {
    if (this.#state !== 'recording') return;
    this.#detach.push(track.onPacket((packet, info) => this.push(packet, info)));
  }

  /** Feeds one program packet (the narrow interface `attach` uses). Never throws. */
  push(packet: Uint8Array, info: ProgramPacketInfo): void {
    if (this.#state !== 'recording') return;
    const reader = this.#readers.get(info.kind);
    if (!reader) return;
    // frames keep views into the packet; the SFU may reuse its buffer
    for (const frame of reader.depacketizer.push(Buffer.from(packet), info.arrivalMs)) {
      if (this.#timeline.zeroMs === null) {
        // start at the first video keyframe so every track begins with something decodable
        if (this.#hasVideo && !(info.kind === 'video' && frame.keyframe)) continue;
        this.#timeline.zeroMs = frame.arrivalMs;
      }
      this.#writer.write(info.kind, reader.clock.place(frame));
    }
  }

  #onFragment(position: number, seconds: number): void {
    this.#fragments++;
    this.#marks.push({ position, seconds });
  }

  /** Fragment starts now fully behind the written bytes are durable checkpoints (writes complete asynchronously). */
  #checkpoint(): void {
    while (this.#marks.length && this.#marks[0]!.position <= this.#bytes) {
      const mark = this.#marks.shift()!;
      if (mark.position <= this.#goodBytes) continue;
      const first = this.#goodBytes === 0;
      this.#goodBytes = mark.position;
      // the first fragment's start only closes the header
      if (!first) this.emit('fragment', { bytes: mark.position, seconds: mark.seconds });
    }
  }

  #failed(err: Error): void {
    if (this.#state !== 'recording') return;
    this.#state = 'failed';
    this.#stop();
    this.#error = err;
    void this.#trimAndClose().finally(() => {
      // an unheard 'error' would throw: the live stream must not die with its recording
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.emit('close');
    });
  }

  /** After a failed write: cut the file back to its last complete fragment, close it. */
  async #trimAndClose(): Promise<void> {
    await this.#writer.cancel();
    try {
      const fh = await this.#file;
      if (this.#goodBytes > 0) await fh.truncate(this.#goodBytes).catch(() => {});
      await fh.close();
    } catch {
      // the file never opened: nothing to trim
    }
  }

  #stop(): void {
    for (const d of this.#detach.splice(0)) d();
  }

  /** Finishes the file (writes held-back frames, the last fragment, the index); idempotent. Resolves once closed. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'failed') return (this.#closing = Promise.resolve());
    this.#state = 'closed';
    this.#stop();
    this.#closing = (async () => {
      let failure: Error | null = null;
      try {
        await this.#writer.finalize();
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
      }
      await (await this.#file.catch(() => null))?.close().catch(() => {});
      if (failure && !(failure instanceof NothingWrittenError)) {
        this.#error = failure;
        if (this.listenerCount('error') > 0) this.emit('error', failure);
      }
      this.emit('close');
    })();
    return this.#closing;
  }
}
