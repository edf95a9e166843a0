/**
 * RTCP Sender Reports for producers whipcast feeds itself (program layers,
 * DVR replays). mediasoup switches a simulcast consumer between layers only
 * when it can tell each layer's capture instant, which it learns from the
 * producer's Sender Reports: without them a viewer stays on the first layer it
 * got. One report per stream is sent at the first packet of a frame (its RTP
 * timestamp and the wall clock now), every `intervalMs`.
 */

/** Seconds from 1900 (NTP epoch) to 1970 (Unix epoch). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface SenderReportsOptions {
  /** Delivers a report as if the sender had sent it (`DirectTransport.sendRtcp`). */
  send: (rtcp: Buffer) => void;
  /** At most one report per stream this often (default 500 ms). */
  intervalMs?: number;
  /** Wall clock, ms since the Unix epoch. */
  now?: () => number;
}

interface StreamState {
  lastTs: number;
  lastReportAt: number;
  packets: number;
  octets: number;
}

export class SenderReports {
  readonly #streams = new Map<number, StreamState>();
  readonly #send: (rtcp: Buffer) => void;
  readonly #intervalMs: number;
  readonly #now: () => number;

  constructor(opts: SenderReportsOptions) {
    this.#send = opts.send;
    this.#intervalMs = opts.intervalMs ?? 500;
    this.#now = opts.now ?? Date.now;
  }

  /** An RTP packet (already carrying its final SSRC and timestamp) is being sent. */
  onPacket(packet: Buffer): void {
    if (packet.length < 12) return;
    const ssrc = packet.readUInt32BE(8);
    const ts = packet.readUInt32BE(4);
    let s = this.#streams.get(ssrc);
    if (!s) this.#streams.set(ssrc, (s = { lastTs: ts, lastReportAt: 0, packets: 0, octets: 0 }));
    s.packets++;
    s.octets += packet.length - 12;
    const newFrame = ts !== s.lastTs || s.lastReportAt === 0;
    s.lastTs = ts;
    if (!newFrame) return;
    const now = this.#now();
    if (now - s.lastReportAt < this.#intervalMs) return;
    s.lastReportAt = now;
    this.#send(senderReport(ssrc, now, ts, s.packets, s.octets));
  }

  /** Forgets the streams (a source change: the next packet reports at once). */
  reset(): void {
    this.#streams.clear();
  }
}

/** An RTCP Sender Report (RFC 3550 §6.4.1) without report blocks. */
export function senderReport(ssrc: number, wallMs: number, rtpTs: number, packets: number, octets: number): Buffer {
  const buf = Buffer.alloc(28);
  buf[0] = 0x80;
  buf[1] = 200;
  buf.writeUInt16BE(6, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  const seconds = Math.floor(wallMs / 1000);
  buf.writeUInt32BE((seconds + NTP_UNIX_OFFSET_S) >>> 0, 8);
  buf.writeUInt32BE(Math.floor(((wallMs - seconds * 1000) / 1000) * 2 ** 32) >>> 0, 12);
  buf.writeUInt32BE(rtpTs >>> 0, 16);
  buf.writeUInt32BE(packets >>> 0, 20);
  buf.writeUInt32BE(octets >>> 0, 24);
  return buf;
}
