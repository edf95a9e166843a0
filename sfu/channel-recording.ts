/**
 * One live session of a channel, recorded to disk: the channel's program
 * (audio and video, as they reach every viewer) written by a `Recorder` as
 * it arrives, then, when the session ends, the download/VOD file (`moov`
 * first) and the poster beside it. Owned by its `Channel`.
 *
 * Files, named by the recording's id only (docs/recordings.md):
 *
 *   <dir>/<id>.mp4      the live recording (fragmented; H.264, VP9, AV1; `.webm` for VP8)
 *   <dir>/<id>.dl.mp4   the download/VOD file, built when the session ends
 *   <dir>/<id>.jpg      poster: the session's first keyframe
 *
 * A publisher that reconnects (OBS's fresh POST, or a new publisher within
 * `reconnectGraceMs` of the last one leaving while the channel stays open)
 * continues the same recording: the program tracks stay the same and the
 * file keeps the gap at its real length. A write error (a full disk) stops
 * the recording only: `error` is emitted once, the file keeps what was
 * written, the live stream goes on.
 *
 * The SFU knows no database: outsiders persist what the events say.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SfuLogger } from './logger.ts';
import type { ProgramTrack } from './program.ts';
import { exportProgressive, inspectRecording, Recorder, thumbnailFromDvr, type Container, type DvrSource } from './recording/index.ts';
import { recordableCodec } from './recording/types.ts';

/** Where and how a channel's sessions are recorded (`SfuOptions.recordings`). */
export interface RecordingSettings {
  /** Root directory; each channel's recordings go in `<dir>/<channelId>/`. */
  dir: string;
  /** A publisher that comes back this long after the last one left (channel still open) continues the recording (default 10 s). */
  reconnectGraceMs?: number;
  /** Poster width in pixels (default 480). */
  posterWidth?: number;
}

export interface ChannelRecordingOptions extends RecordingSettings {
  channelId: string;
  /** The program tracks to record (audio and/or video). */
  tracks: ProgramTrack[];
  /** The channel's DVR buffer: the poster is cut from its first keyframe. */
  dvr: DvrSource;
  logger: SfuLogger;
}

/** What a finished recording holds (the `finish` event). */
export interface RecordingResult {
  /** When the session ended (the last publisher left, or the channel closed). */
  endedAt: Date;
  /** Media duration, ms (read back from the file). */
  durationMs: number;
  /** Bytes on disk: the live file, the download file and the poster. */
  bytes: number;
  /** The download/VOD file was built. */
  downloadReady: boolean;
  hasPoster: boolean;
  /** Nothing was recorded (the publisher never sent a keyframe): the files are gone. */
  empty: boolean;
}

export type ChannelRecordingState = 'recording' | 'finishing' | 'finished';

export interface ChannelRecordingEvents {
  /** A complete fragment reached the file: its first `bytes` hold `seconds` of media and play as they are. */
  progress: [{ bytes: number; seconds: number }];
  /** Writing failed (e.g. `err.code === 'ENOSPC'`): recording stopped, the live stream goes on. Emitted once. */
  error: [Error];
  /** The session ended and the download file and poster were built (or could not be). */
  finish: [RecordingResult];
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Download files are built one at a time in this process. When many sessions end at once (a
 * server shutting down with ten channels live), building them side by side finishes none until
 * all are nearly done, and a shutdown cut short leaves every one to the next start's recovery;
 * one at a time, the first ones are done early and only the rest are left. (Each is CPU-bound:
 * about 3 s of CPU for 10 minutes of 720p at 2.5 Mbit/s on the reference VM.)
 */
let exports: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(job: () => Promise<T>): Promise<T> {
  const run = exports.then(job, job);
  exports = run.catch(() => {});
  return run;
}

export class ChannelRecording extends EventEmitter<ChannelRecordingEvents> {
  /** The recording's id (a UUID); its files are named by it. */
  readonly id = randomUUID();
  readonly channelId: string;
  readonly container: Container;
  /** When recording started. */
  readonly startedAt = new Date();
  /** The live file. */
  readonly path: string;
  /** The download/VOD file, once `downloadReady`. */
  readonly downloadPath: string;
  readonly posterPath: string;
  readonly #recorder: Recorder;
  readonly #tracks: ProgramTrack[];
  readonly #dvr: DvrSource;
  readonly #log: SfuLogger;
  readonly #graceMs: number;
  readonly #posterWidth: number;
  #state: ChannelRecordingState = 'recording';
  #playable = { bytes: 0, seconds: 0 };
  #endedAt: Date | null = null;
  #grace: NodeJS.Timeout | null = null;
  #poster: Promise<boolean> | null = null;
  #posterReady = false;
  #finished: Promise<RecordingResult> | null = null;

  /** Starts recording `tracks`; throws when they cannot be recorded (a codec other than H.264, VP8, VP9, AV1, Opus). */
  constructor(opts: ChannelRecordingOptions) {
    super();
    this.channelId = opts.channelId;
    this.#tracks = [...opts.tracks];
    this.#dvr = opts.dvr;
    this.#graceMs = opts.reconnectGraceMs ?? DEFAULT_GRACE_MS;
    this.#posterWidth = opts.posterWidth ?? 480;
    const video = this.#tracks.find((t) => t.kind === 'video')?.codec;
    const audio = this.#tracks.find((t) => t.kind === 'audio')?.codec;
    this.#log = opts.logger.child({ channelId: opts.channelId, recordingId: this.id });
    this.container = Recorder.containerFor(video);
    const dir = join(opts.dir, opts.channelId);
    this.path = join(dir, `${this.id}.${this.container}`);
    this.downloadPath = join(dir, `${this.id}.dl.${this.container}`);
    this.posterPath = join(dir, `${this.id}.jpg`);
    mkdirSync(dir, { recursive: true });
    this.#recorder = new Recorder({ path: this.path, ...(video ? { video } : {}), ...(audio ? { audio } : {}) });
    for (const t of this.#tracks) this.#recorder.attach(t);
    this.#recorder.on('fragment', (f) => {
      this.#playable = f;
      this.emit('progress', f);
      this.#poster ??= this.#makePoster();
    });
    this.#recorder.once('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      this.#log.error(
        { err, code, path: this.path, seconds: this.#playable.seconds },
        code === 'ENOSPC'
          ? 'recording stopped: the disk is full; the file keeps what was written, the live stream continues'
          : 'recording stopped: write failed; the file keeps what was written, the live stream continues',
      );
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    this.#log.info({ container: this.container }, 'recording started');
  }

  get state(): ChannelRecordingState {
    return this.#state;
  }

  /** Still writing (not finished and no write error). */
  get writing(): boolean {
    return this.#state === 'recording' && this.#recorder.state === 'recording';
  }

  /** The live file's first `bytes` are complete fragments holding `seconds` of media: what plays while it grows. */
  get playable(): { bytes: number; seconds: number } {
    return this.#playable;
  }

  /** The poster file is written. */
  get posterReady(): boolean {
    return this.#posterReady;
  }

  /** The write error that stopped it, if one did. */
  get error(): Error | null {
    return this.#recorder.error;
  }

  /** Bytes written so far to the live file. */
  get bytesWritten(): number {
    return this.#recorder.stats.bytes;
  }

  /** True when it records exactly these program tracks (a new publisher feeds the same ones: the recording continues). */
  follows(tracks: ProgramTrack[]): boolean {
    return tracks.length === this.#tracks.length && tracks.every((t) => this.#tracks.includes(t));
  }

  /** @internal The publisher left: the session ends unless another one comes within the grace period. */
  publisherGone(): void {
    if (this.#state !== 'recording' || this.#grace) return;
    this.#endedAt = new Date();
    this.#grace = setTimeout(() => void this.finish(), this.#graceMs);
    this.#grace.unref();
  }

  /** @internal A publisher (re)connected to the same program tracks: the recording goes on. */
  publisherBack(): void {
    if (this.#grace) clearTimeout(this.#grace);
    this.#grace = null;
    this.#endedAt = null;
  }

  /**
   * Ends the recording now: closes the live file, builds the download file and
   * the poster, emits `finish`. Idempotent; resolves with the result.
   */
  finish(): Promise<RecordingResult> {
    if (this.#finished) return this.#finished;
    if (this.#grace) clearTimeout(this.#grace);
    this.#grace = null;
    const endedAt = this.#endedAt ?? new Date();
    this.#state = 'finishing';
    this.#finished = (async () => {
      await this.#recorder.close();
      const hasPoster = (await this.#poster) ?? false;
      const result = await this.#finalize(endedAt, hasPoster);
      this.#state = 'finished';
      this.#log.info({ durationMs: result.durationMs, bytes: result.bytes, downloadReady: result.downloadReady }, 'recording finished');
      this.emit('finish', result);
      return result;
    })();
    return this.#finished;
  }

  async #finalize(endedAt: Date, hasPoster: boolean): Promise<RecordingResult> {
    const liveBytes = await fileSize(this.path);
    let durationMs = 0;
    let downloadReady = false;
    if (liveBytes > 0) {
      try {
        durationMs = (await oneAtATime(() => exportProgressive(this.path, this.downloadPath))).seconds * 1000;
        downloadReady = true;
      } catch (err) {
        this.#log.error({ err }, 'could not build the download file of a recording');
        durationMs = await inspectRecording(this.path).then(
          (i) => i.seconds * 1000,
          () => this.#playable.seconds * 1000,
        );
      }
    }
    if (durationMs <= 0) {
      await Promise.all([this.path, this.downloadPath, this.posterPath].map((p) => rm(p, { force: true })));
      return { endedAt, durationMs: 0, bytes: 0, downloadReady: false, hasPoster: false, empty: true };
    }
    const bytes = liveBytes + (downloadReady ? await fileSize(this.downloadPath) : 0) + (hasPoster ? await fileSize(this.posterPath) : 0);
    return { endedAt, durationMs: Math.round(durationMs), bytes, downloadReady, hasPoster, empty: false };
  }

  /** The poster: the DVR buffer's newest keyframe once the first fragment is on disk. Never throws. */
  async #makePoster(): Promise<boolean> {
    const video = this.#tracks.find((t) => t.kind === 'video');
    if (!video || recordableCodec(video.codec.mimeType) === null) return false;
    const thumb = await thumbnailFromDvr(this.#dvr, video.codec, { width: this.#posterWidth, format: 'jpeg' });
    if (!thumb.ok) {
      this.#log.warn({ error: thumb.error }, 'no poster for the recording');
      return false;
    }
    return writeFile(this.posterPath, thumb.image).then(
      () => (this.#posterReady = true),
      (err: unknown) => (this.#log.warn({ err }, 'could not write the poster of a recording'), false),
    );
  }
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}
