/**
 * Past broadcasts on this node: persists each `ChannelRecording` the SFU
 * makes (a row when it starts, its size and duration as fragments land, the
 * end, the download file and poster), repairs recordings a crash left
 * unfinished, and resolves a recording's files for the HTTP routes. File
 * paths stay here: the API hands out URLs only.
 */
import { join } from 'node:path';
import { stat, readdir, rm } from 'node:fs/promises';
import type { Database, Recording } from '@whipcast/db';
import {
  exportProgressive,
  inspectRecording,
  repairRecording,
  type Channel,
  type ChannelRecording,
  type RecordingResult,
} from '@whipcast/sfu';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ApiRecording } from './api.ts';
import type { Metrics } from './metrics.ts';

/** Options of {@link Recordings}. */
export interface RecordingsOptions {
  db: Pick<Database, 'recordings'>;
  /** Root of the recordings tree (`RECORDINGS_DIR`). */
  dir: string;
  logger: Logger;
  /** Registers the recording metrics when given. */
  metrics?: Metrics;
  /** At most one progress write per recording this often (default 5 s). */
  progressIntervalMs?: number;
}

/** A recording's files on disk (never sent to clients). */
export interface RecordingFiles {
  /** The live (fragmented) file. */
  live: string;
  /** The download/VOD file (moov first), once built. */
  download: string;
  poster: string;
  contentType: string;
}

export class Recordings {
  readonly dir: string;
  readonly #db: Pick<Database, 'recordings'>;
  readonly #log: Logger;
  readonly #progressMs: number;
  /** Recordings being written or finishing on this node, by id. */
  readonly #active = new Map<string, ChannelRecording>();
  /** Per recording: its row writes, in order. */
  readonly #writes = new Map<string, Promise<void>>();
  readonly #bytesWritten?: Counter;
  readonly #errors?: Counter<'code'>;
  #closed = false;

  constructor(opts: RecordingsOptions) {
    this.dir = opts.dir;
    this.#db = opts.db;
    this.#log = opts.logger;
    this.#progressMs = opts.progressIntervalMs ?? 5000;
    const m = opts.metrics;
    if (m) {
      m.gauge('whipcast_recordings_active', 'Live sessions being recorded on this node', () => this.activeCount());
      this.#bytesWritten = m.counter('whipcast_recording_bytes_written_total', 'Bytes of complete fragments written to live recordings');
      this.#errors = m.counter('whipcast_recording_errors_total', 'Recordings stopped by a write error (code: ENOSPC for a full disk)', [
        'code',
      ]);
    }
  }

  /** Recordings being written now. */
  activeCount(): number {
    let n = 0;
    for (const r of this.#active.values()) if (r.writing) n++;
    return n;
  }

  /** The recording object while it is being written or finished on this node. */
  active(id: string): ChannelRecording | undefined {
    return this.#active.get(id);
  }

  files(r: Pick<Recording, 'id' | 'streamId' | 'container'>): RecordingFiles {
    const base = join(this.dir, r.streamId, r.id);
    return {
      live: `${base}.${r.container}`,
      download: `${base}.dl.${r.container}`,
      poster: `${base}.jpg`,
      contentType: r.container === 'webm' ? 'video/webm' : 'video/mp4',
    };
  }

  /** Keeps the database in step with a recording the SFU started for a channel. */
  track(channel: Channel, rec: ChannelRecording): void {
    this.#active.set(rec.id, rec);
    this.#enqueue(rec.id, async () => {
      await this.#db.recordings.create({ id: rec.id, streamId: channel.id, container: rec.container });
    });
    let lastBytes = 0;
    let lastWrite = 0;
    rec.on('progress', ({ bytes, seconds }) => {
      this.#bytesWritten?.inc(Math.max(0, bytes - lastBytes));
      lastBytes = bytes;
      const now = Date.now();
      if (now - lastWrite < this.#progressMs) return;
      lastWrite = now;
      this.#enqueue(rec.id, () => this.#db.recordings.progress(rec.id, { durationMs: seconds * 1000, bytes }));
    });
    // the recording logs the failure itself (one line, with the file and the seconds kept)
    rec.on('error', (err) => this.#errors?.inc({ code: (err as NodeJS.ErrnoException).code ?? 'EIO' }));
    rec.once('finish', (result) => {
      this.#enqueue(rec.id, () => this.#finished(rec, result)).finally(() => this.#active.delete(rec.id));
    });
  }

  async #finished(rec: ChannelRecording, result: RecordingResult): Promise<void> {
    if (result.empty) {
      await this.#db.recordings.delete(rec.id);
      return;
    }
    await this.#db.recordings.finish(rec.id, {
      durationMs: result.durationMs,
      bytes: result.bytes,
      downloadReady: result.downloadReady,
      hasPoster: result.hasPoster,
      endedAt: result.endedAt,
    });
  }

  #enqueue(id: string, step: () => Promise<void>): Promise<void> {
    const next = (this.#writes.get(id) ?? Promise.resolve())
      .then(step)
      .catch((err: unknown) => this.#log.error({ err, recordingId: id }, 'could not save recording state'));
    this.#writes.set(id, next);
    void next.finally(() => this.#writes.get(id) === next && this.#writes.delete(id));
    return next;
  }

  /**
   * Startup recovery: every recording left unfinished by a crash or `kill -9` is cut back to its
   * last complete fragment, measured, given its download file, and listed with its real duration.
   * Rows whose file is gone (or holds nothing) are deleted. Returns how many were recovered.
   * `idleMs` (in a cluster, where another node may be writing one): skip files written to more recently.
   */
  async recover(opts: { idleMs?: number } = {}): Promise<number> {
    let recovered = 0;
    const idleMs = opts.idleMs ?? 0;
    for (const r of await this.#db.recordings.listUnfinished()) {
      if (this.#closed) break;
      if (this.#active.has(r.id)) continue;
      try {
        if (idleMs > 0) {
          // another node may be writing it: only a file untouched for idleMs is left over from a crash
          const s = await stat(this.files(r).live).catch(() => null);
          if (s && Date.now() - s.mtimeMs < idleMs) continue;
        }
        if (await this.#recover(r)) recovered++;
      } catch (err) {
        this.#log.error({ err, recordingId: r.id, channelId: r.streamId }, 'could not recover an unfinished recording');
      }
    }
    return recovered;
  }

  async #recover(r: Recording): Promise<boolean> {
    const f = this.files(r);
    const live = await stat(f.live).catch(() => null);
    if (!live) {
      this.#log.warn({ recordingId: r.id, channelId: r.streamId }, 'an unfinished recording has no file: removed from the list');
      await this.#db.recordings.delete(r.id);
      return false;
    }
    const cut = r.container === 'mp4' ? await repairRecording(f.live) : 0;
    let seconds = 0;
    let downloadReady = false;
    try {
      seconds = (await exportProgressive(f.live, f.download)).seconds;
      downloadReady = true;
    } catch (err) {
      this.#log.warn({ err, recordingId: r.id }, 'could not build the download file of a recovered recording');
      seconds = await inspectRecording(f.live).then(
        (i) => i.seconds,
        () => 0,
      );
    }
    if (seconds <= 0) {
      this.#log.warn({ recordingId: r.id, channelId: r.streamId }, 'an unfinished recording holds no media: removed');
      await this.#db.recordings.delete(r.id);
      await removeFiles(join(this.dir, r.streamId), r.id);
      return false;
    }
    const poster = await stat(f.poster).catch(() => null);
    const download = downloadReady ? await stat(f.download).catch(() => null) : null;
    await this.#db.recordings.finish(r.id, {
      durationMs: seconds * 1000,
      bytes: (await stat(f.live)).size + (download?.size ?? 0) + (poster?.size ?? 0),
      downloadReady,
      hasPoster: !!poster,
      // the last write: the crash came within a fragment of it
      endedAt: live.mtime,
    });
    this.#log.info({ recordingId: r.id, channelId: r.streamId, seconds, cutBytes: cut }, 'recovered an unfinished recording');
    return true;
  }

  /** The API view of a recording: the live duration while it is written here. */
  toApi(r: Recording): ApiRecording {
    const active = this.#active.get(r.id);
    const writing = r.endedAt === null;
    const durationMs = active && writing ? Math.round(active.playable.seconds * 1000) : r.durationMs;
    const base = `/api/recordings/${r.id}`;
    return {
      id: r.id,
      streamId: r.streamId,
      title: r.title,
      startedAt: r.startedAt.toISOString(),
      endedAt: r.endedAt?.toISOString() ?? null,
      durationMs,
      posterUrl: r.hasPoster || (writing && active?.posterReady) ? `${base}/poster` : null,
      playbackUrl: `${base}/playback`,
      downloadUrl: `${base}/download`,
    };
  }

  /** Deletes a recording: a session still being recorded stops recording first; row, then files. */
  async delete(r: Recording): Promise<void> {
    const active = this.#active.get(r.id);
    if (active) {
      await active.finish();
      await this.#writes.get(r.id);
    }
    await this.#db.recordings.delete(r.id);
    await removeFiles(join(this.dir, r.streamId), r.id);
    this.#log.info({ recordingId: r.id, channelId: r.streamId }, 'recording deleted by its owner');
  }

  /**
   * Finishes every recording still being written (server shutdown) and waits up to `waitMs` for
   * their download files and rows; one not done by then is finished by startup recovery next time.
   */
  async close(waitMs = 15_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const finishing = [...this.#active.values()];
    const done = Promise.all([...finishing.map((r) => r.finish().catch(() => {})), ...this.#writes.values()]).then(async () => {
      await Promise.all([...this.#writes.values()]);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs)));
    const t0 = performance.now();
    const timedOut = await Promise.race([done.then(() => false), timeout]);
    clearTimeout(timer);
    const ms = Math.round(performance.now() - t0);
    if (timedOut) {
      const left = finishing.filter((r) => r.state !== 'finished').length;
      this.#log.warn(
        { recordings: finishing.length, left, ms },
        'shutdown: recordings not finished in time are finished by startup recovery next time (their live files are complete)',
      );
    } else if (finishing.length) this.#log.info({ recordings: finishing.length, ms }, 'shutdown: recordings finished');
  }
}

/** Removes every `<id>.*` file in `dir`. */
async function removeFiles(dir: string, id: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`${id}.`)).map((n) => rm(join(dir, n), { force: true })));
}
