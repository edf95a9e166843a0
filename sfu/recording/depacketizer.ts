/**
 * RTP → coded frames, the part every codec shares: packets are put back in
 * sequence order (late retransmissions included), a frame ends on the marker
 * bit or when the timestamp changes, and loss is handled honestly:
 *
 * - a frame that lost any packet is dropped, never written half-decoded;
 * - after a dropped video frame every delta frame is dropped until the next
 *   keyframe (a decoder could not reconstruct them), so a recording shows a
 *   short freeze instead of corrupted pictures;
 * - audio frames are independent: a lost Opus packet is just 20 ms missing.
 *
 * Codec subclasses only parse payloads.
 */
import { ReorderBuffer, parseRtpHeader, type ReorderOptions, type RtpView } from './rtp.ts';
import type { CodedFrame, DepacketizerStats, VideoConfig } from './types.ts';

export type DepacketizerOptions = ReorderOptions;

/** What a codec makes of the payloads of one frame. */
export interface AssembledFrame {
  data: Uint8Array;
  keyframe: boolean;
  config?: VideoConfig;
}

export abstract class Depacketizer {
  readonly stats: DepacketizerStats = { frames: 0, droppedFrames: 0, lostPackets: 0 };
  /** Video waits for a keyframe at the start and after loss; audio never waits. */
  protected abstract readonly needsKeyframe: boolean;
  readonly #reorder: ReorderBuffer;
  #ts: number | null = null;
  #arrivalMs = 0;
  #damaged = false;
  #waiting = true;
  #seen = false;

  constructor(opts: DepacketizerOptions = {}) {
    this.#reorder = new ReorderBuffer(opts);
  }

  /** Feeds one RTP packet; returns the frames it completed (usually zero or one). */
  push(packet: Uint8Array, arrivalMs: number): CodedFrame[] {
    const rtp = parseRtpHeader(packet);
    if (!rtp) return [];
    const out: CodedFrame[] = [];
    for (const p of this.#reorder.push(rtp, arrivalMs)) this.#take(p.rtp, p.arrivalMs, p.lostBefore, out);
    return out;
  }

  #take(rtp: RtpView, arrivalMs: number, lostBefore: number, out: CodedFrame[]): void {
    if (this.#ts !== null && rtp.timestamp !== this.#ts) {
      // the previous frame ended without its marker: complete only if nothing was lost in between
      if (lostBefore > 0) this.#damaged = true;
      this.#finish(out);
    }
    if (!this.#seen) {
      // the first packet we see may be the middle of a frame (a reader starting anywhere in a buffer)
      this.#seen = true;
      if (!this.startsFrame(rtp.payload)) this.#damaged = true;
    }
    if (lostBefore > 0) {
      this.stats.lostPackets += lostBefore;
      // the lost packets may have been the head of this frame unless this packet provably starts it;
      // if it does, they were a whole frame of their own, which later delta frames may reference
      if (this.#ts !== null || !this.startsFrame(rtp.payload)) this.#damaged = true;
      else if (this.needsKeyframe) this.#waiting = true;
    }
    if (this.#ts === null) this.#arrivalMs = arrivalMs;
    this.#ts = rtp.timestamp;
    if (!this.addPayload(rtp.payload)) this.#damaged = true;
    if (this.endsFrame(rtp)) this.#finish(out);
  }

  #finish(out: CodedFrame[]): void {
    const ts = this.#ts!;
    const damaged = this.#damaged;
    this.#ts = null;
    this.#damaged = false;
    const frame = this.assemble();
    if (!frame || damaged) {
      if (frame || damaged) this.stats.droppedFrames++;
      if (this.needsKeyframe) this.#waiting = true;
      return;
    }
    if (this.needsKeyframe && this.#waiting) {
      if (!frame.keyframe) {
        this.stats.droppedFrames++;
        return;
      }
      this.#waiting = false;
    }
    this.stats.frames++;
    out.push({
      rtpTimestamp: ts,
      arrivalMs: this.#arrivalMs,
      keyframe: frame.keyframe,
      data: frame.data,
      ...(frame.config ? { config: frame.config } : {}),
    });
  }

  /** Adds one payload to the frame being assembled; false when it is malformed. */
  protected abstract addPayload(payload: Uint8Array): boolean;
  /** Builds the frame from the payloads added since the last call and resets; null when there is nothing usable. */
  protected abstract assemble(): AssembledFrame | null;
  /** True when this payload is certainly the first of its frame (so loss before it did not touch it). */
  protected abstract startsFrame(payload: Uint8Array): boolean;
  /** True when this packet is the last of its frame. */
  protected endsFrame(rtp: RtpView): boolean {
    return rtp.marker;
  }
}
