/**
 * VP9 over RTP (RFC 9628) as a browser sends a single-layer stream:
 * non-flexible mode, a 15-bit picture ID, B/E around each frame, and on key
 * frames the scalability structure with the picture size (Y) and no picture
 * group (G = 0).
 */

/** A VP9 frame is a key frame when its uncompressed header says frame_type = KEY_FRAME (and it is not show_existing_frame). */
export function isVp9Keyframe(frame: Uint8Array): boolean {
  const b = frame[0];
  if (b === undefined || b >> 6 !== 2) return false;
  const profile = ((b >> 4) & 1) * 2 + ((b >> 5) & 1);
  // bits after frame_marker(2) and profile(2, +1 reserved for profile 3)
  const at = profile === 3 ? 5 : 4;
  const bit = (k: number) => (b >> (7 - k)) & 1;
  return bit(at) === 0 && bit(at + 1) === 0;
}

/** RTP payloads for one VP9 frame; key frames carry the picture size in the scalability structure. */
export function packetizeVp9(frame: Uint8Array, pictureId: number, size: { width: number; height: number }, mtu = 1200): Uint8Array[] {
  const key = isVp9Keyframe(frame);
  const ss = key ? Uint8Array.of(0x10, size.width >> 8, size.width & 0xff, size.height >> 8, size.height & 0xff) : new Uint8Array(0);
  const out: Uint8Array[] = [];
  for (let off = 0; off < frame.length;) {
    const first = off === 0;
    const head = 3 + (first ? ss.length : 0);
    const end = Math.min(off + mtu - head, frame.length);
    const p = Buffer.allocUnsafe(head + end - off);
    // I, P (not a key frame), B (first packet), E (last packet), V (scalability structure follows)
    p[0] = 0x80 | (key ? 0 : 0x40) | (first ? 0x08 : 0) | (end === frame.length ? 0x04 : 0) | (first && key ? 0x02 : 0);
    p[1] = 0x80 | ((pictureId >> 8) & 0x7f); // M: 15-bit picture ID
    p[2] = pictureId & 0xff;
    if (first) p.set(ss, 3);
    p.set(frame.subarray(off, end), head);
    out.push(p);
    off = end;
  }
  return out;
}
