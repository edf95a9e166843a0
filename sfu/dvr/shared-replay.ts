/**
 * Viewers at the same position in a channel's past share one replay: Node
 * sends each packet once and the worker fans it out to every member's
 * consumers, as it does for live viewers. A seek joins a replay of the
 * channel already playing near its target (`ReplayShares.find`); the member's
 * consumers start at that replay's next keyframe. A shared replay cannot be
 * held for one member: a member that pauses while others play has its own
 * consumers paused, and its resume is a seek to where it paused (which may
 * join another shared replay). With no member left the replay closes; with
 * none of them playing it holds (Node sends nothing).
 */
import type { types } from 'mediasoup';
import type { ReplaySession } from './replay.ts';

export interface ReplaySharesOptions {
  /** A seek joins a replay playing within this many ms of its target (and reaching a keyframe within as long); 0: never. */
  withinMs: number;
}

/** One viewer's place on a shared replay. */
export class ReplayMember {
  /** Media time where it paused; null while it plays. */
  pausedAt: number | null = null;
  /** Its consumers paused on the worker because others played on when it paused (resumed with it). */
  held: types.Consumer[] = [];
  /** The replay sent a video keyframe since it joined (its picture started). */
  sawKeyframe: boolean;
  #left = false;

  /** @internal Made by `SharedReplay.join()`. */
  constructor(
    readonly share: SharedReplay,
    readonly onKeyframe: () => void,
    first: boolean,
  ) {
    // the replay's first member starts it, on a keyframe
    this.sawKeyframe = first;
  }

  get playing(): boolean {
    return this.pausedAt === null;
  }

  /** Leaves the replay (idempotent); the last member out closes it. */
  leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.share.leave(this);
  }
}

/** A replay of a channel's buffer, with the viewers watching it. */
export class SharedReplay {
  readonly #members = new Set<ReplayMember>();
  #closed = false;

  /** @internal Made by `ReplayShares.add()`. */
  constructor(
    readonly replay: ReplaySession,
    /** The router its producers live on: only viewers on that router can consume them. */
    readonly routerId: string,
    /** The program tracks it replays (kinds, codecs, SSRCs): a re-made program is not joined. */
    readonly key: string,
    private readonly onClose: (s: SharedReplay) => void,
  ) {}

  /** Viewers on it. */
  get members(): number {
    return this.#members.size;
  }

  /** Viewers on it not paused. */
  get playing(): number {
    let n = 0;
    for (const m of this.#members) if (m.playing) n++;
    return n;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A viewer joins; `onKeyframe` when the replay sends a video keyframe. */
  join(onKeyframe: () => void): ReplayMember {
    const m = new ReplayMember(this, onKeyframe, this.#members.size === 0 && !this.replay.started);
    this.#members.add(m);
    return m;
  }

  /** The replay sends a video keyframe. */
  keyframe(): void {
    for (const m of this.#members) {
      m.sawKeyframe = true;
      m.onKeyframe();
    }
  }

  /** A member paused or left: with none of them playing the replay holds. */
  update(): void {
    if (this.playing === 0) this.replay.pause();
  }

  /** @internal */
  leave(m: ReplayMember): void {
    if (!this.#members.delete(m)) return;
    if (this.#members.size === 0) this.close();
    else this.update();
  }

  /** Closes the replay (its producers, so its members' consumers). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#members.clear();
    this.replay.close();
    this.onClose(this);
  }
}

/** Where a seek may land on a shared replay. */
export interface ShareQuery {
  routerId: string;
  key: string;
  /** Positions (media time) a replay may be at, inclusive. */
  from: number;
  to: number;
  /** The closest to this wins. */
  target: number;
  /** True when the replay at media time `at` reaches a keyframe soon enough (the joiner's picture starts there). */
  accept: (at: number) => boolean;
  /** Not this one (the viewer's own). */
  except?: SharedReplay | undefined;
}

/** A channel's shared replays. */
export class ReplayShares {
  readonly #all = new Set<SharedReplay>();

  constructor(readonly opts: ReplaySharesOptions) {}

  /** Seeks may join replays. */
  get enabled(): boolean {
    return this.opts.withinMs > 0;
  }

  /** Replays open (tests, metrics). */
  get size(): number {
    return this.#all.size;
  }

  /** Viewers on them. */
  get members(): number {
    let n = 0;
    for (const s of this.#all) n += s.members;
    return n;
  }

  /** Registers a seek's replay (joinable by later seeks while it plays). */
  add(replay: ReplaySession, routerId: string, key: string): SharedReplay {
    const s = new SharedReplay(replay, routerId, key, (x) => this.#all.delete(x));
    this.#all.add(s);
    return s;
  }

  /** The joinable replay (playing or not yet started) best matching `q`, if sharing is on. */
  find(q: ShareQuery): SharedReplay | undefined {
    if (!this.enabled) return undefined;
    let best: SharedReplay | undefined;
    let bestDistance = Infinity;
    for (const s of this.#all) {
      if (s === q.except || s.closed || s.members === 0 || s.routerId !== q.routerId || s.key !== q.key) continue;
      if (s.replay.started && s.replay.paused) continue; // held: none of its members plays
      const at = s.replay.position();
      if (at < q.from || at > q.to || !q.accept(at)) continue;
      const d = Math.abs(at - q.target);
      if (d < bestDistance) {
        best = s;
        bestDistance = d;
      }
    }
    return best;
  }

  close(): void {
    for (const s of [...this.#all]) s.close();
  }
}
