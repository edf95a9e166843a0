/** RTP (RFC 3550) header building and parsing, with RFC 8285 header extensions. */

export interface RtpHeader {
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
  /** One-byte-header extensions by id (RFC 8285), when present. */
  extensions?: Map<number, Uint8Array>;
}

export interface RtpPacket extends RtpHeader {
  payload: Uint8Array;
  /** Total header length in bytes (payload starts here). */
  headerLength: number;
}

export function isRtcp(buf: Uint8Array): boolean {
  // RTCP packet types 192–223 sit where RTP has marker+payload type (RFC 5761).
  const pt = buf[1]!;
  return buf.length >= 4 && pt >= 192 && pt <= 223;
}

export function buildRtp(h: RtpHeader, payload: Uint8Array): Buffer {
  let extBytes = 0;
  let extBlock: Buffer | null = null;
  if (h.extensions?.size) {
    const parts: Buffer[] = [];
    for (const [id, data] of h.extensions) {
      if (id < 1 || id > 14 || data.length < 1 || data.length > 16) throw new Error(`one-byte extension ${id} out of range`);
      parts.push(Buffer.from([(id << 4) | (data.length - 1)]), Buffer.from(data));
    }
    let body = Buffer.concat(parts);
    const padded = Math.ceil(body.length / 4) * 4;
    body = Buffer.concat([body, Buffer.alloc(padded - body.length)]);
    extBlock = Buffer.alloc(4 + body.length);
    extBlock.writeUInt16BE(0xbede, 0);
    extBlock.writeUInt16BE(body.length / 4, 2);
    body.copy(extBlock, 4);
    extBytes = extBlock.length;
  }
  const buf = Buffer.allocUnsafe(12 + extBytes + payload.length);
  buf[0] = 0x80 | (extBlock ? 0x10 : 0);
  buf[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  buf.writeUInt16BE(h.sequenceNumber & 0xffff, 2);
  buf.writeUInt32BE(h.timestamp >>> 0, 4);
  buf.writeUInt32BE(h.ssrc >>> 0, 8);
  if (extBlock) extBlock.copy(buf, 12);
  buf.set(payload, 12 + extBytes);
  return buf;
}

/** Parses an RTP packet; returns null for anything that is not one. */
export function parseRtp(buf: Uint8Array): RtpPacket | null {
  if (buf.length < 12 || buf[0]! >> 6 !== 2 || isRtcp(buf)) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const cc = buf[0]! & 0x0f;
  let offset = 12 + cc * 4;
  let extensions: Map<number, Uint8Array> | undefined;
  if (buf[0]! & 0x10) {
    if (buf.length < offset + 4) return null;
    const profile = view.getUint16(offset);
    const words = view.getUint16(offset + 2);
    const start = offset + 4;
    const end = start + words * 4;
    if (end > buf.length) return null;
    extensions = new Map();
    if (profile === 0xbede) {
      for (let i = start; i < end;) {
        const b = buf[i]!;
        if (b === 0) {
          i++;
          continue;
        }
        const id = b >> 4;
        const len = (b & 0x0f) + 1;
        if (id === 15) break;
        extensions.set(id, buf.subarray(i + 1, i + 1 + len));
        i += 1 + len;
      }
    } else if ((profile & 0xfff0) === 0x1000) {
      for (let i = start; i < end;) {
        const id = buf[i]!;
        if (id === 0) {
          i++;
          continue;
        }
        const len = buf[i + 1]!;
        extensions.set(id, buf.subarray(i + 2, i + 2 + len));
        i += 2 + len;
      }
    }
    offset = end;
  }
  let payloadEnd = buf.length;
  if (buf[0]! & 0x20) payloadEnd -= buf[buf.length - 1]!;
  if (payloadEnd < offset) return null;
  return {
    payloadType: buf[1]! & 0x7f,
    marker: (buf[1]! & 0x80) !== 0,
    sequenceNumber: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    ...(extensions ? { extensions } : {}),
    payload: buf.subarray(offset, payloadEnd),
    headerLength: offset,
  };
}

export interface RtcpSummary {
  /** RTCP packet type of each packet in the compound packet. */
  types: number[];
  /** SSRCs a PLI or FIR asked a keyframe for. */
  keyframeRequests: number[];
  /** Sequence numbers NACKed, by media SSRC. */
  nacks: { ssrc: number; seqs: number[] }[];
  /** Sender reports: SSRC with NTP and RTP times. */
  senderReports: { ssrc: number; ntpMs: number; rtpTimestamp: number }[];
}

/** An RTCP Sender Report (RFC 3550 §6.4.1) without report blocks: `rtpTimestamp` is the media time at `wallMs`. */
export function buildSenderReport(ssrc: number, wallMs: number, rtpTimestamp: number, packets: number, octets: number): Buffer {
  const buf = Buffer.alloc(28);
  buf[0] = 0x80;
  buf[1] = 200;
  buf.writeUInt16BE(6, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  const seconds = Math.floor(wallMs / 1000);
  buf.writeUInt32BE((seconds + 2_208_988_800) >>> 0, 8);
  buf.writeUInt32BE(Math.floor(((wallMs - seconds * 1000) / 1000) * 2 ** 32) >>> 0, 12);
  buf.writeUInt32BE(rtpTimestamp >>> 0, 16);
  buf.writeUInt32BE(packets >>> 0, 20);
  buf.writeUInt32BE(octets >>> 0, 24);
  return buf;
}

/** Walks a compound RTCP packet and extracts what tests care about. */
export function parseRtcp(buf: Uint8Array): RtcpSummary {
  const out: RtcpSummary = { types: [], keyframeRequests: [], nacks: [], senderReports: [] };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off + 4 <= buf.length;) {
    const fmt = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    const len = (view.getUint16(off + 2) + 1) * 4;
    if (off + len > buf.length) break;
    out.types.push(pt);
    if (pt === 200 && len >= 28) {
      const secs = view.getUint32(off + 8);
      const frac = view.getUint32(off + 12);
      out.senderReports.push({
        ssrc: view.getUint32(off + 4),
        ntpMs: (secs - 2_208_988_800) * 1000 + (frac / 2 ** 32) * 1000,
        rtpTimestamp: view.getUint32(off + 16),
      });
    } else if (pt === 206 && (fmt === 1 || fmt === 4) && len >= 12) {
      out.keyframeRequests.push(fmt === 1 ? view.getUint32(off + 8) : view.getUint32(off + 12));
    } else if (pt === 205 && fmt === 1 && len >= 16) {
      const ssrc = view.getUint32(off + 8);
      const seqs: number[] = [];
      for (let i = off + 12; i + 4 <= off + len; i += 4) {
        const pid = view.getUint16(i);
        const blp = view.getUint16(i + 2);
        seqs.push(pid);
        for (let b = 0; b < 16; b++) if (blp & (1 << b)) seqs.push((pid + b + 1) & 0xffff);
      }
      out.nacks.push({ ssrc, seqs });
    }
    off += len;
  }
  return out;
}
