/**
 * H.264 over RTP (RFC 6184, packetization-mode 1): Annex-B parsing, access-unit
 * grouping, packetizing (single NAL, STAP-A, FU-A), depacketizing, and the SEI
 * capture-time stamps tests use to know which moment of the stream a frame is.
 */

export const NAL = { SLICE: 1, IDR: 5, SEI: 6, SPS: 7, PPS: 8, AUD: 9, STAP_A: 24, FU_A: 28 } as const;

export const nalType = (nal: Uint8Array): number => nal[0]! & 0x1f;

/** Splits an Annex-B byte stream on its start codes. */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  for (let i = 0; i + 2 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        while (end > start && data[end - 1] === 0) end--;
        nals.push(data.subarray(start, end));
      }
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0 && start < data.length) nals.push(data.subarray(start));
  return nals.filter((n) => n.length > 0);
}

export interface AccessUnit {
  nals: Uint8Array[];
  /** An IDR slice is present (with SPS/PPS when the encoder repeats headers). */
  keyframe: boolean;
}

const isVcl = (t: number) => t >= 1 && t <= 5;
/** first_mb_in_slice == 0 ⇔ the slice header's first ue(v) bit is 1. */
const startsPicture = (nal: Uint8Array) => isVcl(nalType(nal)) && nal.length > 1 && (nal[1]! & 0x80) !== 0;

/** Groups NAL units into access units (one per frame). */
export function accessUnits(nals: Uint8Array[]): AccessUnit[] {
  const units: AccessUnit[] = [];
  let current: Uint8Array[] = [];
  let hasVcl = false;
  const flush = () => {
    if (current.length && hasVcl) units.push({ nals: current, keyframe: current.some((n) => nalType(n) === NAL.IDR) });
    current = [];
    hasVcl = false;
  };
  for (const nal of nals) {
    const t = nalType(nal);
    if (hasVcl && (!isVcl(t) || startsPicture(nal))) flush();
    current.push(nal);
    if (isVcl(t)) hasVcl = true;
  }
  flush();
  return units;
}

/**
 * RTP payloads for one access unit: small leading NALs (SPS, PPS, SEI) are
 * aggregated into a STAP-A, large ones fragmented into FU-As.
 */
export function packetizeH264(nals: Uint8Array[], mtu = 1200): Uint8Array[] {
  const out: Uint8Array[] = [];
  let stap: Uint8Array[] = [];
  let stapSize = 1;
  const flushStap = () => {
    if (stap.length === 1) out.push(stap[0]!);
    else if (stap.length > 1) {
      const buf = Buffer.allocUnsafe(stapSize);
      let nri = 0;
      for (const n of stap) nri = Math.max(nri, n[0]! & 0x60);
      buf[0] = nri | NAL.STAP_A;
      let off = 1;
      for (const n of stap) {
        buf.writeUInt16BE(n.length, off);
        buf.set(n, off + 2);
        off += 2 + n.length;
      }
      out.push(buf);
    }
    stap = [];
    stapSize = 1;
  };
  for (const nal of nals) {
    if (nal.length + 2 + stapSize <= mtu) {
      stap.push(nal);
      stapSize += 2 + nal.length;
      continue;
    }
    flushStap();
    if (nal.length <= mtu) {
      out.push(nal);
      continue;
    }
    const header = nal[0]!;
    const chunk = mtu - 2;
    for (let off = 1; off < nal.length; off += chunk) {
      const end = Math.min(off + chunk, nal.length);
      const fu = Buffer.allocUnsafe(2 + end - off);
      fu[0] = (header & 0xe0) | NAL.FU_A;
      fu[1] = (off === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | (header & 0x1f);
      fu.set(nal.subarray(off, end), 2);
      out.push(fu);
    }
  }
  flushStap();
  return out;
}

export interface ReceivedFrame {
  rtpTimestamp: number;
  nals: Uint8Array[];
  keyframe: boolean;
  /** SPS and PPS were in the frame (a decoder can start here). */
  decodable: boolean;
  stamp: CaptureStamp | null;
  /** Packets missing inside the frame (it arrived incomplete). */
  incomplete: boolean;
}

/**
 * Reassembles frames from RTP payloads of one stream. Frames end on the
 * marker bit or on a timestamp change; a sequence gap marks the frame incomplete.
 */
export class H264Depacketizer {
  #nals: Uint8Array[] = [];
  #fu: Uint8Array[] | null = null;
  #ts: number | null = null;
  #lastSeq: number | null = null;
  #broken = false;

  constructor(private readonly onFrame: (frame: ReceivedFrame) => void) {}

  push(payload: Uint8Array, timestamp: number, sequenceNumber: number, marker: boolean): void {
    if (this.#ts !== null && timestamp !== this.#ts) this.#emit();
    if (this.#lastSeq !== null && ((this.#lastSeq + 1) & 0xffff) !== sequenceNumber) this.#broken = true;
    this.#lastSeq = sequenceNumber;
    this.#ts = timestamp;
    if (payload.length === 0) return;
    const t = payload[0]! & 0x1f;
    if (t === NAL.STAP_A) {
      for (let off = 1; off + 2 <= payload.length;) {
        const len = (payload[off]! << 8) | payload[off + 1]!;
        this.#nals.push(payload.subarray(off + 2, off + 2 + len));
        off += 2 + len;
      }
    } else if (t === NAL.FU_A) {
      const start = (payload[1]! & 0x80) !== 0;
      const end = (payload[1]! & 0x40) !== 0;
      if (start) this.#fu = [Buffer.from([(payload[0]! & 0xe0) | (payload[1]! & 0x1f)])];
      if (!this.#fu) {
        this.#broken = true;
        return;
      }
      this.#fu.push(payload.subarray(2));
      if (end) {
        this.#nals.push(Buffer.concat(this.#fu));
        this.#fu = null;
      }
    } else {
      this.#nals.push(payload);
    }
    if (marker) this.#emit();
  }

  #emit(): void {
    if (this.#nals.length && this.#ts !== null) {
      const types = new Set(this.#nals.map(nalType));
      const keyframe = types.has(NAL.IDR);
      this.onFrame({
        rtpTimestamp: this.#ts,
        nals: this.#nals,
        keyframe,
        decodable: keyframe && types.has(NAL.SPS) && types.has(NAL.PPS),
        stamp: findStamp(this.#nals),
        incomplete: this.#broken || this.#fu !== null,
      });
    }
    this.#nals = [];
    this.#fu = null;
    this.#ts = null;
    this.#broken = false;
  }
}

/* ---- Capture-time stamps in SEI user_data_unregistered ---- */

/** Identifies whipcast's stamp SEI among other user data. */
const STAMP_UUID = Buffer.from('77686970636173742d7374616d700001', 'hex');

export interface CaptureStamp {
  /** Wall-clock capture time, microseconds since the epoch. */
  captureUs: number;
  /** Frame counter of the publisher. */
  frame: number;
}

/** Microseconds since the epoch, from a monotonic clock (comparable across processes on one host). */
export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

function addEmulationPrevention(rbsp: Uint8Array): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}

function removeEmulationPrevention(ebsp: Uint8Array): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of ebsp) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}

/** An SEI NAL carrying the capture time and frame counter. */
export function stampSei(stamp: CaptureStamp): Buffer {
  const data = Buffer.alloc(12);
  data.writeBigUInt64BE(BigInt(stamp.captureUs), 0);
  data.writeUInt32BE(stamp.frame >>> 0, 8);
  const payload = Buffer.concat([STAMP_UUID, data]);
  const rbsp = Buffer.concat([Buffer.from([5, payload.length]), payload, Buffer.from([0x80])]);
  return Buffer.concat([Buffer.from([NAL.SEI]), addEmulationPrevention(rbsp)]);
}

export function readStamp(nal: Uint8Array): CaptureStamp | null {
  if (nalType(nal) !== NAL.SEI) return null;
  const rbsp = removeEmulationPrevention(nal.subarray(1));
  if (rbsp[0] !== 5 || rbsp.length < 2 + 28) return null;
  if (!rbsp.subarray(2, 18).equals(STAMP_UUID)) return null;
  return { captureUs: Number(rbsp.readBigUInt64BE(18)), frame: rbsp.readUInt32BE(26) };
}

export function findStamp(nals: Uint8Array[]): CaptureStamp | null {
  for (const n of nals) {
    const s = readStamp(n);
    if (s) return s;
  }
  return null;
}

/** The access unit with a stamp SEI inserted after its parameter sets (before the first slice). */
export function withStamp(nals: Uint8Array[], stamp: CaptureStamp): Uint8Array[] {
  const at = nals.findIndex((n) => isVcl(nalType(n)));
  const sei = stampSei(stamp);
  return at < 0 ? [...nals, sei] : [...nals.slice(0, at), sei, ...nals.slice(at)];
}

/** Reads profile_idc, constraint flags and level_idc from an SPS as a profile-level-id hex string. */
export function spsProfileLevelId(sps: Uint8Array): string {
  return Buffer.from(sps.subarray(1, 4)).toString('hex');
}

/** An Annex-B byte stream of NAL units (what ffmpeg reads with `-f h264`). */
export function joinAnnexB(nals: Uint8Array[]): Buffer {
  const start = Buffer.from([0, 0, 0, 1]);
  return Buffer.concat(nals.flatMap((n) => [start, n]));
}
