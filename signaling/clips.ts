/**
 * Clips (issue #14 item 3): a signed-in viewer cuts the last N seconds of a
 * channel live on this node — or N seconds ending where they are watching in
 * the DVR window — from the DVR buffer, without re-encoding (`makeClip`). The
 * file goes to `RECORDINGS_DIR/clips/<clipId>.mp4` (`.webm` for VP8) with a
 * JPEG of its first keyframe beside it, then the row; the API hands out URLs
 * only. Rate-limited per user over all nodes (the rows are the count).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clip, Database, Stream, User } from '@whipcast/db';
import { ClipError, makeClip, thumbnailFromDvr } from '@whipcast/sfu';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';
import type { ApiClip } from './api.ts';
import type { ProgramSources } from './media.ts';
import type { Metrics } from './metrics.ts';

/** Why a clip was not made; the HTTP route maps each to its status. */
export type ClipFailure = 'invalid' | 'not_live' | 'empty' | 'unsupported' | 'rate_limited' | 'busy';

export class ClipRefused extends Error {
  constructor(
    readonly reason: ClipFailure,
    message: string,
    /** Seconds until trying again makes sense (rate limit, busy). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ClipRefused';
  }
}

export interface ClipsOptions {
  db: Pick<Database, 'clips'>;
  /** Root of the recordings tree (`RECORDINGS_DIR`); clips go to its `clips/` folder. */
  dir: string;
  /** The DVR buffers of the channels live on this node. */
  programs: () => ProgramSources | undefined;
  /** Clips per user per hour (0: clipping is off). */
  perUserPerHour: number;
  /** Clips cut at once on this node (each holds up to 60 s of media in memory); beyond: busy. Default 2. */
  concurrency?: number;
  logger: Logger;
  metrics?: Metrics;
}

/** A clip's files on disk (never sent to clients). */
export interface ClipFiles {
  media: string;
  poster: string;
  contentType: 'video/mp4' | 'video/webm';
}

export class Clips {
  readonly dir: string;
  readonly #opts: ClipsOptions;
  /** Clips being cut now, per user (counted with the rows, so parallel requests cannot pass the limit). */
  readonly #pending = new Map<string, number>();
  /** Clips cut on this node in the last hour, per user: deleting a clip does not give its turn back. */
  readonly #recent = new Map<string, number[]>();
  #running = 0;
  #dirReady: Promise<unknown> | undefined;
  readonly #total?: Counter<'outcome'>;
  readonly #seconds?: Histogram;

  constructor(opts: ClipsOptions) {
    this.#opts = opts;
    this.dir = join(opts.dir, 'clips');
    if (opts.metrics) {
      this.#total = opts.metrics.counter('whipcast_clips_total', 'Clip requests by outcome', ['outcome']);
      this.#seconds = opts.metrics.histogram(
        'whipcast_clip_seconds',
        'Time to cut a clip (file, poster and row)',
        [0.1, 0.25, 0.5, 1, 2, 5],
      );
    }
  }

  files(c: Pick<Clip, 'id' | 'container'>): ClipFiles {
    return {
      media: join(this.dir, `${c.id}.${c.container}`),
      poster: join(this.dir, `${c.id}.jpg`),
      contentType: c.container === 'webm' ? 'video/webm' : 'video/mp4',
    };
  }

  /** Cuts a clip of `stream` for `user`; throws `ClipRefused` when it cannot. */
  async create(stream: Stream, user: User, req: { durationS: number; endOffsetMs: number }): Promise<Clip> {
    try {
      const clip = await this.#create(stream, user, req);
      this.#total?.inc({ outcome: 'ok' });
      return clip;
    } catch (err) {
      this.#total?.inc({ outcome: err instanceof ClipRefused ? err.reason : 'failed' });
      throw err;
    }
  }

  async #create(stream: Stream, user: User, req: { durationS: number; endOffsetMs: number }): Promise<Clip> {
    const started = performance.now();
    const limit = this.#opts.perUserPerHour;
    if (limit === 0) throw new ClipRefused('rate_limited', 'Clipping is turned off on this server');
    const source = stream.status === 'live' ? this.#opts.programs()?.get(stream.id) : null;
    if (!source) {
      throw new ClipRefused(
        'not_live',
        stream.status === 'live' ? 'This channel is not live on this server node; clip it where it is watched' : 'The channel is not live',
      );
    }
    const concurrency = this.#opts.concurrency ?? 2;
    if (this.#running >= concurrency) throw new ClipRefused('busy', 'Other clips are being cut right now; try again in a moment', 1);
    const pending = this.#pending.get(user.id) ?? 0;
    this.#pending.set(user.id, pending + 1);
    this.#running++;
    try {
      const since = new Date(Date.now() - 3600_000);
      const recent = (this.#recent.get(user.id) ?? []).filter((t) => t >= since.getTime());
      const stored = await this.#opts.db.clips.countByCreatorSince(user.id, since);
      const used = Math.max(stored, recent.length) + pending;
      if (used >= limit) {
        throw new ClipRefused('rate_limited', `You can cut ${limit} clips per hour; try again later`, 15 * 60);
      }
      let media;
      try {
        media = await makeClip(source.dvr, {
          durationS: req.durationS,
          endOffsetMs: req.endOffsetMs,
          video: source.video,
          ...(source.audio ? { audio: source.audio } : {}),
        });
      } catch (err) {
        if (err instanceof ClipError) {
          const message =
            err.reason === 'empty'
              ? `Nothing is buffered for that moment (${err.message}); the DVR window may not reach back that far`
              : err.message;
          throw new ClipRefused(err.reason, message);
        }
        throw err;
      }
      const id = randomUUID();
      const files = this.files({ id, container: media.container });
      this.#dirReady ??= mkdir(this.dir, { recursive: true });
      await this.#dirReady;
      const [, poster] = await Promise.all([
        writeFile(files.media, media.data),
        thumbnailFromDvr(source.dvr, source.video, { atMs: media.startMs, width: 480, format: 'jpeg', timeoutMs: 3000 }),
      ]);
      let posterBytes = 0;
      if (poster.ok) {
        await writeFile(files.poster, poster.image);
        posterBytes = poster.image.length;
      } else {
        this.#opts.logger.warn({ channelId: stream.id, error: poster.error }, 'clip poster could not be made');
      }
      try {
        const row = await this.#opts.db.clips.create({
          id,
          streamId: stream.id,
          creatorId: user.id,
          container: media.container,
          durationMs: media.seconds * 1000,
          bytes: media.data.length + posterBytes,
          hasPoster: poster.ok,
        });
        this.#remember(user.id, since.getTime());
        const ms = performance.now() - started;
        this.#seconds?.observe(ms / 1000);
        this.#opts.logger.info(
          { clipId: id, channelId: stream.id, userId: user.id, seconds: media.seconds, bytes: media.data.length, ms: Math.round(ms) },
          'clip cut',
        );
        return row;
      } catch (err) {
        await removeFiles(this.dir, id);
        throw err;
      }
    } finally {
      this.#running--;
      const n = (this.#pending.get(user.id) ?? 1) - 1;
      if (n > 0) this.#pending.set(user.id, n);
      else this.#pending.delete(user.id);
    }
  }

  #remember(userId: string, since: number): void {
    const kept = (this.#recent.get(userId) ?? []).filter((t) => t >= since);
    kept.push(Date.now());
    this.#recent.set(userId, kept);
    if (this.#recent.size > 10_000) {
      for (const [id, times] of this.#recent) if (times.every((t) => t < since)) this.#recent.delete(id);
    }
  }

  /** The API view of a clip. */
  toApi(c: Clip): ApiClip {
    const base = `/api/clips/${c.id}`;
    return {
      id: c.id,
      streamId: c.streamId,
      durationMs: c.durationMs,
      createdAt: c.createdAt.toISOString(),
      creator: c.creatorId && c.creatorUsername ? { id: c.creatorId, username: c.creatorUsername } : null,
      downloadUrl: `${base}/download`,
      posterUrl: c.hasPoster ? `${base}/poster` : null,
    };
  }

  /** Size of a clip file on this node, null when it is not here (cut on another node without shared storage, or gone). */
  async size(path: string): Promise<number | null> {
    return stat(path).then(
      (s) => s.size,
      () => null,
    );
  }

  /** Deletes a clip: row first, then its files (a crash in between leaves an orphan file, never a listed clip without one). */
  async delete(c: Clip): Promise<void> {
    await this.#opts.db.clips.delete(c.id);
    await removeFiles(this.dir, c.id);
    this.#opts.logger.info({ clipId: c.id, channelId: c.streamId }, 'clip deleted');
  }
}

/** Removes every `<id>.*` file in `dir`. */
async function removeFiles(dir: string, id: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`${id}.`)).map((n) => rm(join(dir, n), { force: true })));
}
