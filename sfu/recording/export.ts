/**
 * A recording (fragmented MP4 or live WebM, finished, still being written, or
 * cut short by a crash) → one regular file that any player opens and seeks:
 * MP4 with `moov` before `mdat` ("faststart"), or for VP8 a WebM with its
 * cues. Packets are copied, never re-encoded.
 *
 * The result is written once to a temporary name and renamed into place, so
 * its length is fixed when the caller serves it (HTTP Range works on a plain
 * file). Memory stays small: the MP4 index is reserved up front from the
 * packet counts, media is streamed through. A full disk fails the export
 * (ENOSPC) and leaves no file: every byte is written or it throws.
 */
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type {
  EncodedAudioPacketSource,
  EncodedVideoPacketSource,
  Output,
  StreamTarget,
  EncodedPacket,
  StreamTargetChunk,
  InputTrack,
} from 'mediabunny';
import { mediabunny } from './mediabunny.ts';

export interface ExportResult {
  /** Size of the written file. */
  bytes: number;
  /** Duration of the longest track, seconds. */
  seconds: number;
  /** Container written. */
  container: 'mp4' | 'webm';
}

interface Copy {
  track: InputTrack;
  source: EncodedVideoPacketSource | EncodedAudioPacketSource;
  packets: AsyncGenerator<EncodedPacket, void, unknown>;
  head: EncodedPacket | null;
  meta: EncodedVideoChunkMetadata | EncodedAudioChunkMetadata | undefined;
}

/** Writes `dst` (MP4 faststart, or WebM with cues when the recording is VP8) from the recording at `src`. */
export async function exportProgressive(src: string, dst: string): Promise<ExportResult> {
  const {
    ALL_FORMATS,
    EncodedAudioPacketSource,
    EncodedPacketSink,
    EncodedVideoPacketSource,
    FilePathSource,
    Input,
    Mp4OutputFormat,
    Output,
    WebMOutputFormat,
  } = mediabunny();
  const input = new Input({ source: new FilePathSource(src), formats: ALL_FORMATS });
  const tmp = `${dst}.${process.pid}.part`;
  let output: Output | null = null;
  try {
    const tracks = (await input.getTracks()).filter((t) => t.isVideoTrack() || t.isAudioTrack());
    if (tracks.length === 0) throw new Error(`${src}: no audio or video track`);
    const webm = tracks.some((t) => t.codec === 'vp8');
    output = new Output({
      format: webm ? new WebMOutputFormat() : new Mp4OutputFormat({ fastStart: 'reserve' }),
      target: completeFileTarget(tmp),
    });
    const copies: Copy[] = [];
    let seconds = 0;
    for (const track of tracks) {
      const stats = await track.computePacketStats();
      seconds = Math.max(seconds, await track.computeDuration());
      if (stats.packetCount === 0) continue;
      const sink = new EncodedPacketSink(track);
      if (track.isVideoTrack()) {
        const config = await track.getDecoderConfig();
        if (!track.codec || !config) throw new Error(`${src}: video track ${track.id} has no decoder config`);
        const source = new EncodedVideoPacketSource(track.codec);
        output.addVideoTrack(source, { maximumPacketCount: stats.packetCount });
        copies.push({ track, source, packets: sink.packets(), head: null, meta: { decoderConfig: config } });
      } else if (track.isAudioTrack()) {
        const config = await track.getDecoderConfig();
        if (!track.codec || !config) throw new Error(`${src}: audio track ${track.id} has no decoder config`);
        const source = new EncodedAudioPacketSource(track.codec);
        output.addAudioTrack(source, { maximumPacketCount: stats.packetCount });
        copies.push({ track, source, packets: sink.packets(), head: null, meta: { decoderConfig: config } });
      }
    }
    await output.start();
    for (const c of copies) c.head = (await c.packets.next()).value ?? null;
    // interleave by timestamp so the file reads front to back
    for (;;) {
      let next: Copy | null = null;
      for (const c of copies) if (c.head && (!next || c.head.timestamp < next.head!.timestamp)) next = c;
      if (!next) break;
      const packet = next.head!;
      if (next.source instanceof EncodedVideoPacketSource)
        await next.source.add(packet, next.meta as EncodedVideoChunkMetadata | undefined);
      else await next.source.add(packet, next.meta as EncodedAudioChunkMetadata | undefined);
      next.meta = undefined;
      next.head = (await next.packets.next()).value ?? null;
    }
    await output.finalize();
    await rename(tmp, dst);
    return { bytes: (await stat(dst)).size, seconds, container: webm ? 'webm' : 'mp4' };
  } catch (err) {
    if (output && output.state !== 'finalized' && output.state !== 'canceled') await output.cancel().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  } finally {
    input.dispose();
  }
}

/**
 * A file target that writes every byte or fails. mediabunny's FilePathTarget takes a short write
 * as done, and on a full disk a write(2) is short before it fails: the export "succeeded" with a
 * file cut wherever the disk filled up.
 */
function completeFileTarget(path: string): StreamTarget {
  let fh: FileHandle | null = null;
  const close = async () => {
    const f = fh;
    fh = null;
    await f?.close();
  };
  const writable = new WritableStream<StreamTargetChunk>({
    start: async () => {
      fh = await open(path, 'w');
    },
    write: async (chunk) => {
      if (!fh) throw new Error(`${path}: written after close`);
      try {
        for (let done = 0; done < chunk.data.byteLength;) {
          const { bytesWritten } = await fh.write(chunk.data, done, chunk.data.byteLength - done, chunk.position + done);
          if (bytesWritten === 0) throw Object.assign(new Error(`${path}: no byte written`), { code: 'EIO' });
          done += bytesWritten;
        }
      } catch (err) {
        // an errored stream is neither closed nor aborted: let go of the file (and the space it holds) here
        await close().catch(() => {});
        throw err;
      }
    },
    close,
    abort: close,
  });
  return new (mediabunny().StreamTarget)(writable, { chunked: true });
}
