/**
 * A transcoded ladder for a single-layer publisher: one ffmpeg per channel
 * decodes the program's video once and encodes each lower rung (x264 for an
 * H.264 program, libvpx for VP8), and the encoded RTP comes back over
 * loopback UDP into the program's injected layers. Viewers' simulcast
 * consumers then pick a rung like any publisher layer.
 *
 * The program's frames go to ffmpeg's stdin already reassembled (Annex B or
 * IVF), so loss on the way in cannot corrupt the decode: a damaged frame is
 * dropped and the next keyframe resumes. Rung keyframes follow the source's
 * (`-force_key_frames source`), so a viewer switching down waits no longer
 * than it would for the publisher's own layers. If ffmpeg cannot keep up, its
 * input is cut until the next keyframe rather than queued without bound; if it
 * dies, it is started again at a later keyframe (the top layer never stops).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { codecOf } from '../dvr/keyframe.ts';
import type { SfuLogger } from '../logger.ts';
import type { ProgramLayer, ProgramTrack } from '../program.ts';
import type { Depacketizer } from '../recording/depacketizer.ts';
import { avccToAnnexB } from '../recording/h264.ts';
import { ivfFrame, ivfHeader } from '../recording/ivf.ts';
import { createDepacketizer } from '../recording/timeline.ts';
import type { CodedFrame } from '../recording/types.ts';
import { rungsFor, type LadderRung } from './rungs.ts';

/** Bytes queued at ffmpeg's stdin beyond which input is cut until the next keyframe (about 2 s at 8 Mbit/s). */
const MAX_QUEUED_BYTES = 2 * 1024 * 1024;
/** Wait at least this long after ffmpeg died before starting it again. */
const RESTART_DELAY_MS = 2000;

export interface LadderTranscoderOptions {
  /** The program's video track: its top layer is decoded; `heights[i]` feeds its i-th injected layer (lowest first). */
  track: ProgramTrack;
  /** Where the rungs go, when not into `track` itself: another track's injected layers, encoded in its codec (a VP8 copy of an H.264 program). */
  target?: ProgramTrack | undefined;
  /** Rung heights, lowest first, one per injected layer of the target. */
  heights: readonly number[];
  /** A rung at or above the source's height is encoded at the source's size instead of left unfed (a copy in another codec). */
  upToSource?: boolean | undefined;
  /** ffmpeg binary (default `ffmpeg` on the PATH). */
  ffmpegPath?: string;
  logger: SfuLogger;
}

export interface LadderTranscoderEvents {
  /** ffmpeg started, encoding these rungs (null: a rung at or above the source's height, left unfed). */
  start: [rungs: (LadderRung | null)[]];
  /** ffmpeg stopped on its own (it is started again at a later keyframe). */
  failed: [reason: string];
}

type Ffmpeg = ChildProcessByStdio<Writable, null, Readable>;

/** The codecs the ladder can encode (the program's codec must be one). */
export function ladderSupports(mimeType: string): boolean {
  const c = codecOf(mimeType);
  return c === 'h264' || c === 'vp8';
}

export class LadderTranscoder extends EventEmitter<LadderTranscoderEvents> {
  readonly #opts: LadderTranscoderOptions;
  /** The codec it decodes (the source track's). */
  readonly #codec: 'h264' | 'vp8';
  /** The codec it encodes (the target track's). */
  readonly #encoder: 'h264' | 'vp8';
  readonly #target: ProgramTrack;
  readonly #layers: ProgramLayer[];
  readonly #log: SfuLogger;
  #depacketizer: Depacketizer;
  #unsubscribe: () => void;
  #ffmpeg: Ffmpeg | null = null;
  readonly #sockets: Socket[];
  readonly #listening = new Set<Socket>();
  /** Input is cut until the next keyframe (start, overload, restart). */
  #waitKeyframe = true;
  #restartAt = 0;
  #closed = false;
  /** Frames cut because ffmpeg fell behind. */
  droppedFrames = 0;
  /** Times ffmpeg stopped on its own. */
  failures = 0;

  constructor(opts: LadderTranscoderOptions) {
    super();
    const codec = codecOf(opts.track.codec.mimeType);
    const target = opts.target ?? opts.track;
    const encoder = codecOf(target.codec.mimeType);
    if (codec !== 'h264' && codec !== 'vp8') throw new Error(`no ladder for ${opts.track.codec.mimeType}`);
    if (encoder !== 'h264' && encoder !== 'vp8') throw new Error(`no ladder encoding ${target.codec.mimeType}`);
    const injected = target.layers.filter((l) => l.injected);
    if (injected.length !== opts.heights.length) throw new Error('one injected layer per rung');
    this.#opts = opts;
    this.#codec = codec;
    this.#encoder = encoder;
    this.#target = target;
    this.#layers = injected;
    this.#log = opts.logger;
    this.#depacketizer = createDepacketizer(codec);
    // one loopback socket per rung, for the life of the ladder: ffmpeg's RTP comes back here
    this.#sockets = injected.map((layer) => {
      const socket = createSocket('udp4');
      socket.on('message', (msg) => {
        // RTP version 2 only (ffmpeg's RTCP is switched off); nothing from a stopped ffmpeg
        if (this.#ffmpeg && msg.length >= 12 && msg[0]! >> 6 === 2) target.inject(layer, msg);
      });
      socket.on('error', (err) => this.#log.warn({ err }, 'transcoded ladder: socket error'));
      socket.once('listening', () => this.#listening.add(socket));
      socket.bind(0, '127.0.0.1');
      return socket;
    });
    this.#unsubscribe = opts.track.onPacket((packet, info) => {
      if (info.kind !== 'video') return;
      for (const frame of this.#depacketizer.push(Buffer.from(packet), info.arrivalMs)) this.#onFrame(frame);
    });
  }

  /** Whether ffmpeg is running. */
  get running(): boolean {
    return this.#ffmpeg !== null;
  }

  #onFrame(frame: CodedFrame): void {
    if (this.#closed) return;
    if (this.#waitKeyframe) {
      if (!frame.keyframe) return;
      if (!this.#ffmpeg) {
        if (Date.now() < this.#restartAt || !frame.config) return;
        if (!this.#start(frame.config.width, frame.config.height)) return;
      }
      this.#waitKeyframe = false;
    }
    const ffmpeg = this.#ffmpeg;
    if (!ffmpeg) return;
    if (ffmpeg.stdin.writableLength > MAX_QUEUED_BYTES) {
      // ffmpeg is behind: drop frames until the next keyframe instead of queueing (a decoder needs the keyframe anyway)
      this.droppedFrames++;
      this.#waitKeyframe = true;
      return;
    }
    ffmpeg.stdin.write(this.#codec === 'h264' ? avccToAnnexB(frame.data) : ivfFrame(frame.data, frame.rtpTimestamp));
  }

  /** Starts ffmpeg for a source of this size; false when it cannot start yet or no rung is below the source. */
  #start(width: number, height: number): boolean {
    if (!this.#sockets.every((s) => this.#listening.has(s))) return false;
    const rungs = rungsFor(this.#opts.heights, { width, height }, { upToSource: this.#opts.upToSource ?? false });
    const outputs = rungs.flatMap((rung, i) => {
      if (!rung) return [];
      this.#layers[i]!.rebase();
      return [{ rung, port: this.#sockets[i]!.address().port }];
    });
    if (outputs.length === 0) {
      this.#log.info({ width, height, heights: this.#opts.heights }, 'transcoded ladder: no rung below the source, nothing to encode');
      this.#restartAt = Number.POSITIVE_INFINITY;
      return false;
    }
    this.#spawn(width, height, outputs);
    this.emit('start', rungs);
    return true;
  }

  #spawn(width: number, height: number, outputs: { rung: LadderRung; port: number }[]): void {
    const args = ffmpegArgs(this.#codec, this.#target.codec.payloadType, width, height, outputs, this.#encoder);
    const ffmpeg = spawn(this.#opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.#ffmpeg = ffmpeg;
    this.#waitKeyframe = true;
    if (this.#codec === 'vp8') ffmpeg.stdin.write(ivfHeader(width, height, 90_000, 0)); // pts in the RTP clock
    let stderr = '';
    ffmpeg.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    ffmpeg.stdin.on('error', () => {}); // EPIPE when it dies: handled by 'exit'
    const gone = (reason: string) => {
      if (this.#ffmpeg !== ffmpeg) return;
      this.#stopFfmpeg();
      if (this.#closed) return;
      this.failures++;
      this.#restartAt = Date.now() + RESTART_DELAY_MS;
      this.#log.warn(
        { reason, stderr: stderr.trim().split('\n').slice(-5).join('\n') },
        'transcoded ladder: ffmpeg stopped; restarting at a later keyframe',
      );
      this.emit('failed', reason);
    };
    ffmpeg.on('error', (err) => gone(`ffmpeg could not run: ${err.message}`));
    ffmpeg.on('exit', (code, signal) => gone(`ffmpeg exited (${signal ?? code})`));
    this.#log.info(
      { width, height, rungs: outputs.map((o) => `${o.rung.width}x${o.rung.height}@${o.rung.kbps}k`) },
      'transcoded ladder started',
    );
  }

  #stopFfmpeg(): void {
    const ffmpeg = this.#ffmpeg;
    this.#ffmpeg = null;
    this.#waitKeyframe = true;
    if (ffmpeg && ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill('SIGKILL');
    // a fresh decoder state for the next start
    this.#depacketizer = createDepacketizer(this.#codec);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#stopFfmpeg();
    for (const s of this.#sockets) s.close();
    this.removeAllListeners();
  }
}

/** ffmpeg's arguments: raw frames of `codec` on stdin, one RTP output per rung encoded in `encoder` (default the same codec). */
export function ffmpegArgs(
  codec: 'h264' | 'vp8',
  payloadType: number,
  width: number,
  height: number,
  outputs: { rung: LadderRung; port: number }[],
  encoder: 'h264' | 'vp8' = codec,
): string[] {
  const split = outputs.length > 1 ? `split=${outputs.length}${outputs.map((_, i) => `[s${i}]`).join('')};` : '';
  const graph =
    `[0:v]${split}` +
    outputs.map((o, i) => `${outputs.length > 1 ? `[s${i}]` : ''}scale=${o.rung.width}:${o.rung.height}[v${i}]`).join(';');
  return [
    ...['-hide_banner', '-loglevel', 'warning', '-nostats'],
    // live input: stamp frames as they arrive, start decoding after little probing
    ...['-fflags', '+nobuffer', '-flags', 'low_delay', '-use_wallclock_as_timestamps', '1'],
    ...['-probesize', '65536', '-analyzeduration', '0', '-f', codec === 'h264' ? 'h264' : 'ivf', '-i', 'pipe:0'],
    ...['-filter_complex', graph],
    ...outputs.flatMap((o, i) => [
      ...['-map', `[v${i}]`, '-an', '-fps_mode', 'passthrough', '-threads', '1'],
      ...(encoder === 'h264'
        ? ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p']
        : [
            '-c:v',
            'libvpx',
            '-deadline',
            'realtime',
            '-cpu-used',
            '8',
            '-error-resilient',
            '1',
            '-lag-in-frames',
            '0',
            '-auto-alt-ref',
            '0',
          ]),
      // a VBV buffer of 1/3 s keeps keyframes small: a 1 s buffer let them outgrow a capped viewer's queue (2–3 s freezes)
      ...['-b:v', `${o.rung.kbps}k`, '-maxrate', `${o.rung.kbps}k`, '-bufsize', `${Math.round(o.rung.kbps / 3)}k`],
      // keyframes where the source has them (switch points line up); at least every 4 s if it has few
      ...['-force_key_frames', 'source', '-g', '120'],
      ...['-f', 'rtp', '-payload_type', String(payloadType), '-pkt_size', '1200', '-rtpflags', 'skip_rtcp'],
      `rtp://127.0.0.1:${o.port}`,
    ]),
  ];
}
