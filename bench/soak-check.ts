/** Media kinds a soak viewer must keep receiving. */
export type SoakKind = 'audio' | 'video';

/** What one viewer received of one kind over the whole run. */
export interface SoakTrackResult {
  /** The viewer's name, as given to {@link SoakChecker.packet}. */
  viewer: string;
  kind: SoakKind;
  /** RTP packets received in sequence order (duplicates and late packets not counted). */
  packets: number;
  /** Complete frames (video: marker bit; audio: every packet) received. */
  frames: number;
  /** RTP packets missing from the sequence-number runs (one per SSRC, wrap-aware). */
  lost: number;
  /** Longest time without a frame, counting the run's start and end, in ms. */
  maxGapMs: number;
  /** When that gap ended, ms after the viewer's clock started (lines up the viewers that stalled together). */
  maxGapEndMs: number;
}

/** The checker's verdict. */
export interface SoakVerdict {
  ok: boolean;
  tracks: SoakTrackResult[];
  /** One line per failing viewer track, naming the viewer. */
  failures: string[];
}

/** Options of {@link SoakChecker}. */
export interface SoakCheckerOptions {
  /** Longest allowed time without a received frame, in ms (default 1000). */
  maxGapMs?: number;
  /** Allowed lost packets as a fraction of expected packets per track (default 0.01). */
  maxLossFraction?: number;
}

interface Track {
  packets: number;
  frames: number;
  lost: number;
  /** Last sequence number per SSRC: a viewer may be handed from one stream of a kind to another (instant start). */
  lastSeq: Map<number, number>;
  startAt: number;
  lastFrameAt: number;
  maxGapMs: number;
  maxGapEnd: number;
}

/**
 * Judges every soak viewer's continuity: each viewer must receive both audio and video with no gap
 * longer than `maxGapMs` between frames from start() to finish(), and lose no more than
 * `maxLossFraction` of RTP packets (from sequence-number gaps). Failing viewers are named.
 */
export class SoakChecker {
  readonly #maxGapMs: number;
  readonly #maxLoss: number;
  readonly #tracks = new Map<string, Map<SoakKind, Track>>();

  constructor({ maxGapMs = 1000, maxLossFraction = 0.01 }: SoakCheckerOptions = {}) {
    this.#maxGapMs = maxGapMs;
    this.#maxLoss = maxLossFraction;
  }

  /** Registers a viewer that must receive both kinds, and starts its clock at `at` (ms). */
  addViewer(viewer: string, at: number): void {
    const kinds = new Map<SoakKind, Track>();
    for (const kind of ['audio', 'video'] as const)
      kinds.set(kind, { packets: 0, frames: 0, lost: 0, lastSeq: new Map(), startAt: at, lastFrameAt: at, maxGapMs: 0, maxGapEnd: at });
    this.#tracks.set(viewer, kinds);
  }

  /**
   * Records one RTP packet of stream `ssrc` a viewer received at `at` (ms); `frameEnd` marks a
   * complete video frame. Sequence numbers are followed per SSRC; gaps are judged per kind.
   */
  packet(viewer: string, kind: SoakKind, seq: number, at: number, frameEnd: boolean, ssrc = 0): void {
    const t = this.#tracks.get(viewer)?.get(kind);
    if (!t) throw new Error(`soak: unknown viewer ${viewer}`);
    const last = t.lastSeq.get(ssrc);
    if (last !== undefined) {
      const delta = (seq - last) & 0xffff;
      if (delta === 0 || delta > 0x8000) return; // duplicate or late retransmission: neither loss nor progress
      t.lost += delta - 1;
    }
    t.packets++;
    t.lastSeq.set(ssrc, seq);
    if (kind === 'audio' || frameEnd) {
      t.frames++;
      if (at - t.lastFrameAt > t.maxGapMs) {
        t.maxGapMs = at - t.lastFrameAt;
        t.maxGapEnd = at;
      }
      t.lastFrameAt = at;
    }
  }

  /** Ends the run at `at` (ms) and judges every viewer. */
  finish(at: number): SoakVerdict {
    const tracks: SoakTrackResult[] = [];
    const failures: string[] = [];
    for (const [viewer, kinds] of this.#tracks) {
      for (const [kind, t] of kinds) {
        const endGap = at - t.lastFrameAt > t.maxGapMs;
        const maxGapMs = endGap ? at - t.lastFrameAt : t.maxGapMs;
        const maxGapEndMs = (endGap ? at : t.maxGapEnd) - t.startAt;
        tracks.push({ viewer, kind, packets: t.packets, frames: t.frames, lost: t.lost, maxGapMs, maxGapEndMs });
        const why: string[] = [];
        if (maxGapMs > this.#maxGapMs)
          why.push(`no ${kind} frame for ${Math.round(maxGapMs)} ms (until ${(maxGapEndMs / 1000).toFixed(1)} s into the window)`);
        const expected = t.packets + t.lost;
        if (expected && t.lost / expected > this.#maxLoss) why.push(`${t.lost} of ${expected} ${kind} packets lost`);
        if (why.length) failures.push(`${viewer}: ${why.join(', ')}`);
      }
    }
    return { ok: failures.length === 0, tracks, failures };
  }
}
