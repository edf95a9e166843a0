/**
 * The picture size a video layer carries, read off its RTP packets without
 * decoding: H.264 from the SPS (a single-NAL or STAP-A packet holding one, as
 * OBS, browsers and GStreamer send it before each IDR), VP8 from a keyframe's
 * header. Players name simulcast layers by these sizes (720p, 360p, …).
 */
import { codecOf, payloadOffset, type VideoCodec } from './dvr/keyframe.ts';
import { parseSps } from './recording/h264.ts';

export interface PictureSize {
  width: number;
  height: number;
}

/** The size an RTP packet of `mimeType` announces, or null (most packets announce none). */
export function pictureSize(mimeType: string, packet: Uint8Array): PictureSize | null {
  const codec = codecOf(mimeType);
  return codec ? packetPictureSize(codec, packet) : null;
}

/** `pictureSize` for a codec already known. */
export function packetPictureSize(codec: VideoCodec, packet: Uint8Array): PictureSize | null {
  const off = payloadOffset(packet);
  return off < 0 ? null : sizeOf(codec, packet.subarray(off));
}

function sizeOf(codec: VideoCodec, payload: Uint8Array): PictureSize | null {
  if (codec === 'h264') return h264(payload);
  if (codec === 'vp8') return vp8(payload);
  return null;
}

function h264(payload: Uint8Array): PictureSize | null {
  if (payload.length < 2) return null;
  const type = payload[0]! & 0x1f;
  if (type === 7) return sps(payload);
  if (type !== 24) return null;
  for (let i = 1; i + 2 < payload.length;) {
    const size = (payload[i]! << 8) | payload[i + 1]!;
    const nal = payload.subarray(i + 2, i + 2 + size);
    if (nal.length === size && (nal[0]! & 0x1f) === 7) return sps(nal);
    i += 2 + size;
  }
  return null;
}

function sps(nal: Uint8Array): PictureSize | null {
  const info = parseSps(nal);
  return info ? { width: info.width, height: info.height } : null;
}

/** VP8 payload descriptor (RFC 7741), then a keyframe's 10-byte header: frame tag, start code, 14-bit sizes. */
function vp8(payload: Uint8Array): PictureSize | null {
  const first = payload[0] ?? 0;
  if (!(first & 0x10) || (first & 0x07) !== 0) return null; // not the start of partition 0
  let i = 1;
  if (first & 0x80) {
    const ext = payload[i++] ?? 0;
    if (ext & 0x80) i += (payload[i] ?? 0) & 0x80 ? 2 : 1;
    if (ext & 0x40) i++;
    if (ext & 0x30) i++;
  }
  const f = payload.subarray(i);
  if (f.length < 10 || f[0]! & 0x01 || f[3] !== 0x9d || f[4] !== 0x01 || f[5] !== 0x2a) return null;
  const width = (f[6]! | (f[7]! << 8)) & 0x3fff;
  const height = (f[8]! | (f[9]! << 8)) & 0x3fff;
  return width && height ? { width, height } : null;
}
