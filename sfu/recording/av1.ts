/**
 * AV1 over RTP (AOMedia "RTP Payload Format for AV1" §4): the aggregation
 * header (Z/Y/W/N) and OBU elements (with or without a length field, OBUs
 * fragmented across packets) are turned back into a temporal unit in the
 * low-overhead bitstream format: every OBU with `obu_has_size_field` set,
 * temporal delimiters, tile lists and padding dropped — what an MP4 sample
 * holds (AV1 ISOBMFF §2.4).
 *
 * A temporal unit is a key frame when it carries a sequence header and its
 * first frame is a shown KEY_FRAME (a sender marks it with the N bit). The
 * sequence header gives the picture size and the `av01.…` codec string,
 * from which the MP4 writer builds the av1C record.
 */
import { BitReader, leb128, readLeb128 } from './bits.ts';
import { Depacketizer, type AssembledFrame } from './depacketizer.ts';
import type { VideoConfig } from './types.ts';

export const OBU = {
  SEQUENCE_HEADER: 1,
  TEMPORAL_DELIMITER: 2,
  FRAME_HEADER: 3,
  TILE_GROUP: 4,
  METADATA: 5,
  FRAME: 6,
  REDUNDANT_FRAME_HEADER: 7,
  TILE_LIST: 8,
  PADDING: 15,
} as const;

/** OBU types a temporal unit in a file must not carry (AV1 ISOBMFF §2.4; RTP spec §5). */
const DROPPED: ReadonlySet<number> = new Set([OBU.TEMPORAL_DELIMITER, OBU.TILE_LIST, OBU.PADDING]);

export interface Av1SequenceHeader {
  profile: number;
  level: number;
  tier: number;
  bitDepth: number;
  monochrome: boolean;
  subsamplingX: number;
  subsamplingY: number;
  chromaSamplePosition: number;
  colorPrimaries: number;
  transferCharacteristics: number;
  matrixCoefficients: number;
  fullRange: boolean;
  /** max_frame_width_minus_1 + 1 */
  width: number;
  height: number;
  reducedStillPictureHeader: boolean;
}

/** Parses a sequence header OBU's payload (AV1 spec §5.5); null when malformed. */
export function parseAv1SequenceHeader(payload: Uint8Array): Av1SequenceHeader | null {
  try {
    const r = new BitReader(payload);
    const profile = r.bits(3);
    r.bit(); // still_picture
    const reduced = r.bit() === 1;
    let level = 0;
    let tier = 0;
    if (reduced) level = r.bits(5);
    else {
      let decoderModelInfo = false;
      let bufferDelayLength = 0;
      if (r.bit()) {
        // timing_info
        r.bits(32);
        r.bits(32);
        if (r.bit()) r.uvlc();
        decoderModelInfo = r.bit() === 1;
        if (decoderModelInfo) {
          bufferDelayLength = r.bits(5) + 1;
          r.bits(32);
          r.bits(10); // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
        }
      }
      const initialDisplayDelay = r.bit() === 1;
      const points = r.bits(5) + 1;
      for (let k = 0; k < points; k++) {
        r.bits(12); // operating_point_idc
        const l = r.bits(5);
        const t = l > 7 ? r.bit() : 0;
        if (k === 0) [level, tier] = [l, t];
        if (decoderModelInfo && r.bit()) r.bits(2 * bufferDelayLength + 1);
        if (initialDisplayDelay && r.bit()) r.bits(4);
      }
    }
    const widthBits = r.bits(4) + 1;
    const heightBits = r.bits(4) + 1;
    const width = r.bits(widthBits) + 1;
    const height = r.bits(heightBits) + 1;
    if (!reduced && r.bit()) r.bits(7); // frame_id_numbers_present_flag: delta and additional id lengths
    r.bits(3); // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if (!reduced) {
      r.bits(4); // interintra_compound, masked_compound, warped_motion, dual_filter
      const orderHint = r.bit() === 1;
      if (orderHint) r.bits(2); // jnt_comp, ref_frame_mvs
      const forceScreenContent = r.bit() ? 2 : r.bit();
      if (forceScreenContent > 0 && !r.bit()) r.bit(); // seq_choose_integer_mv, seq_force_integer_mv
      if (orderHint) r.bits(3);
    }
    r.bits(3); // enable_superres, enable_cdef, enable_restoration
    // color_config (§5.5.2)
    const high = r.bit() === 1;
    const bitDepth = profile === 2 && high ? (r.bit() ? 12 : 10) : high ? 10 : 8;
    const monochrome = profile === 1 ? false : r.bit() === 1;
    let [colorPrimaries, transferCharacteristics, matrixCoefficients] = [2, 2, 2]; // unspecified
    if (r.bit()) [colorPrimaries, transferCharacteristics, matrixCoefficients] = [r.bits(8), r.bits(8), r.bits(8)];
    let fullRange: boolean;
    let [subsamplingX, subsamplingY, chromaSamplePosition] = [1, 1, 0];
    if (monochrome) fullRange = r.bit() === 1;
    else if (colorPrimaries === 1 && transferCharacteristics === 13 && matrixCoefficients === 0) {
      fullRange = true; // sRGB: 4:4:4
      [subsamplingX, subsamplingY] = [0, 0];
    } else {
      fullRange = r.bit() === 1;
      if (profile === 1) [subsamplingX, subsamplingY] = [0, 0];
      else if (profile === 2 && bitDepth === 12) {
        subsamplingX = r.bit();
        subsamplingY = subsamplingX ? r.bit() : 0;
      } else if (profile === 2) [subsamplingX, subsamplingY] = [1, 0];
      if (subsamplingX && subsamplingY) chromaSamplePosition = r.bits(2);
    }
    return {
      profile,
      level,
      tier,
      bitDepth,
      monochrome,
      subsamplingX,
      subsamplingY,
      chromaSamplePosition,
      colorPrimaries,
      transferCharacteristics,
      matrixCoefficients,
      fullRange,
      width,
      height,
      reducedStillPictureHeader: reduced,
    };
  } catch {
    return null;
  }
}

/** The `av01.P.LLT.DD[.M.CCC.cp.tc.mc.F]` codec string (AV1 ISOBMFF, Codecs Parameter String) of a sequence header. */
export function av1CodecString(s: Av1SequenceHeader): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const base = `av01.${s.profile}.${two(s.level)}${s.tier ? 'H' : 'M'}.${two(s.bitDepth)}`;
  // unspecified colour (2) is written as the defaults: BT.709
  const cp = s.colorPrimaries === 2 ? 1 : s.colorPrimaries;
  const tc = s.transferCharacteristics === 2 ? 1 : s.transferCharacteristics;
  const mc = s.matrixCoefficients === 2 ? 1 : s.matrixCoefficients;
  const chroma = `${s.subsamplingX}${s.subsamplingY}${s.subsamplingX && s.subsamplingY ? s.chromaSamplePosition : 0}`;
  const full = `${base}.${s.monochrome ? 1 : 0}.${chroma}.${two(cp)}.${two(tc)}.${two(mc)}.${s.fullRange ? 1 : 0}`;
  return full.endsWith('.0.110.01.01.01.0') ? base : full;
}

interface Obu {
  type: number;
  /** obu_header (1 or 2 bytes, obu_has_size_field as sent). */
  header: Uint8Array;
  payload: Uint8Array;
}

/** Splits one complete OBU as carried in RTP (its size field optional); null when malformed. */
function parseObu(data: Uint8Array): Obu | null {
  const h = data[0];
  if (h === undefined || h & 0x80) return null; // obu_forbidden_bit
  const headerLength = h & 0x04 ? 2 : 1;
  if (data.length < headerLength) return null;
  let payload = data.subarray(headerLength);
  if (h & 0x02) {
    const size = readLeb128(data, headerLength);
    if (!size || headerLength + size.length + size.value > data.length) return null;
    payload = data.subarray(headerLength + size.length, headerLength + size.length + size.value);
  }
  return { type: (h >> 3) & 0x0f, header: data.subarray(0, headerLength), payload };
}

/** The first OBU element's type in a payload that starts one (Z = 0), or -1. */
function firstObuType(p: Uint8Array): number {
  const w = (p[0]! >> 4) & 0x03;
  let off = 1;
  if (w !== 1) {
    const len = readLeb128(p, 1);
    if (!len) return -1;
    off += len.length;
  }
  const h = p[off];
  return h === undefined ? -1 : (h >> 3) & 0x0f;
}

export class Av1Depacketizer extends Depacketizer {
  protected readonly needsKeyframe = true;
  /** Complete OBUs of the temporal unit being assembled. */
  #obus: Uint8Array[] = [];
  /** Pieces of an OBU fragmented across packets (Y set on the last packet), or null. */
  #fragment: Uint8Array[] | null = null;
  #first = true;
  #sequenceHeader: Uint8Array | null = null;
  #sequence: Av1SequenceHeader | null = null;
  #config: VideoConfig | null = null;

  /** The current stream configuration (after the first key frame). */
  get config(): VideoConfig | null {
    return this.#config;
  }

  protected addPayload(payload: Uint8Array): boolean {
    const agg = payload[0];
    if (agg === undefined) return false;
    const continues = (agg & 0x80) !== 0; // Z
    const willContinue = (agg & 0x40) !== 0; // Y
    const w = (agg >> 4) & 0x03;
    if (this.#first && continues) return false; // the temporal unit's start was not seen
    this.#first = false;
    if (!continues && this.#fragment) return false; // an OBU fragment was never finished
    if (continues && !this.#fragment) return false; // a continuation of nothing
    const elements: Uint8Array[] = [];
    for (let off = 1; off < payload.length;) {
      let len = payload.length - off; // W > 0: the W-th element has no length field
      if (w === 0 || elements.length < w - 1) {
        const l = readLeb128(payload, off);
        if (!l) return false;
        off += l.length;
        len = l.value;
      }
      if (len === 0 || off + len > payload.length) return false;
      elements.push(payload.subarray(off, off + len));
      off += len;
    }
    if (elements.length === 0 || (w !== 0 && elements.length !== w)) return false;
    elements.forEach((element, k) => {
      const piece = k === 0 && continues ? this.#fragment! : [];
      piece.push(element);
      if (k === elements.length - 1 && willContinue) this.#fragment = piece;
      else {
        this.#obus.push(piece.length === 1 ? piece[0]! : Buffer.concat(piece));
        if (piece === this.#fragment) this.#fragment = null;
      }
    });
    return true;
  }

  /** A key frame's first packet (N bit, or a sequence header first): nothing lost before it matters. */
  protected startsFrame(payload: Uint8Array): boolean {
    const agg = payload[0];
    if (agg === undefined || agg & 0x80) return false;
    return (agg & 0x08) !== 0 || firstObuType(payload) === OBU.SEQUENCE_HEADER;
  }

  protected assemble(): AssembledFrame | null {
    const obus = this.#obus;
    const incomplete = this.#fragment !== null;
    this.#obus = [];
    this.#fragment = null;
    this.#first = true;
    if (incomplete) return null;
    const kept: Uint8Array[] = [];
    let sequenceHeader: Uint8Array | null = null;
    let firstFrame: Uint8Array | null = null;
    for (const raw of obus) {
      const obu = parseObu(raw);
      if (!obu) return null;
      if (DROPPED.has(obu.type)) continue;
      if (obu.type === OBU.SEQUENCE_HEADER) sequenceHeader = obu.payload;
      if ((obu.type === OBU.FRAME || obu.type === OBU.FRAME_HEADER) && !firstFrame) firstFrame = obu.payload;
      // low-overhead format: obu_has_size_field = 1, then leb128(obu_size)
      kept.push(Uint8Array.of(obu.header[0]! | 0x02), obu.header.subarray(1), leb128(obu.payload.length), obu.payload);
    }
    if (!firstFrame) return null; // nothing to show
    let config: VideoConfig | undefined;
    if (sequenceHeader && (!this.#sequenceHeader || !Buffer.from(sequenceHeader).equals(this.#sequenceHeader))) {
      const parsed = parseAv1SequenceHeader(sequenceHeader);
      if (parsed) {
        this.#sequenceHeader = Buffer.from(sequenceHeader);
        this.#sequence = parsed;
        config = this.#config = { codec: 'av1', width: parsed.width, height: parsed.height, codecString: av1CodecString(parsed) };
      }
    }
    const keyframe = sequenceHeader !== null && this.#sequence !== null && isShownKeyFrame(firstFrame, this.#sequence);
    return { data: Buffer.concat(kept), keyframe, ...(config ? { config } : {}) };
  }
}

/** The frame header starts with show_existing_frame = 0, frame_type = KEY_FRAME, show_frame = 1 (§5.9.2). */
function isShownKeyFrame(frameHeader: Uint8Array, seq: Av1SequenceHeader): boolean {
  if (seq.reducedStillPictureHeader) return true; // every frame is a shown key frame
  const b = frameHeader[0];
  return b !== undefined && (b & 0xf0) === 0x10; // 0 (show_existing_frame), 00 (KEY_FRAME), 1 (show_frame)
}
