/**
 * VP9 over RTP (RFC 9628): the payload descriptor (I/P/L/F/B/E/V bits,
 * flexible and non-flexible mode, scalability structure) is stripped and the
 * packets of each layer frame (B … E) concatenated. The spatial layers of one
 * picture (same RTP timestamp) become one superframe (VP9 bitstream spec
 * Annex B), which is what a VP9 decoder and an MP4 sample expect.
 *
 * A picture is a key frame when its first layer frame is spatial layer 0, not
 * inter-picture predicted (P = 0), and its uncompressed header says KEY_FRAME.
 * Profile, bit depth and picture size come from that header (the size of the
 * top layer from the scalability structure when one is sent).
 */
import { BitReader } from './bits.ts';
import { Depacketizer, type AssembledFrame } from './depacketizer.ts';
import type { VideoConfig } from './types.ts';

interface Descriptor {
  /** Bytes of descriptor before the VP9 data. */
  length: number;
  /** B: first packet of a layer frame. */
  begin: boolean;
  /** E: last packet of a layer frame. */
  end: boolean;
  /** P: inter-picture predicted. */
  predicted: boolean;
  spatialLayer: number;
  /** Picture sizes of the spatial layers, when the scalability structure carries them. */
  sizes?: { width: number; height: number }[];
}

/** Parses the payload descriptor (RFC 9628 §4.2); null when malformed. */
export function parseVp9Descriptor(p: Uint8Array): Descriptor | null {
  const b = p[0];
  if (b === undefined) return null;
  const flexible = (b & 0x10) !== 0;
  const predicted = (b & 0x40) !== 0;
  let i = 1;
  if (b & 0x80) i += (p[i] ?? 0) & 0x80 ? 2 : 1; // picture ID, 7 or 15 bits
  let spatialLayer = 0;
  if (b & 0x20) {
    const l = p[i];
    if (l === undefined) return null;
    spatialLayer = (l >> 1) & 0x07;
    i += flexible ? 1 : 2; // non-flexible mode adds TL0PICIDX
  }
  if (flexible && predicted) {
    // up to 3 reference indices, N bit = another follows
    for (let k = 0; ; k++) {
      const d = p[i++];
      if (d === undefined || k === 3) return null;
      if (!(d & 0x01)) break;
    }
  }
  let sizes: { width: number; height: number }[] | undefined;
  if (b & 0x02) {
    const ss = p[i++];
    if (ss === undefined) return null;
    const layers = (ss >> 5) + 1;
    if (ss & 0x10) {
      sizes = [];
      for (let k = 0; k < layers; k++, i += 4) {
        if (i + 4 > p.length) return null;
        sizes.push({ width: (p[i]! << 8) | p[i + 1]!, height: (p[i + 2]! << 8) | p[i + 3]! });
      }
    }
    if (ss & 0x08) {
      const groups = p[i++];
      if (groups === undefined) return null;
      for (let k = 0; k < groups; k++) {
        const g = p[i++];
        if (g === undefined) return null;
        i += (g >> 2) & 0x03; // R reference indices
      }
    }
  }
  if (i > p.length) return null;
  return { length: i, begin: (b & 0x08) !== 0, end: (b & 0x04) !== 0, predicted, spatialLayer, ...(sizes ? { sizes } : {}) };
}

export interface Vp9FrameHeader {
  keyframe: boolean;
  profile: number;
  /** Key frames only. */
  bitDepth?: number;
  width?: number;
  height?: number;
  /** 0: 4:2:0, 2: 4:2:2, 3: 4:4:4 (vpcC chroma_subsampling). Key frames only. */
  chroma?: number;
  fullRange?: boolean;
}

/** The start of a VP9 uncompressed header (VP9 bitstream spec §6.2); null when it is not one. */
export function parseVp9FrameHeader(frame: Uint8Array): Vp9FrameHeader | null {
  try {
    const r = new BitReader(frame);
    if (r.bits(2) !== 2) return null; // frame_marker
    const low = r.bit();
    const profile = (r.bit() << 1) | low;
    if (profile === 3) r.bit();
    if (r.bit()) return { keyframe: false, profile }; // show_existing_frame
    const keyframe = r.bit() === 0;
    if (!keyframe) return { keyframe, profile };
    r.bits(2); // show_frame, error_resilient_mode
    if (r.bits(24) !== 0x498342) return null; // frame_sync_code
    const bitDepth = profile >= 2 ? (r.bit() ? 12 : 10) : 8;
    const colorSpace = r.bits(3);
    let fullRange = true;
    let chroma = 3; // 4:4:4 (RGB)
    if (colorSpace !== 7) {
      fullRange = r.bit() === 1;
      if (profile === 1 || profile === 3) {
        const x = r.bit();
        const y = r.bit();
        r.bit();
        chroma = x && y ? 0 : x ? 2 : 3;
      } else chroma = 0;
    } else if (profile === 1 || profile === 3) r.bit();
    const width = r.bits(16) + 1;
    const height = r.bits(16) + 1;
    return { keyframe, profile, bitDepth, width, height, chroma, fullRange };
  } catch {
    return null;
  }
}

/** VP9 levels (webmproject.org/vp9/levels) by largest picture size; the first that fits is the one signalled. */
const LEVELS: [level: number, maxPictureSize: number][] = [
  [10, 36864],
  [11, 73728],
  [20, 122880],
  [21, 245760],
  [30, 552960],
  [31, 983040],
  [40, 2228224],
  [50, 8912896],
  [60, 35651584],
];

/** The `vp09.PP.LL.DD[.CC.cp.tc.mc.FF]` codec string (VP9 ISO-BMFF binding §E) of a stream. */
export function vp9CodecString(h: {
  profile: number;
  bitDepth: number;
  width: number;
  height: number;
  chroma: number;
  fullRange: boolean;
}): string {
  const level = LEVELS.find(([, max]) => h.width * h.height <= max)?.[0] ?? 62;
  const two = (n: number) => String(n).padStart(2, '0');
  const base = `vp09.${two(h.profile)}.${two(level)}.${two(h.bitDepth)}`;
  // 4:2:0 and limited range are the defaults of the short form (chroma 1 = 4:2:0 co-sited, as libvpx encodes)
  if (h.chroma === 0 && !h.fullRange) return base;
  return `${base}.${two(h.chroma === 0 ? 1 : h.chroma)}.01.01.01.${two(h.fullRange ? 1 : 0)}`;
}

/** Appends a superframe index (VP9 bitstream spec Annex B) to the frames of one picture. */
function superframe(frames: Uint8Array[]): Uint8Array {
  const max = Math.max(...frames.map((f) => f.length));
  const bytes = max < 1 << 8 ? 1 : max < 1 << 16 ? 2 : max < 1 << 24 ? 3 : 4;
  const marker = 0xc0 | ((bytes - 1) << 3) | (frames.length - 1);
  const index = Buffer.alloc(2 + bytes * frames.length);
  index[0] = marker;
  frames.forEach((f, k) => index.writeUIntLE(f.length, 1 + k * bytes, bytes));
  index[index.length - 1] = marker;
  return Buffer.concat([...frames, index]);
}

/** The frames of a superframe (or the one frame it is); null when its index is inconsistent. */
function unpackSuperframe(data: Uint8Array): Uint8Array[] | null {
  const last = data[data.length - 1]!;
  if ((last & 0xe0) !== 0xc0) return [data];
  const bytes = ((last >> 3) & 0x03) + 1;
  const count = (last & 0x07) + 1;
  const size = 2 + bytes * count;
  if (data.length < size || data[data.length - size] !== last) return [data];
  const frames: Uint8Array[] = [];
  let off = 0;
  for (let k = 0; k < count; k++) {
    let len = 0;
    for (let b = 0; b < bytes; b++) len += data[data.length - size + 1 + k * bytes + b]! * 2 ** (8 * b);
    if (off + len > data.length - size) return null;
    frames.push(data.subarray(off, off + len));
    off += len;
  }
  return frames;
}

export class Vp9Depacketizer extends Depacketizer {
  protected readonly needsKeyframe = true;
  /** Finished layer frames of the picture being assembled. */
  #layers: Uint8Array[] = [];
  /** Packets of the layer frame in progress (after its B packet), or null between layer frames. */
  #current: Uint8Array[] | null = null;
  /** The picture's first layer frame is spatial layer 0 and not inter-picture predicted. */
  #independent = false;
  #sizes: { width: number; height: number }[] | null = null;
  #config: VideoConfig | null = null;

  /** The current stream configuration (after the first key frame). */
  get config(): VideoConfig | null {
    return this.#config;
  }

  protected addPayload(payload: Uint8Array): boolean {
    const d = parseVp9Descriptor(payload);
    if (!d) return false;
    if (d.sizes) this.#sizes = d.sizes;
    if (d.begin) {
      if (this.#current) return false; // the previous layer frame never ended
      if (this.#layers.length === 0) this.#independent = !d.predicted && d.spatialLayer === 0;
      this.#current = [];
    } else if (!this.#current) return false; // the layer frame's start was not seen
    if (payload.length > d.length) this.#current.push(payload.subarray(d.length));
    if (d.end) this.#closeLayer();
    return true;
  }

  #closeLayer(): void {
    if (this.#current?.length) this.#layers.push(Buffer.concat(this.#current));
    this.#current = null;
  }

  /** A key frame's first packet: nothing lost before it matters (any other frame after a loss waits for one). */
  protected startsFrame(payload: Uint8Array): boolean {
    const d = parseVp9Descriptor(payload);
    return d !== null && d.begin && !d.predicted && d.spatialLayer === 0;
  }

  protected assemble(): AssembledFrame | null {
    // the marker packet ends the picture even if a sender left E unset (the base class saw no gap)
    this.#closeLayer();
    const layers = this.#layers;
    const independent = this.#independent;
    this.#layers = [];
    this.#independent = false;
    if (layers.length === 0) return null;
    const frames: Uint8Array[] = [];
    for (const layer of layers) {
      const inner = unpackSuperframe(layer);
      if (!inner) return null;
      frames.push(...inner);
    }
    const data = frames.length === 1 ? frames[0]! : superframe(frames);
    const header = parseVp9FrameHeader(frames[0]!);
    if (!header) return null;
    const keyframe = independent && header.keyframe;
    let config: VideoConfig | undefined;
    if (keyframe) {
      const top = this.#sizes?.at(-1);
      const stream = {
        profile: header.profile,
        bitDepth: header.bitDepth!,
        width: top?.width || header.width!,
        height: top?.height || header.height!,
        chroma: header.chroma!,
        fullRange: header.fullRange!,
      };
      const codecString = vp9CodecString(stream);
      const c = this.#config;
      if (!c || c.width !== stream.width || c.height !== stream.height || c.codecString !== codecString) {
        config = this.#config = { codec: 'vp9', width: stream.width, height: stream.height, codecString };
      }
    }
    // a key frame is only a place to start once its configuration is known (always, for a parsed key frame)
    return { data, keyframe, ...(config ? { config } : {}) };
  }
}
