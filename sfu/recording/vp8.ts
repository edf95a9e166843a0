/**
 * VP8 over RTP (RFC 7741): the payload descriptor is stripped and the
 * partitions of one frame concatenated; the frame is a key frame when the
 * first byte of partition 0 has P = 0, and its size is read from the key
 * frame header (RFC 6386 §9.1).
 */
import { Depacketizer, type AssembledFrame } from './depacketizer.ts';
import type { VideoConfig } from './types.ts';

/** Length of the VP8 payload descriptor, or -1 when malformed. */
function descriptorLength(p: Uint8Array): number {
  if (p.length < 1) return -1;
  let i = 1;
  if (p[0]! & 0x80) {
    const x = p[i++];
    if (x === undefined) return -1;
    if (x & 0x80) {
      const pid = p[i];
      if (pid === undefined) return -1;
      i += pid & 0x80 ? 2 : 1;
    }
    if (x & 0x40) i++; // TL0PICIDX
    if (x & 0x30) i++; // TID / KEYIDX
  }
  return i <= p.length ? i : -1;
}

export class Vp8Depacketizer extends Depacketizer {
  protected readonly needsKeyframe = true;
  #parts: Uint8Array[] = [];
  #started = false;
  #config: VideoConfig | null = null;

  /** The current stream configuration (after the first key frame). */
  get config(): VideoConfig | null {
    return this.#config;
  }

  protected addPayload(payload: Uint8Array): boolean {
    const len = descriptorLength(payload);
    if (len < 0) return false;
    const start = (payload[0]! & 0x10) !== 0 && (payload[0]! & 0x07) === 0;
    if (start) {
      if (this.#started) return false; // two frame starts under one timestamp
      this.#started = true;
    } else if (!this.#started) return false; // the frame's start was not seen
    if (payload.length > len) this.#parts.push(payload.subarray(len));
    return true;
  }

  protected startsFrame(payload: Uint8Array): boolean {
    return (payload[0]! & 0x10) !== 0 && (payload[0]! & 0x07) === 0;
  }

  protected assemble(): AssembledFrame | null {
    const parts = this.#parts;
    const started = this.#started;
    this.#parts = [];
    this.#started = false;
    if (!started || parts.length === 0) return null;
    const data = Buffer.concat(parts);
    const keyframe = (data[0]! & 0x01) === 0;
    let config: VideoConfig | undefined;
    if (keyframe) {
      if (data.length < 10 || data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) return null;
      const width = data.readUInt16LE(6) & 0x3fff;
      const height = data.readUInt16LE(8) & 0x3fff;
      if (!this.#config || this.#config.width !== width || this.#config.height !== height) {
        config = this.#config = { codec: 'vp8', width, height, codecString: 'vp8' };
      }
    }
    return { data, keyframe, ...(config ? { config } : {}) };
  }
}
