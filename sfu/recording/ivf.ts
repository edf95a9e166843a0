/** IVF, the container ffmpeg's `ivf` demuxer reads VP8/VP9/AV1 frames from (a 32-byte file header, then size + pts per frame). */

/** The codec's IVF fourcc. */
export const IVF_FOURCC = { vp8: 'VP80', vp9: 'VP90', av1: 'AV01' } as const;

/** The file header: codec (default VP8), picture size, time base `1/rate` (frame pts count in it), number of frames (0 = unknown). */
export function ivfHeader(width: number, height: number, rate: number, frames: number, codec: keyof typeof IVF_FOURCC = 'vp8'): Buffer {
  const h = Buffer.alloc(32);
  h.write('DKIF', 0, 'latin1');
  h.writeUInt16LE(0, 4);
  h.writeUInt16LE(32, 6);
  h.write(IVF_FOURCC[codec], 8, 'latin1');
  h.writeUInt16LE(width, 12);
  h.writeUInt16LE(height, 14);
  h.writeUInt32LE(rate, 16);
  h.writeUInt32LE(1, 20);
  h.writeUInt32LE(frames, 24);
  return h;
}

/** One frame: its size, its pts (low 32 bits, in the header's time base), the frame. */
export function ivfFrame(frame: Uint8Array, pts: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(frame.length, 0);
  h.writeUInt32LE(pts >>> 0, 4);
  return Buffer.concat([h, frame]);
}
