/**
 * Is this RTP payload the first packet of a keyframe? Per codec, from the
 * payload alone (no decoder): H.264 (single NAL, STAP-A, FU-A start with an
 * IDR or SPS), VP8 (start of partition 0, P bit clear), VP9 (start of frame,
 * not inter-predicted), AV1 (aggregation header N bit: new coded video sequence).
 */
export type VideoCodec = 'h264' | 'vp8' | 'vp9' | 'av1';

export function codecOf(mimeType: string): VideoCodec | null {
  const m = mimeType.toLowerCase();
  if (m === 'video/h264') return 'h264';
  if (m === 'video/vp8') return 'vp8';
  if (m === 'video/vp9') return 'vp9';
  if (m === 'video/av1') return 'av1';
  return null;
}

/** Offset of the payload in an RTP packet (after CSRCs and the header extension), or -1. */
export function payloadOffset(p: Uint8Array): number {
  if (p.length < 12) return -1;
  let off = 12 + (p[0]! & 0x0f) * 4;
  if (p[0]! & 0x10) {
    if (p.length < off + 4) return -1;
    off += 4 + ((p[off + 2]! << 8) | p[off + 3]!) * 4;
  }
  return off <= p.length ? off : -1;
}

function h264(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const type = payload[0]! & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24) {
    for (let i = 1; i + 2 < payload.length;) {
      const size = (payload[i]! << 8) | payload[i + 1]!;
      const t = payload[i + 2]! & 0x1f;
      if (t === 5 || t === 7) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === 28 && payload.length > 1) {
    const start = (payload[1]! & 0x80) !== 0;
    const t = payload[1]! & 0x1f;
    return start && (t === 5 || t === 7);
  }
  return false;
}

function vp8(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const x = payload[0]! & 0x80;
  const s = payload[0]! & 0x10;
  const pid = payload[0]! & 0x07;
  if (!s || pid !== 0) return false;
  let i = 1;
  if (x) {
    const ext = payload[i++]!;
    if (ext & 0x80) i += payload[i]! & 0x80 ? 2 : 1; // PictureID
    if (ext & 0x40) i++; // TL0PICIDX
    if (ext & 0x30) i++; // TID/KEYIDX
  }
  return i < payload.length && (payload[i]! & 0x01) === 0;
}

function vp9(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const b = payload[0]!;
  const interPredicted = (b & 0x40) !== 0;
  const beginning = (b & 0x08) !== 0;
  return beginning && !interPredicted;
}

function av1(payload: Uint8Array): boolean {
  return payload.length > 0 && (payload[0]! & 0x08) !== 0;
}

export function isKeyframeStart(codec: VideoCodec, packet: Uint8Array): boolean {
  const off = payloadOffset(packet);
  if (off < 0) return false;
  const payload = packet.subarray(off);
  switch (codec) {
    case 'h264':
      return h264(payload);
    case 'vp8':
      return vp8(payload);
    case 'vp9':
      return vp9(payload);
    case 'av1':
      return av1(payload);
  }
}
