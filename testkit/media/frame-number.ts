/**
 * Frame numbers drawn into the picture, so a test can tell which frame a viewer
 * shows by looking at it (a canvas, a decoded file), whatever path the media took.
 *
 * The pattern is a band across the top eighth of the picture, split into 25
 * equal cells, each all white or all black:
 *
 *   [W][B][bit19 … bit0][parity][B][W]
 *
 * 20 bits of frame number (most significant first; 2^20 frames ≈ 9.7 h at
 * 30 fps), even parity over them, and fixed start/stop markers. Cells are big
 * (1/25 of the width × 1/8 of the height) so the pattern survives lossy
 * encoding and downscaling to a quarter of the size (a low simulcast layer).
 * The reader refuses anything that is not clearly this pattern (a cell that is
 * neither clearly dark nor clearly light, a wrong marker, a parity mismatch)
 * and returns null, so "no pattern" is never mistaken for a number.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Cells across the band. */
export const FRAME_NUMBER_CELLS = 25;
/** Bits of frame number carried. */
export const FRAME_NUMBER_BITS = 20;
/** Largest number the pattern carries; a fixture never holds more frames than this. */
export const MAX_FRAME_NUMBER = 2 ** FRAME_NUMBER_BITS - 1;
/** Height of the band as a fraction of the picture height. */
export const FRAME_NUMBER_BAND = 1 / 8;

const FIRST_BIT_CELL = 2;
const PARITY_CELL = FIRST_BIT_CELL + FRAME_NUMBER_BITS;
/** Luma (0–255) a cell must be below to read as black / above to read as white. */
const DARK = 80;
const LIGHT = 176;

/** Pixel columns [x, x + w) of cell i in a picture `width` wide. */
function cellSpan(i: number, width: number): { x: number; w: number } {
  const x = Math.round((i * width) / FRAME_NUMBER_CELLS);
  return { x, w: Math.round(((i + 1) * width) / FRAME_NUMBER_CELLS) - x };
}

/** Band height in pixels for a picture `height` tall. */
const bandHeight = (height: number): number => Math.max(1, Math.round(height * FRAME_NUMBER_BAND));

/**
 * An ffmpeg filter chain (for `-vf`) that draws the pattern of the input frame
 * index `n` into each frame of a `width`×`height` picture.
 */
export function frameNumberFilter(width: number, height: number): string {
  const h = bandHeight(height);
  const box = (i: number, enable?: string): string => {
    const { x, w } = cellSpan(i, width);
    return `drawbox=x=${x}:y=0:w=${w}:h=${h}:color=white:t=fill${enable ? `:enable='${enable}'` : ''}`;
  };
  const bit = (b: number): string => `mod(floor(n/${2 ** b}),2)`;
  const parts = [`drawbox=x=0:y=0:w=${width}:h=${h}:color=black:t=fill`, box(0), box(FRAME_NUMBER_CELLS - 1)];
  for (let k = 0; k < FRAME_NUMBER_BITS; k++) parts.push(box(FIRST_BIT_CELL + k, bit(FRAME_NUMBER_BITS - 1 - k)));
  const bits = Array.from({ length: FRAME_NUMBER_BITS }, (_, b) => bit(b)).join('+');
  parts.push(box(PARITY_CELL, `mod(${bits},2)`));
  return parts.join(',');
}

/**
 * Reads the frame number drawn by `frameNumberFilter` from an RGBA picture of
 * any size (the whole decoded frame, not cropped); null when the picture does
 * not clearly carry the pattern.
 */
export function readFrameNumber(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): number | null {
  if (width < FRAME_NUMBER_CELLS || height < 8 || rgba.length < width * height * 4) return null;
  const h = bandHeight(height);
  // The middle half of each cell, clear of edges blurred by scaling and block artefacts.
  const y0 = Math.floor(h / 4);
  const y1 = Math.max(y0 + 1, Math.ceil((3 * h) / 4));
  const bits: number[] = [];
  for (let i = 0; i < FRAME_NUMBER_CELLS; i++) {
    const { x, w } = cellSpan(i, width);
    const x0 = x + Math.floor(w / 4);
    const x1 = Math.max(x0 + 1, x + Math.ceil((3 * w) / 4));
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1; y++) {
      for (let xx = x0; xx < x1; xx++) {
        const p = (y * width + xx) * 4;
        sum += 0.299 * rgba[p]! + 0.587 * rgba[p + 1]! + 0.114 * rgba[p + 2]!;
        n++;
      }
    }
    const luma = sum / n;
    if (luma < DARK) bits.push(0);
    else if (luma > LIGHT) bits.push(1);
    else return null;
  }
  if (bits[0] !== 1 || bits[1] !== 0 || bits[FRAME_NUMBER_CELLS - 2] !== 0 || bits[FRAME_NUMBER_CELLS - 1] !== 1) return null;
  let value = 0;
  let ones = 0;
  for (let k = 0; k < FRAME_NUMBER_BITS; k++) {
    const b = bits[FIRST_BIT_CELL + k]!;
    value = value * 2 + b;
    ones += b;
  }
  if (ones % 2 !== bits[PARITY_CELL]) return null;
  return value;
}

/** What `frameNumberInPage` needs of a page: playwright-core's and puppeteer-core's both fit. */
export interface EvaluatingPage {
  evaluate(expression: string): Promise<unknown>;
}

/** Longest side of the canvas the page draws the video into (a 16:9 picture becomes 320×180). */
const PAGE_CANVAS_MAX = 320;

// Plain JavaScript run in the page (a string, so no bundler helper leaks into it):
// draws the current picture of the element into a small canvas, returns its RGBA as base64.
const GRAB_IN_PAGE = `async (selector, max) => {
  const video = document.querySelector(selector);
  if (!video || !(video instanceof HTMLVideoElement)) throw new Error('no <video> matches ' + selector);
  if (video.readyState < 2 || !video.videoWidth) return null;
  const scale = Math.min(1, max / Math.max(video.videoWidth, video.videoHeight));
  const width = Math.max(1, Math.round(video.videoWidth * scale));
  const height = Math.max(1, Math.round(video.videoHeight * scale));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  let s = '';
  for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  return { width, height, rgba: btoa(s) };
}`;

/**
 * The frame number on the picture a `<video>` element in the page currently
 * shows; null when it shows nothing yet or no numbered picture.
 */
export async function frameNumberInPage(page: EvaluatingPage, selector = 'video'): Promise<number | null> {
  const grab = await page.evaluate(`(${GRAB_IN_PAGE})(${JSON.stringify(selector)}, ${PAGE_CANVAS_MAX})`);
  if (grab === null || grab === undefined) return null;
  if (typeof grab !== 'object' || !('rgba' in grab && 'width' in grab && 'height' in grab)) throw new Error('canvas grab returned nothing');
  const { rgba, width, height } = grab;
  if (typeof rgba !== 'string' || typeof width !== 'number' || typeof height !== 'number') throw new Error('canvas grab returned nothing');
  return readFrameNumber(Buffer.from(rgba, 'base64'), width, height);
}

/** What a `<video>` showed when no frame number could be read off it. */
export interface UnreadPicture {
  /** ms after the read began. */
  atMs: number;
  /** `HTMLMediaElement.readyState`: below 2 the element has no picture (e.g. just after its `srcObject` changed). */
  readyState: number;
  videoWidth: number;
  videoHeight: number;
  /** Id of the MediaStream it plays (a change between reads: the page swapped its source). */
  streamId: string | null;
  /** Its tracks as `kind:readyState`, muted ones marked. */
  tracks: string[];
  /** The picture at its own size as PNG (null while it has none). */
  png: Buffer | null;
}

/** A frame number read off the picture, with the pictures that gave none before it. */
export interface ShownFrameNumber {
  /** null: no picture in the window carried a readable number. */
  frame: number | null;
  misses: UnreadPicture[];
}

const DESCRIBE_IN_PAGE = `(selector) => {
  const video = document.querySelector(selector);
  if (!video || !(video instanceof HTMLVideoElement)) throw new Error('no <video> matches ' + selector);
  const stream = video.srcObject instanceof MediaStream ? video.srcObject : null;
  let png = null;
  if (video.readyState >= 2 && video.videoWidth) {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    png = canvas.toDataURL('image/png').split(',')[1];
  }
  return {
    readyState: video.readyState,
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
    streamId: stream ? stream.id : null,
    tracks: stream ? stream.getTracks().map((t) => t.kind + ':' + t.readyState + (t.muted ? ':muted' : '')) : [],
    png,
  };
}`;

/**
 * The frame number on the picture a `<video>` shows, read up to every `intervalMs` for `withinMs` until one
 * reads: a picture that is briefly unreadable (the element reloading after its source changed, one
 * badly concealed frame) is not taken for "no picture". Every miss is kept with what the element showed, for
 * the test to log or save (`saveUnreadPictures`). A frozen picture still reads (the same number again):
 * judge freezes by how the numbers advance, not here.
 */
export async function frameNumberShown(
  page: EvaluatingPage,
  opts: { selector?: string; withinMs?: number; intervalMs?: number } = {},
): Promise<ShownFrameNumber> {
  const { selector = 'video', withinMs = 500, intervalMs = 100 } = opts;
  const start = Date.now();
  const misses: UnreadPicture[] = [];
  for (;;) {
    const frame = await frameNumberInPage(page, selector);
    if (frame !== null) return { frame, misses };
    misses.push(await describePicture(page, selector, Date.now() - start));
    if (Date.now() - start >= withinMs) return { frame: null, misses };
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function describePicture(page: EvaluatingPage, selector: string, atMs: number): Promise<UnreadPicture> {
  const r = await page.evaluate(`(${DESCRIBE_IN_PAGE})(${JSON.stringify(selector)})`);
  if (typeof r !== 'object' || r === null) throw new Error('video description returned nothing');
  const o: Record<string, unknown> = { ...r };
  const num = (k: string): number => (typeof o[k] === 'number' ? o[k] : 0);
  return {
    atMs,
    readyState: num('readyState'),
    videoWidth: num('videoWidth'),
    videoHeight: num('videoHeight'),
    streamId: typeof o.streamId === 'string' ? o.streamId : null,
    tracks: Array.isArray(o.tracks) ? o.tracks.map(String) : [],
    png: typeof o.png === 'string' ? Buffer.from(o.png, 'base64') : null,
  };
}

/** One line per miss (without the pictures), for a log or an assertion message. */
export function describeUnreadPictures(misses: readonly UnreadPicture[]): string {
  return misses
    .map(
      (m) =>
        `+${m.atMs} ms: readyState ${m.readyState}, ${m.videoWidth}x${m.videoHeight}, stream ${m.streamId ?? 'none'} [${m.tracks.join(' ')}]` +
        (m.png ? '' : ', no picture'),
    )
    .join('; ');
}

/** Writes the misses' pictures as `<prefix>-<n>.png` into `dir`; returns the files written. */
export function saveUnreadPictures(misses: readonly UnreadPicture[], dir: string, prefix: string): string[] {
  mkdirSync(dir, { recursive: true });
  return misses.flatMap((m, i) => {
    if (!m.png) return [];
    const file = join(dir, `${prefix}-${i}.png`);
    writeFileSync(file, m.png);
    return [file];
  });
}
