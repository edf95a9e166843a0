/**
 * A still picture of a channel: the DVR buffer's newest keyframe decoded by
 * ffmpeg (spawned without a shell, fed the one frame on stdin, bounded in
 * time and output size) and scaled to a JPEG or WebP. Any failure — no
 * keyframe yet, ffmpeg missing, a frame it cannot decode, a timeout — is an
 * error result, never an exception: a channel without a picture still shows
 * its card.
 */
import { avccToAnnexB } from './h264.ts';
import { ivfFrame, ivfHeader } from './ivf.ts';
import { runProgram } from './spawner.ts';
import { createDepacketizer } from './timeline.ts';
import { frameStartIndex, recordableCodec, type CodedFrame, type DvrSource, type ProgramCodec, type VideoCodecName } from './types.ts';

export interface ThumbnailOptions {
  /** Output width in pixels; height keeps the aspect ratio (default 480). */
  width?: number;
  /** Image format (default jpeg). */
  format?: 'jpeg' | 'webp';
  /** ffmpeg is killed after this long (default 5000 ms). */
  timeoutMs?: number;
  /** The ffmpeg executable (default `ffmpeg` on PATH). */
  ffmpegPath?: string;
  /** Decode the keyframe at or before this arrival time (ms since the epoch) instead of the newest: a clip's first picture. */
  atMs?: number;
}

export type ThumbnailResult =
  | { ok: true; image: Buffer; mimeType: 'image/jpeg' | 'image/webp'; /** Arrival time of the keyframe shown. */ atMs: number }
  | { ok: false; error: string };

const MAX_IMAGE_BYTES = 8 << 20;
/** Packets read after the keyframe's first one before giving up on completing it. */
const MAX_KEYFRAME_PACKETS = 4096;

/** Decodes the DVR buffer's newest video keyframe (or the one at `atMs`) to an image. */
export async function thumbnailFromDvr(dvr: DvrSource, video: ProgramCodec, opts: ThumbnailOptions = {}): Promise<ThumbnailResult> {
  const codec = recordableCodec(video.mimeType);
  if (codec === null || codec === 'opus') return { ok: false, error: `cannot decode ${video.mimeType}` };
  const last = opts.atMs === undefined ? dvr.lastKeyframe() : dvr.keyframeAtOrBefore(opts.atMs);
  if (last === null) return { ok: false, error: 'no keyframe buffered yet' };
  const start = frameStartIndex(dvr, last);
  const depacketizer = createDepacketizer(codec);
  let frame: CodedFrame | undefined;
  for (let i = start; i < Math.min(dvr.end, start + MAX_KEYFRAME_PACKETS) && !frame; i++) {
    const p = dvr.at(i);
    if (!p || p.kind !== 'video' || p.rank) continue; // the top simulcast layer only
    frame = depacketizer.push(p.data, p.at).find((f) => f.keyframe);
  }
  if (!frame) return { ok: false, error: 'the newest keyframe is incomplete' };
  return keyframeToImage(codec, frame, opts);
}

/** Decodes one keyframe (as a depacketizer produced it) to an image. */
export async function keyframeToImage(codec: VideoCodecName, frame: CodedFrame, opts: ThumbnailOptions = {}): Promise<ThumbnailResult> {
  const width = Math.max(16, Math.round(opts.width ?? 480) & ~1);
  const format = opts.format ?? 'jpeg';
  const input = codec === 'h264' ? avccToAnnexB(frame.data) : ivf(codec, frame.config?.width ?? 0, frame.config?.height ?? 0, frame.data);
  const args = [
    ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1'],
    ...['-f', codec === 'h264' ? 'h264' : 'ivf', '-i', 'pipe:0'],
    ...['-frames:v', '1', '-vf', `scale=${width}:-2`],
    ...(format === 'jpeg' ? ['-c:v', 'mjpeg', '-q:v', '4', '-f', 'image2pipe'] : ['-c:v', 'libwebp', '-quality', '75', '-f', 'webp']),
    'pipe:1',
  ];
  const result = await runFfmpeg(opts.ffmpegPath ?? 'ffmpeg', args, input, opts.timeoutMs ?? 5000);
  if (!result.ok) return result;
  return { ok: true, image: result.stdout, mimeType: format === 'jpeg' ? 'image/jpeg' : 'image/webp', atMs: frame.arrivalMs };
}

/** A one-frame IVF file (what ffmpeg's `ivf` demuxer reads) for a VP8 or VP9 frame or an AV1 temporal unit. */
function ivf(codec: 'vp8' | 'vp9' | 'av1', width: number, height: number, frame: Uint8Array): Buffer {
  return Buffer.concat([ivfHeader(width, height, 30, 1, codec), ivfFrame(frame, 0)]);
}

async function runFfmpeg(
  bin: string,
  args: string[],
  input: Buffer,
  timeoutMs: number,
): Promise<{ ok: true; stdout: Buffer } | { ok: false; error: string }> {
  // from the small helper process: a fork of the server itself would hold its event loop for as long as
  // the kernel takes to copy its page tables (tens of ms per GB of DVR buffer held)
  const r = await runProgram(bin, args, input, { timeoutMs, maxStdoutBytes: MAX_IMAGE_BYTES });
  if (r.error === 'output too large') return { ok: false, error: 'ffmpeg output too large' };
  if (r.error?.startsWith('timed out')) return { ok: false, error: `ffmpeg ${r.error}` };
  if (r.error?.startsWith('could not start')) return { ok: false, error: `ffmpeg ${r.error}` };
  if (r.code === 0 && r.stdout.length > 0) return { ok: true, stdout: r.stdout };
  return {
    ok: false,
    error: r.error ?? `ffmpeg failed (${r.signal ?? `exit ${r.code}`}): ${r.stderr.trim().slice(0, 500) || 'no image produced'}`,
  };
}
