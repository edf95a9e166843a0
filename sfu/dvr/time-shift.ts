/**
 * A socket viewer's position in time: live on the program, catching up from
 * the GOP cache (instant start: replay at 2× with standby program consumers,
 * switched to at a live keyframe), or in the past (DVR seek, pause, resume).
 * It owns the viewer's replay and standby consumers; the viewer owns the
 * transport and the current consumers.
 */
import type { types } from 'mediasoup';
import { SfuError } from '../errors.ts';
import type { ProgramTrack } from '../program.ts';
import type { MediaKind } from '../sdp/offer.ts';
import { dtlsConnected } from '../transport.ts';
import type { ConsumerInfo, DvrPosition, ResumeResult, SeekResult, SeekTarget } from '../types.ts';
import type { DvrBuffer } from './buffer.ts';
import type { CatchUpSlot, CatchUpSlots } from './catch-up-slots.ts';
import { ReplaySession } from './replay.ts';
import type { ReplayPacer } from './replay-pacer.ts';
import type { ReplayMember, ReplayShares, SharedReplay } from './shared-replay.ts';
import { SharedCatchUp, type CatchUpMember } from './shared-catch-up.ts';

/** Program consumers made for a viewer. */
export interface ProgramConsumers {
  infos: ConsumerInfo[];
  consumers: types.Consumer[];
}

/** What the time shift needs from its viewer. */
export interface ShiftedViewer {
  readonly router: types.Router;
  readonly transport: types.WebRtcTransport;
  /** The viewer's device capabilities (set by its `consume()`). */
  capabilities(): types.RtpCapabilities;
  /** The channel's DVR buffer and current program tracks. */
  readonly buffer: DvrBuffer;
  /** The clock its replays run on (it also bounds how many play at once). */
  readonly replays: ReplayPacer;
  /** The channel's shared replays (a seek joins one playing near its target). */
  readonly shares: ReplayShares;
  /** The node's bound on catch-ups at once. */
  readonly catchUps: CatchUpSlots;
  programTracks(): ProgramTrack[];
  /** True when the device can decode a program track's codec. */
  receives(track: ProgramTrack): boolean;
  /** Paused consumers of the live program (of `kinds`, default all); `standby`: kept aside, not replacing the current ones. */
  consumeProgram(standby: boolean, kinds?: readonly MediaKind[]): Promise<ProgramConsumers>;
  /** Its current consumers (those it receives). */
  currentConsumers(): types.Consumer[];
  /** Makes a consumer current (see `Viewer.setConsumer`). */
  useConsumer(consumer: types.Consumer, closeOldAfterMs?: number): void;
  /** A consumer of a replay was made (its keyframe requests may start a DVR keyframe recovery). */
  replayConsumer(consumer: types.Consumer): void;
  /** The replay the viewer watches sent a video keyframe. */
  replayKeyframe(): void;
  /** The viewer now receives media: it counts in the audience. */
  watching(): void;
  /** The catch-up is over: tell the client to switch to the standby consumers. */
  switched(): void;
}

/** How far a catch-up replay may lag and still switch to live at a keyframe. */
const SWITCH_WITHIN_MS = 500;
/** Instant start only from a cached keyframe younger than this. */
const GOP_CACHE_MAX_AGE_MS = 10_000;
/** A seek this close to now is a return to live. */
const LIVE_EDGE_MS = 1000;
/** The old consumers/replay stay this long after a switch, so the client's decoder moves over first. */
const SWITCH_LINGER_MS = 1000;
/** A shared catch-up's first ready viewer waits this long at most for the others before the replay starts. */
const SHARED_START_WAIT_MS = 250;

export class TimeShift implements CatchUpMember {
  /** Set while the viewer watches the past (seek) or catches up (instant start). */
  #replay: ReplaySession | undefined;
  /** Catch-up: paused program consumers, resumed at the next live keyframe. */
  #standby: Map<MediaKind, types.Consumer> | undefined;
  /** Held while a catch-up of its own (a keyframe recovery) replays. */
  #slot: CatchUpSlot | null = null;
  /** An instant start's catch-up, shared with the viewers who started with it (its replay is `#replay`). */
  #shared: SharedCatchUp | undefined;
  /** Its place on #replay when that is a seek's (shared) replay; catch-ups and recoveries have none. */
  #member: ReplayMember | undefined;

  constructor(private readonly viewer: ShiftedViewer) {}

  /** True when the viewer watches live: no replay, no catch-up. */
  get idle(): boolean {
    return !this.#replay && !this.#standby;
  }

  /**
   * Instant start: replay the cached GOP faster than real time, then hand over to the live program at a keyframe.
   * `kinds` (default all): only these are replayed, the others stay live (keyframe recovery replays the video
   * alone). Null: no usable GOP, or the node runs as many catch-ups as it may (the viewer starts at the next
   * live keyframe).
   */
  async catchUp(kinds?: readonly MediaKind[]): Promise<ConsumerInfo[] | null> {
    const { buffer } = this.viewer;
    const last = buffer.lastKeyframe();
    const kf = last === null ? undefined : buffer.at(last);
    if (last === null || !kf || Date.now() - kf.at > GOP_CACHE_MAX_AGE_MS) return null;
    // nothing to start instantly without a picture this device can decode (audio alone plays live at once)
    if (!this.viewer.programTracks().some((t) => t.kind === 'video' && this.viewer.receives(t))) return null;
    let out: ConsumerInfo[];
    if (!kinds) {
      // an instant start: shared with the viewers of this router who start from the same keyframe together
      const shared = await this.#shareFrom(last);
      if (!shared) return null;
      out = shared;
    } else {
      const slot = this.viewer.catchUps.take();
      if (!slot) return null;
      this.#slot = slot; // given back by stop() too, should the viewer close meanwhile
      try {
        out = await this.#replayFrom(last, 2, kinds);
      } catch (err) {
        slot.release();
        throw err;
      }
    }
    const standby = await this.viewer.consumeProgram(true, kinds).catch(() => null);
    if (!standby) return out;
    this.#standby = new Map(standby.consumers.map((c) => [c.kind, c]));
    return [...out, ...standby.infos.map((s) => ({ ...s, standby: true }))];
  }

  /** Seeks into the past: `offsetMs` behind live, or `deltaMs` from where the viewer is. */
  async seek(target: SeekTarget, live: () => Promise<ConsumerInfo[]>): Promise<SeekResult> {
    const { buffer } = this.viewer;
    const range = buffer.range();
    const now = Date.now();
    if (!range) throw new SfuError('stream_offline', 'Nothing recorded yet');
    const current = this.#replay ? (this.#member?.pausedAt ?? this.#replay.position()) : now;
    let t = target.offsetMs !== undefined ? now - target.offsetMs : current + target.deltaMs;
    t = Math.max(range.start, t);
    if (t >= now - LIVE_EDGE_MS) return { consumers: await live(), behindLiveMs: 0, windowMs: now - range.start, live: true };
    return this.#seekTo(t);
  }

  /**
   * Plays from media time `t`: on a shared replay of the channel playing near it, else on a new one. It joins a
   * replay at or before `t` (as its own replay would start at the keyframe at or before `t`: a seek never lands
   * later than asked, a resume skips nothing) and at most `withinMs` before that keyframe, that reaches a keyframe
   * within `withinMs` (the joiner's picture starts there).
   */
  async #seekTo(t: number): Promise<SeekResult> {
    const { buffer, shares } = this.viewer;
    const now = Date.now();
    const windowMs = now - (buffer.range()?.start ?? now);
    const from = buffer.keyframeAtOrBefore(t);
    if (from === null) throw new SfuError('not_found', 'No keyframe recorded in the window');
    const kfAt = buffer.at(from)!.at;
    const within = shares.opts.withinMs;
    const share = shares.find({
      routerId: this.viewer.router.id,
      key: this.#tracksKey(),
      from: kfAt - within,
      to: t,
      target: t,
      accept: (at) => {
        const k = buffer.keyframeAtOrBefore(at + within);
        return k !== null && buffer.at(k)!.at >= at;
      },
      except: this.#member?.share,
    });
    // a viewer already in the past only moves; one watching live (or catching up to it) adds a replay, unless it joins one
    if (!share && (!this.#replay || this.#standby) && this.viewer.replays.full)
      throw new SfuError('unavailable', 'Too many viewers are watching the past on this server; try again in a moment');
    this.stop();
    if (share) {
      const consumers = await this.#join(share);
      return { consumers, behindLiveMs: Math.round(now - share.replay.position()), windowMs, live: false };
    }
    const consumers = await this.#replayFrom(from, 1, undefined, undefined, true);
    return { consumers, behindLiveMs: now - kfAt, windowMs, live: false };
  }

  /**
   * DVR keyframe recovery: the replayed video lost a keyframe (a drop-out longer than NACK repairs). Replays again
   * from the keyframe at or before where the viewer is, at 2× until it is back on its timeline (where it would be
   * had its picture not frozen), then at real time: the picture moves again at once, as far behind live as before.
   * Null when the viewer is not watching the past (live, catching up, paused) or the buffer has no keyframe before
   * its position.
   */
  async recoverKeyframe(): Promise<ConsumerInfo[] | null> {
    const old = this.#replay;
    const member = this.#member;
    if (!old || this.#standby || !old.started || (member ? !member.playing : old.paused)) return null;
    const at = old.position();
    const from = this.viewer.buffer.keyframeAtOrBefore(at);
    if (from === null) return null;
    // a replay of its own (others on a shared one keep theirs): its consumers replace the old replay's
    const out = await this.#replayFrom(from, 2, undefined, { mediaAt: at, wallAt: Date.now() });
    if (member) member.leave();
    else old.close();
    return out;
  }

  /**
   * Holds the picture (live playback cannot be held). A replay of its own holds its clock; on a shared replay
   * others play on, so the viewer's consumers are paused instead (the replay holds once none of its viewers plays).
   */
  pause(): void {
    const replay = this.#replay;
    // a catch-up shared with others plays on for them: the viewer is live as far as holding goes
    if (!replay || this.#shared) throw new SfuError('not_found', 'Seek first: live playback cannot be held');
    const m = this.#member;
    if (!m) return replay.pause();
    if (!m.playing) return;
    m.pausedAt = replay.position();
    // others play on (it no longer counts as playing): its own consumers stop instead
    if (m.share.playing > 0) {
      m.held = this.viewer.currentConsumers().filter((c) => !c.paused && !c.closed);
      for (const c of m.held) void c.pause().catch(() => {});
    }
    m.share.update();
  }

  /**
   * Plays on from where `pause()` held it. On a shared replay others played on meanwhile: that is a seek to where
   * the viewer paused (new consumers, in the answer), unless the replay held at that very point.
   */
  async resume(): Promise<ResumeResult> {
    const replay = this.#replay;
    if (!replay || this.#shared) throw new SfuError('not_found', 'Not in DVR mode');
    const m = this.#member;
    if (!m) {
      replay.play();
      return {};
    }
    if (m.pausedAt === null) return {};
    // the viewer was the last to pause: the replay held where it paused and plays on, the same consumers
    if (replay.paused && replay.started && Math.abs(replay.position() - m.pausedAt) < 1) {
      m.pausedAt = null;
      for (const c of m.held) void c.resume().catch(() => {});
      m.held = [];
      replay.play();
      return {};
    }
    const r = await this.#seekTo(Math.max(m.pausedAt, this.viewer.buffer.range()?.start ?? m.pausedAt));
    return { consumers: r.consumers, behindLiveMs: r.behindLiveMs };
  }

  /** Where the viewer is: null when watching live (or catching up to it). */
  position(): DvrPosition | null {
    if (!this.#replay || this.#standby) return null;
    const range = this.viewer.buffer.range();
    const m = this.#member;
    const now = Date.now();
    return {
      behindLiveMs: Math.round(m?.pausedAt != null ? now - m.pausedAt : this.#replay.behindLiveMs()),
      windowMs: range ? now - range.start : 0,
      paused: m ? !m.playing : this.#replay.paused,
    };
  }

  /** Its replay is shared with other viewers (tests). */
  get sharedWith(): number {
    return Math.max(0, (this.#member?.share.members ?? 0) - 1);
  }

  /** True while it waits for the shared replay it joined to reach a keyframe (its keyframe requests go nowhere sooner). */
  get awaitingKeyframe(): boolean {
    return !!this.#member && !this.#member.sawKeyframe;
  }

  /** True when the consumer is a standby one (resumed at the switch, not by the client). */
  isStandby(consumer: types.Consumer): boolean {
    return !!this.#standby && [...this.#standby.values()].includes(consumer);
  }

  /** The standby consumers (catching up), if any. */
  standbyConsumers(): types.Consumer[] {
    return [...(this.#standby?.values() ?? [])];
  }

  /** A standby consumer by id. */
  standbyConsumer(id: string): types.Consumer | undefined {
    return [...(this.#standby?.values() ?? [])].find((c) => c.id === id);
  }

  /**
   * The client resumed a consumer of the replay: the replay clock starts once
   * the video consumer is ready (or the audio one when there is no video) and
   * DTLS is up, since packets sent before that are lost and the first of them
   * is the keyframe. False when the consumer is not the replay's.
   */
  async resumeReplayConsumer(consumer: types.Consumer): Promise<boolean> {
    const replay = this.#replay;
    const shared = this.#shared;
    if (!replay || (replay.started && !shared) || ![...replay.producers.values()].some((p) => p.id === consumer.producerId)) return false;
    await consumer.resume();
    const video = replay.producers.get('video');
    // a device that cannot decode the video gets none: its audio starts the clock
    if (consumer.kind === 'video' || !video || !this.#canConsume(video.id)) {
      await dtlsConnected(this.viewer.transport, 10_000);
      if (this.#replay !== replay) return true;
      // a shared catch-up starts once all its viewers are ready
      if (shared) shared.ready(this);
      else if (!replay.started) replay.play();
    }
    return true;
  }

  /**
   * A live keyframe is about to reach the program producer: a catch-up that
   * reached the live edge resumes its standby program consumers now (the
   * worker handles the resume before this packet), so the switch happens
   * exactly on a keyframe.
   */
  onLiveKeyframe(): void {
    const replay = this.#replay;
    const standby = this.#standby;
    if (!standby || !replay || replay.behindLiveMs() > SWITCH_WITHIN_MS) return;
    this.#standby = undefined;
    this.#replay = undefined;
    for (const c of standby.values()) {
      // the catch-up's consumer is paused first: the live one is resumed with the whole estimate to itself
      this.viewer.useConsumer(c, SWITCH_LINGER_MS);
      void c.resume().catch(() => {});
    }
    const shared = this.#shared;
    this.#shared = undefined;
    if (shared) shared.leave(this, SWITCH_LINGER_MS);
    else {
      // the replay is no longer told of live packets: it stops at the live edge, its catch-up is over
      this.#releaseSlot();
      setTimeout(() => replay.close(), SWITCH_LINGER_MS).unref();
    }
    this.viewer.switched();
  }

  /** A packet reached the buffer: a replay at the live edge sends it at once. */
  onLivePacket(): void {
    this.#replay?.notify();
  }

  /** Back to plain live: the replay (or its place on a shared one) and standby consumers close. */
  stop(): void {
    if (this.#member) this.#member.leave();
    else if (this.#shared) this.#shared.leave(this);
    else this.#replay?.close();
    this.#member = undefined;
    this.#shared = undefined;
    this.#replay = undefined;
    for (const c of this.#standby?.values() ?? []) c.close();
    this.#standby = undefined;
    this.#releaseSlot();
  }

  #releaseSlot(): void {
    this.#slot?.release();
    this.#slot = null;
  }

  /** @internal The shared catch-up this viewer watches sent a video keyframe. */
  onReplayKeyframe(): void {
    if (this.#shared) this.viewer.replayKeyframe();
  }

  /**
   * Consumers on the shared catch-up from the keyframe at `last` for this router: joined if one is still open, else
   * a new one in a slot of its own. Null: no slot free, or the one open closed to joiners meanwhile.
   */
  async #shareFrom(last: number): Promise<ConsumerInfo[] | null> {
    const { viewer } = this;
    const from = keyframeGroupStart(viewer.buffer, last);
    const tracks = viewer.programTracks().map((p) => ({ kind: p.kind, codec: p.codec, ssrcs: p.layers.map((l) => l.ssrc) }));
    const shared = await viewer.catchUps.share(`${viewer.router.id}:${from}:${this.#tracksKey()}`, async (slot) => {
      // its keyframes are told to the members, once it exists
      const made: { shared?: SharedCatchUp } = {};
      const replay = await ReplaySession.create({
        buffer: viewer.buffer,
        router: viewer.router,
        tracks,
        from,
        catchUpRate: 2,
        onKeyframe: () => made.shared?.keyframe(),
        pacer: viewer.replays,
      });
      made.shared = new SharedCatchUp({ replay, slot, waitMs: SHARED_START_WAIT_MS });
      return made.shared;
    });
    if (!shared?.open) return null;
    shared.add(this);
    this.#shared = shared; // left by stop(), should the viewer close meanwhile
    const out = await this.#consumeOr(shared.replay, () => this.stop());
    this.#replay = shared.replay;
    viewer.watching();
    return out;
  }

  /** The viewer's consumers on `replay`; `undo` runs when they cannot be made. */
  async #consumeOr(replay: ReplaySession, undo: () => void): Promise<ConsumerInfo[]> {
    try {
      return await this.#consume(replay);
    } catch (err) {
      undo();
      throw err;
    }
  }

  #canConsume(producerId: string): boolean {
    return this.viewer.router.canConsume({ producerId, rtpCapabilities: this.viewer.capabilities() });
  }

  /** The program tracks a replay made now would carry (a shared replay of other tracks is not joined). */
  #tracksKey(): string {
    return this.viewer
      .programTracks()
      .map((p) => `${p.kind}:${p.codec.mimeType}:${p.layers.map((l) => l.ssrc).join(',')}`)
      .join('|');
  }

  /**
   * Consumers on a replay of the buffer from `from`, replacing the viewer's current ones. `shared` (a seek's):
   * registered with the channel's shared replays, for later seeks to join.
   */
  async #replayFrom(
    from: number,
    catchUpRate: number,
    kinds?: readonly MediaKind[],
    rejoin?: { mediaAt: number; wallAt: number },
    shared = false,
  ): Promise<ConsumerInfo[]> {
    const { viewer } = this;
    const tracks = viewer
      .programTracks()
      .filter((p) => !kinds || kinds.includes(p.kind))
      .map((p) => ({ kind: p.kind, codec: p.codec, ssrcs: p.layers.map((l) => l.ssrc) }));
    from = keyframeGroupStart(viewer.buffer, from);
    // a seek's replay tells every viewer sharing it of its keyframes (it is registered once made)
    const ref: { share?: SharedReplay } = {};
    const replay = await ReplaySession.create({
      buffer: viewer.buffer,
      router: viewer.router,
      tracks,
      from,
      catchUpRate,
      ...(rejoin ? { rejoin } : {}),
      onKeyframe: () => (ref.share ? ref.share.keyframe() : this.#replay === replay && viewer.replayKeyframe()),
      pacer: viewer.replays,
    });
    if (!shared) {
      const out = await this.#consumeOr(replay, () => replay.close());
      this.#replay = replay;
      viewer.watching();
      return out;
    }
    ref.share = viewer.shares.add(replay, viewer.router.id, this.#tracksKey());
    return this.#join(ref.share);
  }

  /** Consumers on a shared replay, replacing the viewer's current ones; its picture starts at the replay's next keyframe. */
  async #join(share: SharedReplay): Promise<ConsumerInfo[]> {
    const member: ReplayMember = share.join(() => this.#member === member && this.viewer.replayKeyframe());
    const out = await this.#consumeOr(share.replay, () => member.leave());
    this.#replay = share.replay;
    this.#member = member;
    this.viewer.watching();
    return out;
  }

  /** Consumes a replay's producers (those the device can decode) on the viewer's transport. */
  async #consume(replay: ReplaySession): Promise<ConsumerInfo[]> {
    const { viewer } = this;
    const out: ConsumerInfo[] = [];
    for (const [kind, producer] of replay.producers) {
      if (!this.#canConsume(producer.id)) continue;
      const consumer = await viewer.transport.consume({ producerId: producer.id, rtpCapabilities: viewer.capabilities(), paused: true });
      viewer.useConsumer(consumer);
      viewer.replayConsumer(consumer);
      out.push({ id: consumer.id, producerId: producer.id, kind, rtpParameters: consumer.rtpParameters });
    }
    return out;
  }
}

/** Layers' keyframes this close before a top-layer keyframe belong to its group. */
const KEYFRAME_GROUP_MS = 300;

/**
 * Where a replay from the top-layer keyframe at `from` starts: at the first
 * keyframe of its group, so the lower simulcast layers (keyed a few ms
 * earlier or later) start decodable too and a constrained viewer is not left
 * waiting a whole GOP for its layer's next keyframe.
 */
export function keyframeGroupStart(buffer: DvrBuffer, from: number): number {
  const top = buffer.at(from);
  if (!top) return from;
  let start = from;
  for (let i = from - 1; i >= buffer.start && from - i < 4000; i--) {
    const p = buffer.at(i);
    if (!p || top.at - p.at > KEYFRAME_GROUP_MS) break;
    if (p.kind === 'video' && p.keyframe) start = i;
  }
  return start;
}
