/**
 * H.264 over RTP (RFC 6184, packetization-mode 0/1): single NAL units, STAP-A
 * and FU-A reassembled into access units stored as AVCC (4-byte length
 * prefixes). SPS/PPS stay in band (OBS repeats them before each IDR) and are
 * also collected into the avcC sample description; a new SPS (a publisher
 * that reconnects at another resolution) yields a new config.
 */
import { BitReader } from './bits.ts';
import { Depacketizer, type AssembledFrame } from './depacketizer.ts';
import type { VideoConfig } from './types.ts';

const SLICE = 1;
const IDR = 5;
const SPS = 7;
const PPS = 8;
const AUD = 9;
const STAP_A = 24;
const FU_A = 28;

export class H264Depacketizer extends Depacketizer {
  protected readonly needsKeyframe = true;
  #nals: Uint8Array[] = [];
  #fu: Uint8Array[] | null = null;
  #sps: Uint8Array | null = null;
  #pps: Uint8Array | null = null;
  #config: VideoConfig | null = null;

  /** The current stream configuration (after the first keyframe). */
  get config(): VideoConfig | null {
    return this.#config;
  }

  protected addPayload(payload: Uint8Array): boolean {
    if (payload.length < 1) return false;
    const type = payload[0]! & 0x1f;
    if (type === STAP_A) {
      for (let off = 1; off < payload.length;) {
        if (off + 2 > payload.length) return false;
        const len = (payload[off]! << 8) | payload[off + 1]!;
        if (len === 0 || off + 2 + len > payload.length) return false;
        this.#nals.push(payload.subarray(off + 2, off + 2 + len));
        off += 2 + len;
      }
      return true;
    }
    if (type === FU_A) {
      if (payload.length < 3) return false;
      const start = (payload[1]! & 0x80) !== 0;
      const end = (payload[1]! & 0x40) !== 0;
      if (start) {
        if (this.#fu) return false; // previous fragment never ended
        this.#fu = [Uint8Array.of((payload[0]! & 0xe0) | (payload[1]! & 0x1f))];
      } else if (!this.#fu) return false; // continuation without a start
      this.#fu.push(payload.subarray(2));
      if (end) {
        this.#nals.push(Buffer.concat(this.#fu));
        this.#fu = null;
      }
      return true;
    }
    if (type === 0 || type > 23) return false; // STAP-B, MTAP, FU-B: not in packetization-mode 1
    this.#nals.push(payload);
    return true;
  }

  protected startsFrame(payload: Uint8Array): boolean {
    const type = payload[0]! & 0x1f;
    if (type === FU_A && ((payload[1] ?? 0) & 0x80) === 0) return false;
    const first = type === STAP_A ? (payload[3] ?? 0) : type === FU_A ? (payload[1] ?? 0) : payload[0]!;
    const t = first & 0x1f;
    if (t === SPS || t === AUD) return true;
    // a slice with first_mb_in_slice == 0 opens a picture (its ue(v) starts with a 1 bit)
    const sliceHeader = type === STAP_A ? payload[4] : type === FU_A ? payload[2] : payload[1];
    return (t === SLICE || t === IDR) && sliceHeader !== undefined && (sliceHeader & 0x80) !== 0;
  }

  protected assemble(): AssembledFrame | null {
    const nals = this.#nals;
    const incomplete = this.#fu !== null;
    this.#nals = [];
    this.#fu = null;
    if (incomplete) return null;
    let keyframe = false;
    let hasSlice = false;
    let size = 0;
    const kept: Uint8Array[] = [];
    let sps: Uint8Array | null = null;
    let pps: Uint8Array | null = null;
    for (const n of nals) {
      const t = n[0]! & 0x1f;
      if (t === AUD) continue;
      if (t === IDR) keyframe = true;
      if (t >= SLICE && t <= IDR) hasSlice = true;
      if (t === SPS) sps = n;
      if (t === PPS) pps = n;
      kept.push(n);
      size += 4 + n.length;
    }
    if (!hasSlice) return null;
    let config: VideoConfig | undefined;
    if (sps && pps && (!this.#sps || !Buffer.from(sps).equals(this.#sps) || !this.#pps || !Buffer.from(pps).equals(this.#pps))) {
      const parsed = parseSps(sps);
      if (parsed) {
        this.#sps = Buffer.from(sps);
        this.#pps = Buffer.from(pps);
        config = this.#config = {
          codec: 'h264',
          width: parsed.width,
          height: parsed.height,
          codecString: `avc1.${Buffer.from(sps.subarray(1, 4)).toString('hex')}`,
          description: avcC(this.#sps, this.#pps),
        };
      }
    }
    // an IDR is only a place to start decoding once the parameter sets are known
    if (keyframe && !this.#config) keyframe = false;
    const data = Buffer.allocUnsafe(size);
    let off = 0;
    for (const n of kept) {
      data.writeUInt32BE(n.length, off);
      data.set(n, off + 4);
      off += 4 + n.length;
    }
    return { data, keyframe, ...(config ? { config } : {}) };
  }
}

/** The AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1) for one SPS and one PPS. */
export function avcC(sps: Uint8Array, pps: Uint8Array): Uint8Array {
  const profile = sps[1]!;
  const head = [1, profile, sps[2]!, sps[3]!, 0xff, 0xe1, sps.length >> 8, sps.length & 0xff];
  const mid = [1, pps.length >> 8, pps.length & 0xff];
  const parts = [Uint8Array.from(head), sps, Uint8Array.from(mid), pps];
  if (profile === 100 || profile === 110 || profile === 122 || profile === 244) {
    // High profiles carry chroma format and bit depths; 4:2:0 8-bit, no SPS extensions
    const info = parseSps(sps);
    parts.push(
      Uint8Array.from([
        0xfc | (info?.chromaFormat ?? 1),
        0xf8 | ((info?.bitDepthLuma ?? 8) - 8),
        0xf8 | ((info?.bitDepthChroma ?? 8) - 8),
        0,
      ]),
    );
  }
  return Buffer.concat(parts);
}

/** Removes emulation-prevention bytes (00 00 03 → 00 00). */
function unescapeRbsp(nal: Uint8Array): Uint8Array {
  const out = new Uint8Array(nal.length);
  let n = 0;
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

export interface SpsInfo {
  width: number;
  height: number;
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
}

/** Picture size and format from an SPS NAL unit (H.264 §7.3.2.1.1), or null when it cannot be parsed. */
export function parseSps(nal: Uint8Array): SpsInfo | null {
  try {
    const r = new BitReader(unescapeRbsp(nal.subarray(1)));
    const profile = r.bits(8);
    r.bits(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chromaFormat = 1;
    let bitDepthLuma = 8;
    let bitDepthChroma = 8;
    let separateColourPlane = 0;
    if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
      chromaFormat = r.ue();
      if (chromaFormat === 3) separateColourPlane = r.bit();
      bitDepthLuma = r.ue() + 8;
      bitDepthChroma = r.ue() + 8;
      r.bit(); // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) {
        for (let i = 0; i < (chromaFormat !== 3 ? 8 : 12); i++) {
          if (!r.bit()) continue;
          const size = i < 6 ? 16 : 64;
          let last = 8;
          let next = 8;
          for (let j = 0; j < size; j++) {
            if (next !== 0) next = (last + r.se() + 256) % 256;
            last = next === 0 ? last : next;
          }
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.bit();
      r.se();
      r.se();
      const n = r.ue();
      for (let i = 0; i < n; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
    r.bit(); // direct_8x8_inference_flag
    let crop = [0, 0, 0, 0];
    if (r.bit()) crop = [r.ue(), r.ue(), r.ue(), r.ue()];
    const chromaArrayType = separateColourPlane ? 0 : chromaFormat;
    const cropX = chromaArrayType === 0 ? 1 : chromaFormat === 3 ? 1 : 2;
    const cropY = (chromaArrayType === 0 ? 1 : chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const width = widthMbs * 16 - cropX * (crop[0]! + crop[1]!);
    const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (crop[2]! + crop[3]!);
    if (width <= 0 || height <= 0) return null;
    return { width, height, chromaFormat, bitDepthLuma, bitDepthChroma };
  } catch {
    return null;
  }
}

/** Annex B byte stream (start codes) from an AVCC frame: what ffmpeg's raw `h264` demuxer reads. */
export function avccToAnnexB(frame: Uint8Array): Buffer {
  const parts: Uint8Array[] = [];
  for (let off = 0; off + 4 <= frame.length;) {
    const len = ((frame[off]! << 24) | (frame[off + 1]! << 16) | (frame[off + 2]! << 8) | frame[off + 3]!) >>> 0;
    parts.push(Uint8Array.of(0, 0, 0, 1), frame.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return Buffer.concat(parts);
}
