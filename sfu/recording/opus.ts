/** Opus over RTP (RFC 7587): one packet is one frame, every frame independent. */
import { Depacketizer, type AssembledFrame } from './depacketizer.ts';
import type { RtpView } from './rtp.ts';

export class OpusDepacketizer extends Depacketizer {
  protected readonly needsKeyframe = false;
  #payload: Uint8Array | null = null;

  protected addPayload(payload: Uint8Array): boolean {
    if (payload.length === 0 || this.#payload) return false;
    this.#payload = payload;
    return true;
  }

  protected startsFrame(): boolean {
    return true;
  }

  protected override endsFrame(_rtp: RtpView): boolean {
    return true;
  }

  protected assemble(): AssembledFrame | null {
    const data = this.#payload;
    this.#payload = null;
    return data ? { data, keyframe: true } : null;
  }
}

/** Duration of an Opus packet in 48 kHz samples, from its TOC byte and frame count (RFC 6716 §3.1), or 0 when malformed. */
export function opusPacketSamples(packet: Uint8Array): number {
  if (packet.length < 1) return 0;
  const config = packet[0]! >> 3;
  const frameSamples =
    config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? [480, 960][config & 1]! : [120, 240, 480, 960][config & 3]!;
  const code = packet[0]! & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frameSamples * frames;
}
