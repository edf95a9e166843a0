/**
 * VP8 over RTP (RFC 7741): frames from an IVF file, keyframe detection, and
 * packetizing with a 15-bit PictureID in the payload descriptor (as browsers send it).
 */

export interface Vp8Frame {
  data: Uint8Array;
  keyframe: boolean;
}

/** The frames of an IVF file (the container ffmpeg writes VP8 into with `-f ivf`). */
export function ivfFrames(file: Uint8Array): Uint8Array[] {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < 32 || buf.toString('latin1', 0, 4) !== 'DKIF') throw new Error('not an IVF file');
  const frames: Uint8Array[] = [];
  for (let off = buf.readUInt16LE(6); off + 12 <= buf.length;) {
    const size = buf.readUInt32LE(off);
    const start = off + 12;
    if (start + size > buf.length) throw new Error('truncated IVF frame');
    frames.push(buf.subarray(start, start + size));
    off = start + size;
  }
  return frames;
}

/** A VP8 frame is a keyframe when bit 0 of its frame tag is clear. */
export const isVp8Keyframe = (frame: Uint8Array): boolean => frame.length > 0 && (frame[0]! & 0x01) === 0;

/** RTP payloads for one VP8 frame (partition 0 only is signalled, PID 0). */
export function packetizeVp8(frame: Uint8Array, pictureId: number, mtu = 1200): Uint8Array[] {
  const out: Uint8Array[] = [];
  const chunk = mtu - 4;
  for (let off = 0; off < frame.length; off += chunk) {
    const end = Math.min(off + chunk, frame.length);
    const p = Buffer.allocUnsafe(4 + end - off);
    p[0] = 0x80 | (off === 0 ? 0x10 : 0); // X, S (start of partition)
    p[1] = 0x80; // I: PictureID present
    p[2] = 0x80 | ((pictureId >> 8) & 0x7f); // M: 15-bit PictureID
    p[3] = pictureId & 0xff;
    p.set(frame.subarray(off, end), 4);
    out.push(p);
  }
  return out;
}
