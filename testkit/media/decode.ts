/**
 * Decodes video with ffmpeg and reads the frame number of every decoded picture:
 * what a test uses to check which frames a recording, a clip or an encoded
 * fixture holds.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFrameNumber } from './frame-number.ts';

const run = promisify(execFile);

export interface DecodeOptions {
  /** Scale every picture to this size before reading (default: the stream's own size). */
  width?: number;
  height?: number;
  /** Stop after this many decoded frames. */
  maxFrames?: number;
  /** ffmpeg's name of the input format when it cannot tell from the data (e.g. 'h264', 'ivf'). */
  inputFormat?: string;
  /** Kill ffmpeg after this long (default 120 s). */
  timeoutMs?: number;
}

/** Width and height of the first video stream of a file (ffprobe). */
export async function videoSize(path: string): Promise<{ width: number; height: number }> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0:s=x', path],
  ]);
  const m = /^(\d+)x(\d+)/.exec(stdout.trim());
  if (!m) throw new Error(`ffprobe found no video stream in ${path}: ${stdout.trim()}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/**
 * Calls `onFrame` with each decoded picture as RGBA (the buffer is reused: copy
 * what you keep). `input` is a file path or the encoded bytes.
 */
export async function decodeRgba(
  input: string | Uint8Array,
  opts: DecodeOptions,
  onFrame: (rgba: Uint8Array, width: number, height: number, index: number) => void,
): Promise<number> {
  let { width, height } = opts;
  if (width === undefined || height === undefined) {
    if (typeof input !== 'string') throw new Error('decodeRgba: give width and height when decoding bytes');
    ({ width, height } = await videoSize(input));
  }
  const w = width;
  const h = height;
  const args = ['-hide_banner', '-loglevel', 'error', ...(opts.inputFormat ? ['-f', opts.inputFormat] : [])];
  args.push('-i', typeof input === 'string' ? input : 'pipe:0', '-map', '0:v:0', '-vsync', 'passthrough');
  args.push('-vf', `scale=${w}:${h}`, ...(opts.maxFrames ? ['-frames:v', String(opts.maxFrames)] : []));
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1');
  const child = spawn('ffmpeg', args, { stdio: [typeof input === 'string' ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const frameSize = w * h * 4;
  const frame = Buffer.allocUnsafe(frameSize);
  let filled = 0;
  let count = 0;
  let stderr = '';
  let failure: unknown = null;
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  child.stdout!.on('data', (chunk: Buffer) => {
    for (let off = 0; off < chunk.length;) {
      const n = Math.min(frameSize - filled, chunk.length - off);
      chunk.copy(frame, filled, off, off + n);
      filled += n;
      off += n;
      if (filled === frameSize) {
        filled = 0;
        try {
          onFrame(frame, w, h, count++);
        } catch (err) {
          failure ??= err;
          child.kill('SIGKILL');
        }
      }
    }
  });
  if (typeof input !== 'string') {
    child.stdin!.on('error', () => {}); // ffmpeg may stop reading early (maxFrames)
    child.stdin!.end(input);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error('ffmpeg not found: the test command installs it (Debian package ffmpeg)') : err),
    );
    child.on('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (failure) throw failure;
  if (code !== 0) throw new Error(`ffmpeg decode failed (exit ${code}): ${stderr.trim()}`);
  return count;
}

/**
 * The frame number shown by each decoded picture of a video file (or encoded
 * bytes, with `inputFormat`, `width` and `height`), null where a picture shows none.
 */
export async function framesOfFile(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<(number | null)[]> {
  const numbers: (number | null)[] = [];
  await decodeRgba(input, opts, (rgba, w, h) => numbers.push(readFrameNumber(rgba, w, h)));
  return numbers;
}
