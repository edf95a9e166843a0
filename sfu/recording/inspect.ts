/**
 * What a recording file holds, read back from the file alone: after a crash
 * or restart the caller lists a recording with the duration it really has.
 */
import { open } from 'node:fs/promises';
import { mediabunny } from './mediabunny.ts';

export interface RecordingInfo {
  /** Duration of the longest track, seconds (0 when no complete fragment was written). */
  seconds: number;
  /** Codecs of the tracks, e.g. `['avc', 'opus']`. */
  codecs: string[];
}

/** Reads a recording's duration and tracks; rejects when the file is not a readable recording. */
export async function inspectRecording(path: string): Promise<RecordingInfo> {
  const { ALL_FORMATS, FilePathSource, Input } = mediabunny();
  const input = new Input({ source: new FilePathSource(path), formats: ALL_FORMATS });
  try {
    const tracks = await input.getTracks();
    let seconds = 0;
    for (const t of tracks) seconds = Math.max(seconds, await t.computeDuration());
    return { seconds, codecs: tracks.map((t) => t.codec ?? 'unknown') };
  } finally {
    input.dispose();
  }
}

/**
 * After a crash of the machine (not just the process), an MP4 recording can end in a partly written
 * fragment. Cuts it back to its last complete `moof`+`mdat` pair; returns the bytes removed.
 * WebM recordings need no repair: readers stop at a truncated cluster.
 */
export async function repairRecording(path: string): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(16);
    let good = 0;
    let pendingMoof = -1;
    for (let off = 0; off + 8 <= size;) {
      await fh.read(head, 0, 16, off);
      let box = head.readUInt32BE(0);
      const type = head.toString('latin1', 4, 8);
      if (box === 1) box = Number(head.readBigUInt64BE(8));
      if (box === 0) box = size - off;
      if (box < 8 || off + box > size) break; // truncated box
      off += box;
      if (type === 'moof') pendingMoof = off;
      else if (type === 'mdat') {
        if (pendingMoof >= 0) good = off;
        pendingMoof = -1;
      } else if (pendingMoof < 0) good = off; // ftyp, moov, mfra…
    }
    if (good === 0 || good === size) return 0;
    await fh.truncate(good);
    return size - good;
  } finally {
    await fh.close();
  }
}
