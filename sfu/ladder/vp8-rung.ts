/**
 * A VP8 copy of an H.264 channel's program video, for viewers whose browser cannot decode H.264 (Firefox
 * without OpenH264, as Debian's firefox-esr): a second program video track owned by the channel, one layer,
 * fed by its own ffmpeg that decodes the program's top layer and encodes VP8 (`LadderTranscoder`). Audio
 * stays the channel's one Opus program.
 *
 * ffmpeg runs only while a viewer holds the rung: a channel nobody watches in such a browser costs nothing.
 * It starts for the first holder (at the program's next keyframe) and stops `idleStopMs` after the last one
 * let go, so a page reload or a reconnect finds it still running. Its own ffmpeg, not another output of the
 * ladder's: starting and stopping it must not restart the ladder's encoders (every viewer's lower layers).
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { SfuLogger } from '../logger.ts';
import { ProgramTrack } from '../program.ts';
import { LadderTranscoder } from './transcoder.ts';

/** ffmpeg keeps running this long after its last viewer left. */
const IDLE_STOP_MS = 30_000;

export interface Vp8RungOptions {
  /** The channel's H.264 program video: what is decoded. */
  source: ProgramTrack;
  /** The rung's picture height (at most the source's). */
  height: number;
  router: types.Router;
  /** The channel's tap transport (a fed track taps nothing; kept for the track's shape). */
  tapTransport: types.DirectTransport;
  /** Where the rung's producer lives (beside the program's). */
  programTransport: types.DirectTransport;
  /** ffmpeg binary (default `ffmpeg` on the PATH). */
  ffmpegPath?: string | undefined;
  /** Stop encoding this long after the last holder let go (default 30 s). */
  idleStopMs?: number | undefined;
  logger: SfuLogger;
}

export interface Vp8RungEvents {
  /** ffmpeg started (a first holder) or stopped (idle, or the rung closed). */
  encoding: [running: boolean];
}

export class Vp8Rung extends EventEmitter<Vp8RungEvents> {
  readonly #opts: Vp8RungOptions;
  #holders = 0;
  #transcoder: LadderTranscoder | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #closed = false;

  private constructor(
    opts: Vp8RungOptions,
    /** The VP8 program video viewers consume. */
    readonly track: ProgramTrack,
  ) {
    super();
    this.#opts = opts;
  }

  static async create(opts: Vp8RungOptions): Promise<Vp8Rung> {
    const track = await ProgramTrack.createFed({
      kind: 'video',
      mimeType: 'video/VP8',
      router: opts.router,
      tapTransport: opts.tapTransport,
      programTransport: opts.programTransport,
    });
    return new Vp8Rung(opts, track);
  }

  /** Whether ffmpeg runs (someone holds it, or held it within `idleStopMs`). */
  get encoding(): boolean {
    return this.#transcoder !== null;
  }

  /** Viewers holding it now. */
  get holders(): number {
    return this.#holders;
  }

  /** A viewer needs the rung (encoding starts if it is not running); call the returned function when it no longer does. */
  hold(): () => void {
    if (this.#closed) return () => {};
    this.#holders++;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (!this.#transcoder) this.#start();
    let held = true;
    return () => {
      if (!held || this.#closed) return;
      held = false;
      if (--this.#holders > 0) return;
      this.#idleTimer = setTimeout(() => this.#stop(), this.#opts.idleStopMs ?? IDLE_STOP_MS);
      this.#idleTimer.unref();
    };
  }

  #start(): void {
    const { source, height, ffmpegPath, logger } = this.#opts;
    this.#transcoder = new LadderTranscoder({
      track: source,
      target: this.track,
      heights: [height],
      upToSource: true,
      ...(ffmpegPath ? { ffmpegPath } : {}),
      logger,
    });
    logger.info({ height }, 'VP8 rung: encoding for a viewer without an H.264 decoder');
    this.emit('encoding', true);
  }

  #stop(): void {
    this.#idleTimer = null;
    if (!this.#transcoder) return;
    this.#transcoder.close();
    this.#transcoder = null;
    this.#opts.logger.info({ closed: this.#closed }, 'VP8 rung: stopped (no viewer needs it, or the channel closed)');
    this.emit('encoding', false);
  }

  /** Stops ffmpeg and closes its track. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#stop();
    this.#closed = true;
    this.track.close();
    this.removeAllListeners();
  }
}
