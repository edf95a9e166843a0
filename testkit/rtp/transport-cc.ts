/**
 * Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01), the receiver's
 * half: what a browser tells the sender about every packet's arrival so the sender's bandwidth estimate (mediasoup's
 * GoogCC) can follow the link. libdatachannel has no such receiver, so a bot without it leaves mediasoup estimating
 * blind: simulcast layers are then never lowered for a bot on a slow link, nor raised for one on a fast link.
 */

export const TRANSPORT_CC_URI = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

/**
 * The SSRC mediasoup probes a viewer's link on (padding-only packets, never signalled). Those probes carry
 * transport-wide sequence numbers too, and a receiver must report them or the sender's estimate cannot grow;
 * libdatachannel drops packets of SSRCs its SDP does not name, so a bot names it (`withProbationSsrc`).
 */
export const MEDIASOUP_PROBATION_SSRC = 1234;

/** The SDP with mediasoup's probation SSRC added to its video section, so libdatachannel delivers the probes. */
export function withProbationSsrc(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const sections = sdp.split(/(?=^m=)/m);
  return sections
    .map((m) =>
      m.startsWith('m=video') && !m.includes(`a=ssrc:${MEDIASOUP_PROBATION_SSRC} `)
        ? `${m.replace(/(\r?\n)*$/, '')}${eol}a=ssrc:${MEDIASOUP_PROBATION_SSRC} cname:probator${eol}`
        : m,
    )
    .join('');
}

/** The transport-wide sequence number an RTP packet carries in header extension `id`, or null. */
export function transportSequence(packet: Uint8Array, id: number): number | null {
  if (packet.length < 12 || packet[0]! >> 6 !== 2 || !(packet[0]! & 0x10)) return null;
  const start = 12 + (packet[0]! & 0x0f) * 4;
  if (packet.length < start + 4) return null;
  const profile = (packet[start]! << 8) | packet[start + 1]!;
  const end = start + 4 + ((packet[start + 2]! << 8) | packet[start + 3]!) * 4;
  if (end > packet.length) return null;
  const twoByte = (profile & 0xfff0) === 0x1000;
  if (profile !== 0xbede && !twoByte) return null;
  for (let i = start + 4; i < end;) {
    const b = packet[i]!;
    if (b === 0) {
      i++;
      continue;
    }
    const extId = twoByte ? b : b >> 4;
    if (!twoByte && extId === 15) return null;
    const len = twoByte ? packet[i + 1]! : (b & 0x0f) + 1;
    const data = i + (twoByte ? 2 : 1);
    if (extId === id) return len >= 2 && data + 2 <= end ? (packet[data]! << 8) | packet[data + 1]! : null;
    i = data + len;
  }
  return null;
}

/** One feedback packet's content: the arrival of `count` consecutive transport sequence numbers from `baseSequence`. */
export interface TransportFeedback {
  senderSsrc: number;
  mediaSsrc: number;
  baseSequence: number;
  /** Arrival of each packet from `baseSequence` on, in 250 µs ticks of the receiver's clock; null = not received. */
  arrivals: (number | null)[];
  /** Feedback packets sent before this one (8 bits, wraps). */
  feedbackCount: number;
}

/** Ticks of the receive deltas (250 µs) in a reference-time unit (64 ms). */
const TICKS_PER_REFERENCE = 256;

/**
 * The RTCP transport-wide feedback packet (RTPFB, FMT 15): statuses in 2-bit status vector chunks (7 a chunk),
 * one-byte deltas where they fit, two-byte otherwise. Deltas must fit 16 bits signed (callers split long gaps).
 */
export function buildTransportFeedback(fb: TransportFeedback): Buffer {
  const first = fb.arrivals.find((a) => a !== null);
  if (first === undefined || first === null) throw new Error('a transport feedback needs at least one received packet');
  const reference = Math.floor(first / TICKS_PER_REFERENCE);
  const symbols: number[] = [];
  const deltas: number[] = [];
  let previous = reference * TICKS_PER_REFERENCE;
  for (const at of fb.arrivals) {
    if (at === null) {
      symbols.push(0);
      continue;
    }
    const delta = at - previous;
    previous = at;
    if (delta < -0x8000 || delta > 0x7fff) throw new Error('receive delta out of range');
    symbols.push(delta >= 0 && delta <= 255 ? 1 : 2);
    deltas.push(delta);
  }
  const chunks = Math.ceil(symbols.length / 7);
  const deltaBytes = deltas.reduce((n, d) => n + (d >= 0 && d <= 255 ? 1 : 2), 0);
  const length = Math.ceil((20 + chunks * 2 + deltaBytes) / 4) * 4;
  const buf = Buffer.alloc(length);
  buf[0] = 0x80 | 15 | (length > 20 + chunks * 2 + deltaBytes ? 0x20 : 0);
  buf[1] = 205;
  buf.writeUInt16BE(length / 4 - 1, 2);
  buf.writeUInt32BE(fb.senderSsrc >>> 0, 4);
  buf.writeUInt32BE(fb.mediaSsrc >>> 0, 8);
  buf.writeUInt16BE(fb.baseSequence & 0xffff, 12);
  buf.writeUInt16BE(fb.arrivals.length, 14);
  buf.writeUIntBE(reference & 0xffffff, 16, 3);
  buf[19] = fb.feedbackCount & 0xff;
  let o = 20;
  for (let c = 0; c < chunks; c++) {
    // status vector chunk: 1, symbol size 1 (two bits), seven symbols
    let chunk = 0xc000;
    for (let k = 0; k < 7; k++) chunk |= (symbols[c * 7 + k] ?? 0) << (12 - 2 * k);
    buf.writeUInt16BE(chunk, o);
    o += 2;
  }
  for (const d of deltas) {
    if (d >= 0 && d <= 255) buf[o++] = d;
    else {
      buf.writeInt16BE(d, o);
      o += 2;
    }
  }
  // RTCP padding: the last byte says how many bytes were added
  if (o < length) buf[length - 1] = length - o;
  return buf;
}

export interface TransportCcReceiverOptions {
  /** The id the transport-wide sequence extension has on this connection (from the SDP). */
  extensionId: number;
  /** Sends an RTCP packet to the sender (e.g. a libdatachannel track's `sendMessageBinary`); a throw closes the receiver. */
  send(rtcp: Buffer): void;
  /** How often feedback is sent, ms (browsers: 50–250 ms; default 100). */
  intervalMs?: number;
}

/** Most packets reported in one feedback (libwebrtc sends at most a few hundred). */
const MAX_PER_FEEDBACK = 500;

/**
 * Records the arrival of every packet carrying a transport-wide sequence number and reports them, as a browser
 * does, every `intervalMs`: received ones with their arrival times, gaps as lost (a packet that turns up after
 * being reported lost stays lost to the sender, as in libwebrtc).
 */
export class TransportCcReceiver {
  /** Feedback packets sent. */
  feedbackSent = 0;
  readonly #opts: TransportCcReceiverOptions;
  readonly #senderSsrc = (Math.random() * 2 ** 32) >>> 0;
  /** Arrival ticks by unwrapped sequence number, not yet reported. */
  readonly #arrivals = new Map<number, number>();
  /** Next unwrapped sequence number to report; null before the first packet. */
  #next: number | null = null;
  #highest = -1;
  #mediaSsrc = 0;
  #count = 0;
  #timer: NodeJS.Timeout;
  #closed = false;

  constructor(opts: TransportCcReceiverOptions) {
    this.#opts = opts;
    this.#timer = setInterval(() => this.flush(), opts.intervalMs ?? 100);
    this.#timer.unref();
  }

  /** Feeds one received packet (anything; packets without the extension are ignored). `atMs`: performance.now() ms. */
  received(packet: Uint8Array, atMs = performance.now()): void {
    if (this.#closed) return;
    const seq = transportSequence(packet, this.#opts.extensionId);
    if (seq === null) return;
    const unwrapped = this.#unwrap(seq);
    if (this.#next === null) this.#next = unwrapped;
    if (unwrapped < this.#next) return; // already reported as lost
    if (!this.#mediaSsrc) this.#mediaSsrc = ((packet[8]! << 24) | (packet[9]! << 16) | (packet[10]! << 8) | packet[11]!) >>> 0;
    this.#arrivals.set(unwrapped, Math.round(atMs * 4));
    if (unwrapped > this.#highest) this.#highest = unwrapped;
  }

  #unwrap(seq: number): number {
    if (this.#highest < 0) return seq;
    const delta = (seq - (this.#highest & 0xffff) + 0x10000) & 0xffff;
    return delta < 0x8000 ? this.#highest + delta : this.#highest + delta - 0x10000;
  }

  /** Reports every packet from the last report up to the highest received. */
  flush(): void {
    while (!this.#closed && this.#next !== null && this.#next <= this.#highest) {
      const base = this.#next;
      const arrivals: (number | null)[] = [];
      let previous: number | null = null;
      let seq = base;
      for (; seq <= this.#highest && arrivals.length < MAX_PER_FEEDBACK; seq++) {
        const at = this.#arrivals.get(seq) ?? null;
        // a gap too long for a two-byte delta ends this feedback (the next one starts a new reference time)
        if (at !== null && previous !== null && Math.abs(at - previous) > 0x7fff) break;
        if (at !== null) previous = at;
        arrivals.push(at);
        this.#arrivals.delete(seq);
      }
      this.#next = seq;
      while (arrivals.at(-1) === null) arrivals.pop(); // ends on a received packet (the rest wait for the next report)
      if (!arrivals.length) continue;
      this.#next = base + arrivals.length;
      const rtcp = buildTransportFeedback({
        senderSsrc: this.#senderSsrc,
        mediaSsrc: this.#mediaSsrc,
        baseSequence: base & 0xffff,
        arrivals,
        feedbackCount: this.#count++,
      });
      try {
        this.#opts.send(rtcp);
      } catch {
        // the track closed under the timer (e.g. the server ended the session): nothing more can be sent
        this.close();
        return;
      }
      this.feedbackSent++;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#arrivals.clear();
  }
}
