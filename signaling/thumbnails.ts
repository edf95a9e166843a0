/**
 * Live thumbnails: every live channel's newest keyframe decoded to a JPEG
 * about every `intervalMs`, off the request path. One ffmpeg runs at a time
 * per node (thumbnails of many channels queue behind each other, each killed
 * after `timeoutMs`). The newest picture of a live channel is kept in memory
 * and written to `dir/<channelId>.jpg`, which stays after the stream ends as
 * its last picture (and survives a restart).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { thumbnailFromDvr } from '@whipcast/sfu';
import type { Logger } from 'pino';
import type { ProgramSource } from './media.ts';
import { PeriodicJob } from './periodic.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ThumbnailerOptions {
  /** Where each channel's last picture is kept as `<channelId>.jpg`. */
  dir: string;
  /** How often a live channel's picture is made again, ms. */
  intervalMs: number;
  /** How often live channels are checked for a picture that is due, ms (default: the interval, at most 2000). */
  tickMs?: number;
  /** Picture width in pixels (default 480). */
  width?: number;
  /** ffmpeg is killed after this long, ms (default 5000). */
  timeoutMs?: number;
  /** The ffmpeg executable (default `ffmpeg` on PATH). */
  ffmpegPath?: string;
  logger?: Logger;
}

/** A channel's picture. */
export interface Thumbnail {
  image: Buffer;
  mimeType: 'image/jpeg';
  /** Strong validator of the image bytes. */
  etag: string;
  /** When it was made (ms since the epoch). */
  madeAt: number;
}

export interface ThumbnailerEvents {
  /** A picture was made for a live channel in `ms` milliseconds. */
  made: [channelId: string, ms: number];
  /** A picture could not be made (the channel keeps its previous one, if any). */
  failed: [channelId: string, error: string];
}

interface LiveState {
  lastAttempt: number;
  picture?: Thumbnail;
}

export class Thumbnailer extends EventEmitter<ThumbnailerEvents> {
  readonly #sources: () => ProgramSource[];
  readonly #opts: ThumbnailerOptions;
  readonly #live = new Map<string, LiveState>();
  readonly #job: PeriodicJob;
  #dirReady: Promise<unknown> | undefined;
  #closed = false;

  /** `sources` lists the channels live on this node, read at every tick. */
  constructor(sources: () => ProgramSource[], opts: ThumbnailerOptions) {
    super();
    this.#sources = sources;
    this.#opts = opts;
    this.#job = new PeriodicJob({
      name: 'thumbnails',
      intervalMs: opts.tickMs ?? Math.min(opts.intervalMs, 2000),
      logger: opts.logger,
      run: () => this.#tick(),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The channel's newest picture: made while it is live here, else its last picture on disk; null
   * when there is none (or the id cannot be a channel).
   */
  async get(channelId: string): Promise<Thumbnail | null> {
    if (!UUID.test(channelId)) return null;
    const live = this.#live.get(channelId)?.picture;
    if (live) return live;
    try {
      const image = await readFile(this.#file(channelId));
      return { image, mimeType: 'image/jpeg', etag: etagOf(image), madeAt: 0 };
    } catch {
      return null;
    }
  }

  /** Makes the pictures that are due now, one after another (joins a tick under way). */
  tick(): Promise<void> {
    return this.#job.run();
  }

  /** Stops making pictures and waits for the one under way. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#job.close();
  }

  async #tick(): Promise<void> {
    const sources = this.#sources();
    const ids = new Set(sources.map((s) => s.channelId));
    // channels no longer live here: their last picture stays on disk
    for (const id of this.#live.keys()) if (!ids.has(id)) this.#live.delete(id);
    const now = Date.now();
    const tickMs = this.#opts.tickMs ?? Math.min(this.#opts.intervalMs, 2000);
    // Pictures are spread over the interval: at most this many per tick, the longest-waiting first. Channels
    // that went live together would otherwise come due together, and their ffmpeg runs, one after another,
    // take the node's CPU for seconds at every interval.
    let budget = Math.max(1, Math.ceil((sources.length * tickMs) / this.#opts.intervalMs));
    const due: { source: ProgramSource; state: LiveState }[] = [];
    for (const source of sources) {
      let state = this.#live.get(source.channelId);
      if (!state) this.#live.set(source.channelId, (state = { lastAttempt: -Infinity }));
      if (source.dvr.lastKeyframe() === null) continue; // nothing to decode yet: look again next tick
      if (state.picture && now - state.lastAttempt < this.#opts.intervalMs) continue;
      // without a picture yet, try again sooner than the interval (a bad first keyframe is not left for 30 s)
      if (!state.picture && now - state.lastAttempt < Math.min(this.#opts.intervalMs, 5000)) continue;
      due.push({ source, state });
    }
    due.sort((a, b) => a.state.lastAttempt - b.state.lastAttempt);
    for (const { source, state } of due) {
      if (this.#closed || budget-- <= 0) return;
      state.lastAttempt = Date.now();
      await this.#make(source, state);
    }
  }

  async #make(source: ProgramSource, state: LiveState): Promise<void> {
    const t0 = performance.now();
    const result = await thumbnailFromDvr(source.dvr, source.video, {
      width: this.#opts.width ?? 480,
      format: 'jpeg',
      timeoutMs: this.#opts.timeoutMs ?? 5000,
      ...(this.#opts.ffmpegPath ? { ffmpegPath: this.#opts.ffmpegPath } : {}),
    });
    if (!result.ok) {
      this.#opts.logger?.warn({ channelId: source.channelId, error: result.error }, 'thumbnail failed');
      this.emit('failed', source.channelId, result.error);
      return;
    }
    const picture: Thumbnail = { image: result.image, mimeType: 'image/jpeg', etag: etagOf(result.image), madeAt: Date.now() };
    if (this.#live.get(source.channelId) === state) state.picture = picture;
    this.emit('made', source.channelId, performance.now() - t0);
    try {
      this.#dirReady ??= mkdir(this.#opts.dir, { recursive: true });
      await this.#dirReady;
      const file = this.#file(source.channelId);
      await writeFile(`${file}.tmp`, result.image);
      await rename(`${file}.tmp`, file);
    } catch (err) {
      this.#dirReady = undefined;
      this.#opts.logger?.warn({ err, channelId: source.channelId }, 'could not keep the thumbnail on disk');
    }
  }

  #file(channelId: string): string {
    return join(this.#opts.dir, `${channelId.toLowerCase()}.jpg`);
  }
}

function etagOf(image: Buffer): string {
  return `"${createHash('sha1').update(image).digest('base64url').slice(0, 16)}"`;
}
