/**
 * One instant-start catch-up shared by the viewers of a router who start together: a single `ReplaySession` (one
 * `Producer.send` per packet through Node; the worker fans it out to each viewer's consumer, as it does live) for
 * every viewer that asked for the same cached GOP before any of them was ready. It takes one catch-up slot whatever
 * its size. A crowd joining at once (a raid, a page shared in a chat) costs the server one replay per group instead
 * of one per viewer.
 *
 * The replay starts when every member is ready (its consumer resumed and its DTLS up: packets sent before that are
 * lost, and the first of them is the keyframe), or `waitMs` after the first one was; it takes no new member once
 * one is ready. A member ready only after the start missed the keyframe: it gets its picture at the switch to
 * live, as a viewer refused a slot does (`late`).
 */
import type { CatchUpSlot } from './catch-up-slots.ts';
import type { ReplaySession } from './replay.ts';

/** A viewer in a shared catch-up. */
export interface CatchUpMember {
  /** The shared replay sent a video keyframe. */
  onReplayKeyframe(): void;
}

export interface SharedCatchUpOptions {
  /** The replay the members' consumers are on (paused, not started). */
  replay: ReplaySession;
  /** The node's catch-up slot it holds; given back when its last member leaves. */
  slot: CatchUpSlot;
  /** How long the first ready member waits for the others, ms. */
  waitMs: number;
}

export class SharedCatchUp {
  readonly replay: ReplaySession;
  readonly #slot: CatchUpSlot;
  readonly #waitMs: number;
  readonly #members = new Set<CatchUpMember>();
  readonly #ready = new Set<CatchUpMember>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Members that joined, ever (tests, logs). */
  joined = 0;
  /** Members that became ready after the replay had started: they missed its keyframe (tests, logs). */
  late = 0;

  constructor(opts: SharedCatchUpOptions) {
    this.replay = opts.replay;
    this.#slot = opts.slot;
    this.#waitMs = opts.waitMs;
  }

  /** A viewer may still join: the replay has not started and no member is ready yet. */
  get open(): boolean {
    return !this.#closed && !this.replay.started && this.#ready.size === 0;
  }

  /** Members now. */
  get size(): number {
    return this.#members.size;
  }

  /** Adds a member (only while `open`). */
  add(member: CatchUpMember): void {
    if (!this.open) throw new Error('this catch-up takes no new viewer');
    this.#members.add(member);
    this.joined++;
  }

  /** The member's consumer is resumed and its DTLS is up: the replay starts once every member is (or after `waitMs`). */
  ready(member: CatchUpMember): void {
    if (this.#closed || !this.#members.has(member)) return;
    if (this.replay.started) {
      this.late++;
      return;
    }
    this.#ready.add(member);
    if (this.#ready.size === this.#members.size) return this.#start();
    this.#timer ??= setTimeout(() => this.#start(), this.#waitMs);
  }

  /** The member is gone (switched to live, left, seeks). The last one out closes the replay, after `lingerMs`. Idempotent. */
  leave(member: CatchUpMember, lingerMs = 0): void {
    if (!this.#members.delete(member)) return;
    this.#ready.delete(member);
    if (this.#members.size === 0) {
      this.#close(lingerMs);
      return;
    }
    // the ones left may all be ready now
    if (!this.replay.started && this.#ready.size > 0 && this.#ready.size === this.#members.size) this.#start();
  }

  /** @internal The replay sent a video keyframe. */
  keyframe(): void {
    for (const m of this.#members) m.onReplayKeyframe();
  }

  #start(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#closed && this.#members.size > 0) this.replay.play();
  }

  #close(lingerMs: number): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // the replay is no longer told of live packets: it stops at the live edge, its catch-up is over
    this.#slot.release();
    if (lingerMs > 0) setTimeout(() => this.replay.close(), lingerMs).unref();
    else this.replay.close();
  }
}
