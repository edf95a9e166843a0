/**
 * A recording (fragmented MP4 or live WebM, finished, still being written, or
 * cut short by a crash) → one regular file that any player opens and seeks:
 * MP4 with `moov` before `mdat` ("faststart"), or for VP8 a WebM with its
 * cues. Packets are copied, never re-encoded.
 *
 * The result is written once to a temporary name and renamed into place, so
 * its length is fixed when the caller serves it (HTTP Range works on a plain
 * file). Memory stays small: the MP4 index is reserved up front from the
 * packet counts, media is streamed through.
 */
import { rename, rm, stat } from 'node:fs/promises';
import {
  ALL_FORMATS,
  EncodedAudioPacketSource,
  EncodedPacketSink,
  EncodedVideoPacketSource,
  FilePathSource,
  FilePathTarget,
  Input,
  Mp4OutputFormat,
  Output,
  WebMOutputFormat,
  type EncodedPacket,
  type InputTrack,
} from 'mediabunny';

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
  const input = new Input({ source: new FilePathSource(src), formats: ALL_FORMATS });
  const tmp = `${dst}.${process.pid}.part`;
  let output: Output | null = null;
  try {
    const tracks = (await input.getTracks()).filter((t) => t.isVideoTrack() || t.isAudioTrack());
    if (tracks.length === 0) throw new Error(`${src}: no audio or video track`);
    const webm = tracks.some((t) => t.codec === 'vp8');
    output = new Output({
      format: webm ? new WebMOutputFormat() : new Mp4OutputFormat({ fastStart: 'reserve' }),
      target: new FilePathTarget(tmp),
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
