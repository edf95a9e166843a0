/**
 * The warm-up of a simulcast program piped into an audience router (`pipeToRouter`): the first seconds in which
 * mediasoup does not yet choose layers well for a viewer with a bandwidth estimate.
 *
 * A pipe's streams start at the program's next keyframe after the pipe is made, so they are young when the first
 * viewers of a burst consume them. mediasoup's layer choice for a consumer with a bandwidth estimate passes over a
 * stream active for less than 2 s (`StreamMinActiveMs` in its SimulcastProducerStreamManager) and weighs layer
 * bitrates it has not measured yet: viewers joining then went without a layer past the next keyframe (3.0–3.9 s to
 * the first picture with keyframes every 2 s, against 1.9 s once the pipe was 5 s old). While the pipe warms up,
 * its viewers are held on its lowest layer (chosen at once, whatever the estimate) and released when it is warm.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';

/** mediasoup's StreamMinActiveMs, and a margin for its RTCP and bitrate windows. */
export const PIPE_WARM_UP_MS = 2500;

export interface PipeWarmUpOptions {
  /** How long every stream of the pipe must have been fed before it is warm, ms (default `PIPE_WARM_UP_MS`). */
  warmUpMs?: number;
}

/** Emits `warm` once, when every layer of the pipe has been fed for `warmUpMs`. */
export class PipeWarmUp extends EventEmitter<{ warm: [] }> {
  readonly #producer: types.Producer;
  readonly #warmUpMs: number;
  #timer: NodeJS.Timeout | null = null;
  #warm = false;
  #closed = false;
  readonly #onScore = (score: types.ProducerScore[]): void => this.#scored(score);
  readonly #onClose = (): void => this.close();

  /** Watches a pipe producer (in the audience router) from its creation. */
  constructor(producer: types.Producer, opts: PipeWarmUpOptions = {}) {
    super();
    this.setMaxListeners(0); // every viewer of its router waits for `warm`
    this.#producer = producer;
    this.#warmUpMs = opts.warmUpMs ?? PIPE_WARM_UP_MS;
    // a single-layer pipe has no layer to choose
    if (producer.type !== 'simulcast') this.#warm = true;
    else {
      producer.on('score', this.#onScore);
      producer.observer.once('close', this.#onClose);
      this.#scored(producer.score);
    }
  }

  /** The pipe's layers have all been fed long enough for mediasoup to choose among them. */
  get warm(): boolean {
    return this.#warm;
  }

  #scored(score: types.ProducerScore[]): void {
    if (this.#timer || this.#warm || this.#closed) return;
    const layers = this.#producer.rtpParameters.encodings?.length ?? 1;
    if (score.filter((s) => s.score > 0).length < layers) return;
    this.#timer = setTimeout(() => {
      this.#warm = true;
      this.#stopWatching();
      this.emit('warm');
    }, this.#warmUpMs);
    this.#timer.unref();
  }

  #stopWatching(): void {
    this.#producer.off('score', this.#onScore);
    this.#producer.observer.off('close', this.#onClose);
  }

  /** Stops watching (the pipe closed); `warm` is not emitted. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#stopWatching();
    this.removeAllListeners();
  }
}
