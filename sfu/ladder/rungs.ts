/** The rungs of a transcoded ladder: which lower layers whipcast encodes for a single-layer publisher. */

/** One lower layer the ladder encodes. */
export interface LadderRung {
  /** Picture height, e.g. 360 for "360p". */
  height: number;
  /** Picture width, even, keeping the source's aspect ratio. */
  width: number;
  /** Target video bitrate, kbit/s. */
  kbps: number;
}

/** Typical bitrates of a 30 fps layer of a given height (x264 veryfast / libvpx realtime), kbit/s. */
const KBPS_BY_HEIGHT: readonly [height: number, kbps: number][] = [
  [144, 120],
  [180, 180],
  [240, 300],
  [360, 600],
  [480, 1000],
  [540, 1300],
  [720, 2000],
  [1080, 4000],
  [1440, 7000],
  [2160, 12000],
];

/** Parses `TRANSCODE_LADDER` ("360p,720p"): heights, lowest first, no duplicates. Throws on anything else. */
export function parseLadder(spec: string): number[] {
  const heights = new Set<number>();
  for (const item of spec.split(',').map((s) => s.trim())) {
    if (!item) continue;
    const m = /^(\d{2,4})p$/i.exec(item);
    const h = m ? Number(m[1]) : NaN;
    if (!Number.isInteger(h) || h < 90 || h > 2160 || h % 2 !== 0)
      throw new Error(`"${item}" is not a layer height like 360p (even, 90p–2160p)`);
    heights.add(h);
  }
  return [...heights].sort((a, b) => a - b);
}

/**
 * The rungs worth encoding from a source of this size: those below its height (the others stay unfed), or with
 * `upToSource` those at or above it too, at the source's size (a copy in another codec is worth it at any size).
 */
export function rungsFor(
  heights: readonly number[],
  source: { width: number; height: number },
  opts: { upToSource?: boolean } = {},
): (LadderRung | null)[] {
  return heights.map((wanted) => {
    const height = opts.upToSource ? Math.min(wanted, source.height) : wanted;
    return height < source.height || opts.upToSource
      ? { height, width: Math.max(2, Math.round((source.width * height) / source.height / 2) * 2), kbps: kbpsFor(height) }
      : null;
  });
}

/**
 * The height of the VP8 rung an H.264 channel gets for browsers without an H.264 decoder: the ladder's lowest
 * rung of at least 360p (else its highest). 360p is still watchable and what one core encodes with room to
 * spare (docs/benchmarks.md); the rung is capped at the source's height when encoded.
 */
export function vp8RungHeight(heights: readonly number[]): number {
  return heights.find((h) => h >= 360) ?? heights.at(-1) ?? 360;
}

/** Target bitrate for a layer of this height: the table's, interpolated by pixel count. */
export function kbpsFor(height: number): number {
  let prev = KBPS_BY_HEIGHT[0]!;
  for (const row of KBPS_BY_HEIGHT) {
    if (row[0] === height) return row[1];
    if (row[0] > height) {
      const t = (height * height - prev[0] * prev[0]) / (row[0] * row[0] - prev[0] * prev[0]);
      return Math.round(prev[1] + t * (row[1] - prev[1]));
    }
    prev = row;
  }
  return prev[1];
}
