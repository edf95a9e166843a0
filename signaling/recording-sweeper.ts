import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clip, Database, Recording } from '@whipcast/db';
import { PeriodicJob } from './periodic.ts';

/** Options of a {@link RecordingSweeper}. */
export interface RecordingSweeperOptions {
  /** Root of the recordings tree (`RECORDINGS_DIR`). */
  dir: string;
  /** Finished recordings and clips older than this are deleted; 0 keeps them forever. */
  retentionDays: number;
  /** Beyond this many bytes in total the oldest finished recordings and clips go first; unset = no quota. */
  quotaBytes?: number;
  /** How often to sweep (the first sweep runs at once). */
  intervalMs: number;
  logger?: Logger;
}

/**
 * Deletes past broadcasts and clips beyond the retention period, then the oldest ones while the
 * total is above the quota. A recording still being written is never deleted. The row goes first,
 * then its files, so a crash in between leaves an orphan file, never a listed recording without one.
 */
export class RecordingSweeper {
  readonly #db: Pick<Database, 'recordings' | 'clips'>;
  readonly #options: RecordingSweeperOptions;
  readonly #job: PeriodicJob;

  constructor(db: Pick<Database, 'recordings' | 'clips'>, options: RecordingSweeperOptions) {
    this.#db = db;
    this.#options = options;
    this.#job = new PeriodicJob({
      name: 'recordings sweep',
      intervalMs: options.intervalMs,
      logger: options.logger,
      run: () => this.#sweep(),
    });
  }

  /** Runs one sweep now (or joins the one under way). */
  sweep(): Promise<void> {
    return this.#job.run();
  }

  /** Stops the timer and waits for a sweep under way. Idempotent. */
  close(): Promise<void> {
    return this.#job.close();
  }

  async #sweep(): Promise<void> {
    const { retentionDays, quotaBytes } = this.#options;
    if (retentionDays > 0) {
      const before = new Date(Date.now() - retentionDays * 86_400_000);
      for (const r of await this.#db.recordings.listFinishedBefore(before)) await this.#deleteRecording(r, 'retention');
      for (const c of await this.#db.clips.listBefore(before)) await this.#deleteClip(c, 'retention');
    }
    if (quotaBytes === undefined) return;
    let total = await this.#db.recordings.totalBytes();
    if (total <= quotaBytes) return;
    const recordings = await this.#db.recordings.listFinishedOldestFirst();
    const clips = await this.#db.clips.listOldestFirst();
    // oldest first; at the same age a recording goes before a clip
    while (total > quotaBytes && !this.#job.closed) {
      const r = recordings[0];
      const c = clips[0];
      if (r && (!c || r.startedAt.getTime() <= c.createdAt.getTime())) {
        recordings.shift();
        if (await this.#deleteRecording(r, 'quota')) total -= r.bytes;
      } else if (c) {
        clips.shift();
        if (await this.#deleteClip(c, 'quota')) total -= c.bytes;
      } else {
        this.#options.logger?.warn({ total, quotaBytes }, 'recordings above quota, but only recordings being written are left');
        return;
      }
    }
  }

  async #deleteRecording(r: Recording, reason: string): Promise<boolean> {
    if (!(await this.#db.recordings.delete(r.id))) return false;
    const dir = join(this.#options.dir, r.streamId);
    await removeFiles(dir, r.id);
    this.#options.logger?.info({ recordingId: r.id, channelId: r.streamId, bytes: r.bytes, reason }, 'deleted recording');
    return true;
  }

  async #deleteClip(c: Clip, reason: string): Promise<boolean> {
    if (!(await this.#db.clips.delete(c.id))) return false;
    await removeFiles(join(this.#options.dir, 'clips'), c.id);
    this.#options.logger?.info({ clipId: c.id, channelId: c.streamId, bytes: c.bytes, reason }, 'deleted clip');
    return true;
  }
}

/** Removes every `<id>.*` file in `dir` (the live file, download file and poster). */
async function removeFiles(dir: string, id: string): Promise<void> {
  const names = await readdir(dir).catch(() => []);
  await Promise.all(names.filter((n) => n.startsWith(`${id}.`)).map((n) => rm(join(dir, n), { force: true })));
}
