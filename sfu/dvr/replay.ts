/**
 * One viewer's time-shifted source: producers on a private DirectTransport,
 * fed from the channel's DvrBuffer at real-time pace (or faster, to catch up)
 * starting at a keyframe. Packets keep the program's SSRC, sequence numbers
 * and timestamps, so the stream the viewer decodes is the program itself,
 * shifted in time; audio and video stay in sync because they are replayed in
 * arrival order on one clock. A simulcast program is replayed with all its
 * layers (one encoding each, with Sender Reports), so a viewer's consumer
 * keeps choosing the layer its bandwidth allows in the past too.
 */
import type { types } from 'mediasoup';
import type { MediaKind } from '../sdp/offer.ts';
import { SenderReports } from '../sender-reports.ts';
import type { DvrBuffer } from './buffer.ts';
import { replayPacer, type Paced, type ReplayPacer } from './replay-pacer.ts';

export interface ReplayTrackSpec {
  kind: MediaKind;
  codec: types.RtpCodecParameters;
  /** The program's SSRC of each layer, lowest first (one for a single-layer track). */
  ssrcs: number[];
}

export interface ReplayOptions {
  buffer: DvrBuffer;
  router: types.Router;
  tracks: ReplayTrackSpec[];
  /** Absolute buffer index to start from (a video keyframe). */
  from: number;
  /** Playback rate until the live edge is within `liveEdgeMs` (or `rejoin` is reached), then 1. */
  catchUpRate?: number;
  /**
   * A timeline to catch up with instead of live: media (arrival) time `mediaAt` at wall time `wallAt`, moving on at
   * real time (a DVR keyframe recovery: where the viewer was, and would be now had its picture not frozen).
   */
  rejoin?: { mediaAt: number; wallAt: number };
  liveEdgeMs?: number;
  /** A video keyframe (of any layer) starts going out: a viewer's pending keyframe request is answered. */
  onKeyframe?: () => void;
  now?: () => number;
  /** The clock that sends what falls due (default: the process's). */
  pacer?: ReplayPacer;
}

export class ReplaySession implements Paced {
  readonly producers = new Map<MediaKind, types.Producer>();
  #transport: types.DirectTransport | null = null;
  #cursor: number;
  #mediaAt: number; // media (arrival) time of the cursor position
  #wallAt = 0; // wall time when #mediaAt was current
  #rate: number;
  #playing = false;
  #started = false;
  #closed = false;
  #reports: SenderReports | null = null;
  readonly #now: () => number;
  readonly #pacer: ReplayPacer;

  private constructor(private readonly opts: ReplayOptions) {
    this.#cursor = opts.from;
    this.#mediaAt = opts.buffer.at(opts.from)?.at ?? (opts.now ?? Date.now)();
    this.#rate = opts.catchUpRate ?? 1;
    this.#now = opts.now ?? Date.now;
    this.#pacer = opts.pacer ?? replayPacer;
  }

  static async create(opts: ReplayOptions): Promise<ReplaySession> {
    const s = new ReplaySession(opts);
    const transport = await opts.router.createDirectTransport();
    s.#transport = transport;
    s.#reports = new SenderReports({ send: (rtcp) => !transport.closed && transport.sendRtcp(rtcp) });
    for (const t of opts.tracks) {
      const producer = await s.#transport.produce({
        kind: t.kind,
        rtpParameters: {
          codecs: [t.codec],
          encodings: t.ssrcs.map((ssrc) => ({ ssrc })),
          headerExtensions: [],
          rtcp: { cname: 'whipcast', reducedSize: true },
        },
        appData: { replay: true },
      });
      s.producers.set(t.kind, producer);
    }
    return s;
  }

  get started(): boolean {
    return this.#started;
  }

  get paused(): boolean {
    return !this.#playing;
  }

  /** Media time the viewer sees now. */
  position(): number {
    if (!this.#playing) return this.#mediaAt;
    return this.#mediaAt + (this.#now() - this.#wallAt) * this.#rate;
  }

  /** How far behind live the viewer is, ms. */
  behindLiveMs(): number {
    return Math.max(0, this.#now() - this.position());
  }

  play(): void {
    if (this.#closed || this.#playing) return;
    if (!this.#started) this.#prime();
    this.#started = true;
    this.#playing = true;
    this.#wallAt = this.#now();
    this.pump(Infinity); // the keyframe goes now, not at the next tick
    this.#pacer.add(this);
  }

  pause(): void {
    if (!this.#playing) return;
    this.#mediaAt = this.position();
    this.#playing = false;
    this.#pacer.delete(this);
  }

  /**
   * mediasoup validates a new RTP stream with a probation of sequential
   * packets (RFC 3550 A.1) and drops them: without priming, the keyframe that
   * starts a replay would be lost and the viewer would wait a whole GOP. The
   * packets just before the start point (same stream, consecutive sequence
   * numbers, not part of the keyframe) are sent first and absorbed instead.
   */
  #prime(): void {
    const { buffer } = this.opts;
    for (const t of this.opts.tracks) {
      const producer = this.producers.get(t.kind)!;
      for (const ssrc of t.ssrcs) {
        const before: Buffer[] = [];
        for (let i = this.#cursor - 1; i >= buffer.start && before.length < 12 && this.#cursor - i < 4000 * t.ssrcs.length; i--) {
          const p = buffer.at(i)!;
          if (p.kind === t.kind && p.data.length >= 12 && p.data.readUInt32BE(8) === ssrc) before.unshift(p.data);
        }
        for (const data of before) producer.send(data);
      }
    }
  }

  /** The buffer got a new packet: a session at the live edge (it had sent everything before it) sends it at once. */
  notify(): void {
    if (this.#playing && this.#cursor >= this.opts.buffer.end - 1) this.pump(Infinity);
  }

  /** @internal Sends the packets due (at most `budget`); returns how many it went through. The pacer calls it every tick. */
  pump(budget: number): number {
    if (!this.#playing || this.#closed) return 0;
    const { buffer } = this.opts;
    const pos = this.position();
    if (this.#cursor < buffer.start) this.#cursor = buffer.start; // evicted under us: skip ahead
    let n = 0;
    while (n < budget && this.#cursor < buffer.end && buffer.arrivalAt(this.#cursor) <= pos) {
      const p = buffer.at(this.#cursor++)!;
      n++;
      const producer = this.producers.get(p.kind);
      if (producer && !producer.closed) {
        this.#reports?.onPacket(p.data);
        if (p.keyframe && p.kind === 'video') this.opts.onKeyframe?.();
        producer.send(p.data);
      }
    }
    const liveEdge = this.opts.liveEdgeMs ?? 150;
    const { rejoin } = this.opts;
    const caughtUp = rejoin !== undefined && pos >= rejoin.mediaAt + (this.#now() - rejoin.wallAt);
    if (this.#rate !== 1 && (caughtUp || (this.#cursor >= buffer.end - 1 && this.#now() - pos <= liveEdge))) {
      this.#mediaAt = pos;
      this.#wallAt = this.#now();
      this.#rate = 1;
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#playing = false;
    this.#pacer.delete(this);
    this.#transport?.close();
  }
}
