/**
 * Click to picture: how long a viewer who opens a channel page waits for the
 * first picture, measured in a real Chromium from the picture itself.
 *
 * Each sample opens `url` in a fresh browser context (no cache, no storage).
 * A script that runs before the page's own records, on the page's clock
 * (`performance.now()`, 0 = navigation start), when the page reached each step
 * on the way: the document, the socket, the peer connection, ICE, DTLS, the
 * first RTP packet (the video track unmutes), and every frame the page's
 * `<video>` presents (`requestVideoFrameCallback`: when its last packet came,
 * when it was decoded, when it was presented), with the band of cells carrying
 * its frame number drawn off the picture. The
 * picture time is the presentation time of the first frame whose number reads
 * (`readFrameNumber`): a picture of the stream, not a black frame or a UI claim.
 * The page's own `performance.mark('whipcast:…')` marks and the end of each
 * `fetch` it made (resource timing) are collected too.
 */
import type { Browser as PlaywrightBrowser } from 'playwright-core';
import { readFrameNumber } from './media/frame-number.ts';

/** Steps the script records by itself, in the order a page normally reaches them (ms from navigation start). */
export const PICTURE_STEPS = [
  'responseEnd',
  'scriptsLoaded',
  'domContentLoaded',
  'socketCreated',
  'socketOpen',
  'socketFirstMessage',
  'videoElement',
  'peerConnection',
  'setRemoteDescription',
  'setLocalDescription',
  'iceConnected',
  'dtlsConnected',
  'track',
  'firstRtp',
  'frameReceived',
  'frameDecoded',
  'picture',
] as const;

/**
 * Flags for the Chromium that `clickToPicture` visits with. Each fresh context opens a window of its own, and
 * Chromium 156 loads that window's omnibox popup (a WebUI page in a renderer of its own) with it: in a trace on
 * the 2-core VM it kept a core busy for 0.7–1.4 s of every visit, for the channel page and the bare page alike.
 * A viewer's browser has it loaded once, not per click. (`--disable-features` is one switch: the WebRTC flag
 * of `CHROMIUM_ARGS` is repeated.)
 */
export const CLICK_TO_PICTURE_CHROMIUM_ARGS = [
  '--disable-features=WebRtcHideLocalIpsWithMdns,WebUIOmniboxPopup,WebUIOmniboxFullPopup,WebUIOmniboxAimPopup,PreloadTopChromeWebUI',
];

export interface PictureSample {
  /** ms from navigation start to the presentation of the first frame whose number reads off the picture. */
  pictureMs: number;
  /** The frame number on that picture. */
  frameNumber: number;
  /** ms from navigation start to each step reached (`PICTURE_STEPS`, then the page's `whipcast:*` marks). */
  steps: Record<string, number>;
}

export interface ClickToPictureOptions {
  /** Give up (throw) when no numbered picture showed after this long (default 15 s). */
  timeoutMs?: number;
  /** Page viewport (default 1280×720). */
  viewport?: { width: number; height: number };
}

/** Width the page scales each presented frame to before taking the band off it. */
const GRAB_WIDTH = 160;
/** Frames recorded at most per sample. */
const MAX_FRAMES = 90;

// Plain JavaScript (a string, so no bundler helper leaks into the page), run before the page's own scripts.
const INIT_SCRIPT = `(() => {
  if (window.__picture || window !== window.top) return;
  const rec = { steps: {}, frames: [], done: false };
  window.__picture = rec;
  const first = (name, at) => { if (!(name in rec.steps)) rec.steps[name] = at === undefined ? performance.now() : at; };

  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      first('socketCreated');
      this.addEventListener('open', () => first('socketOpen'));
      this.addEventListener('message', () => first('socketFirstMessage'));
    }
  };

  const NativePeerConnection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      const createdAt = performance.now();
      this.__createdAt = createdAt;
      this.addEventListener('track', (e) => {
        first('track');
        // a remote track is muted until its first RTP packet arrives
        if (e.track.kind === 'video') e.track.addEventListener('unmute', () => first('firstRtp'), { once: true });
      });
      this.addEventListener('iceconnectionstatechange', () => {
        if (this.iceConnectionState === 'connected' || this.iceConnectionState === 'completed') first('iceConnected');
      });
      this.addEventListener('connectionstatechange', () => { if (this.connectionState === 'connected') first('dtlsConnected'); });
    }
    setRemoteDescription(...args) {
      // the receiving peer connection (a capability probe never gets a remote description)
      first('peerConnection', this.__createdAt);
      first('setRemoteDescription');
      return super.setRemoteDescription(...args);
    }
    setLocalDescription(...args) {
      if ('setRemoteDescription' in rec.steps) first('setLocalDescription');
      return super.setLocalDescription(...args);
    }
  };

  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const seen = new WeakSet();
  const watchVideo = (video) => {
    if (seen.has(video) || !('requestVideoFrameCallback' in video)) return;
    seen.add(video);
    first('videoElement');
    const onFrame = (now, meta) => {
      if (rec.done || rec.frames.length >= ${MAX_FRAMES}) return;
      const w = ${GRAB_WIDTH};
      const h = Math.max(8, Math.round((w * meta.height) / meta.width));
      // the top eighth is the band that carries the number; a few rows more for rounding
      const rows = Math.min(h, Math.ceil(h / 8) + 2);
      canvas.width = w;
      canvas.height = h;
      ctx.drawImage(video, 0, 0, w, h);
      const data = ctx.getImageData(0, 0, w, rows).data;
      let s = '';
      for (let i = 0; i < data.length; i += 0x8000) s += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
      rec.frames.push({
        at: meta.presentationTime,
        received: meta.receiveTime,
        decoded: meta.receiveTime !== undefined && meta.processingDuration !== undefined ? meta.receiveTime + meta.processingDuration * 1000 : undefined,
        w, h, rows, band: btoa(s),
      });
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  new MutationObserver(() => document.querySelectorAll('video').forEach(watchVideo)).observe(document, { childList: true, subtree: true });
})()`;

// Reads what the script recorded, from frame `from` on.
const READ_IN_PAGE = `(from) => {
  const rec = window.__picture;
  if (!rec) return null;
  const nav = performance.getEntriesByType('navigation')[0];
  const marks = {};
  for (const m of performance.getEntriesByType('mark')) if (m.name.startsWith('whipcast:') && !(m.name in marks)) marks[m.name] = m.startTime;
  const fetches = {};
  let scripts = 0;
  for (const r of performance.getEntriesByType('resource')) {
    if (r.initiatorType === 'script' || r.initiatorType === 'link') scripts = Math.max(scripts, r.responseEnd);
    if (r.initiatorType !== 'fetch' && r.initiatorType !== 'xmlhttprequest') continue;
    const path = new URL(r.name).pathname.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, ':id');
    if (!(('fetch ' + path) in fetches)) fetches['fetch ' + path] = r.responseEnd;
  }
  return {
    steps: { ...rec.steps, ...(scripts ? { scriptsLoaded: scripts } : {}), ...(nav ? { responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd || undefined } : {}) },
    marks: { ...fetches, ...marks },
    frames: rec.frames.slice(from),
  };
}`;

interface RecordedFrame {
  at: number;
  received?: number;
  decoded?: number;
  w: number;
  h: number;
  rows: number;
  band: string;
}

interface Recorded {
  steps: Record<string, number | undefined>;
  marks: Record<string, number>;
  frames: RecordedFrame[];
}

/** The frame number on a recorded frame's band, or null. */
function frameNumberOf(f: RecordedFrame): number | null {
  const rgba = new Uint8Array(f.w * f.h * 4);
  rgba.set(Buffer.from(f.band, 'base64').subarray(0, f.w * f.rows * 4));
  return readFrameNumber(rgba, f.w, f.h);
}

/**
 * One sample: opens `url` (a channel page showing a live, frame-numbered stream) in a fresh context of
 * `browser` and returns when its first numbered picture was presented, with the steps before it.
 */
export async function clickToPicture(browser: PlaywrightBrowser, url: string, opts: ClickToPictureOptions = {}): Promise<PictureSample> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 720 } });
  try {
    await context.addInitScript(INIT_SCRIPT);
    const page = await context.newPage();
    const deadline = Date.now() + timeoutMs;
    await page.goto(url, { waitUntil: 'commit', timeout: timeoutMs });
    let read = 0;
    for (;;) {
      const r = (await page.evaluate(`(${READ_IN_PAGE})(${read})`)) as Recorded | null;
      if (r) {
        for (const f of r.frames) {
          const n = frameNumberOf(f);
          if (n === null) continue;
          await page.evaluate('window.__picture.done = true');
          const steps: Record<string, number> = {};
          for (const name of PICTURE_STEPS) if (typeof r.steps[name] === 'number') steps[name] = round(r.steps[name]);
          if (f.received !== undefined) steps.frameReceived = round(f.received);
          if (f.decoded !== undefined) steps.frameDecoded = round(f.decoded);
          steps.picture = round(f.at);
          for (const [name, at] of Object.entries(r.marks)) steps[name] = round(at);
          return { pictureMs: round(f.at), frameNumber: n, steps };
        }
        read += r.frames.length;
      }
      if (Date.now() > deadline) {
        const steps = r ? Object.entries({ ...r.steps, ...r.marks }).map(([k, v]) => `${k} ${Math.round(v ?? -1)}`) : [];
        throw new Error(`no numbered picture within ${timeoutMs} ms at ${url} (${read} frames presented; reached: ${steps.join(', ')})`);
      }
      await page.waitForTimeout(50);
    }
  } finally {
    await context.close().catch(() => {});
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** The p-th percentile (nearest rank) of samples; NaN when there are none. */
function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export interface PictureSummary {
  samples: number;
  /** Click to picture, ms. */
  p50: number;
  p95: number;
  max: number;
  /** The median time of each step over the samples that reached it, in the order reached. */
  steps: { step: string; p50Ms: number; reached: number }[];
}

/** p50/p95 of the picture times and the median of each step. */
export function summarizePictures(samples: PictureSample[]): PictureSummary {
  const times = samples.map((s) => s.pictureMs);
  const names = new Set(samples.flatMap((s) => Object.keys(s.steps)));
  const steps = [...names]
    .map((step) => {
      const at = samples.flatMap((s) => (step in s.steps ? [s.steps[step]!] : []));
      return { step, p50Ms: percentile(at, 50), reached: at.length };
    })
    .sort((a, b) => a.p50Ms - b.p50Ms);
  return { samples: samples.length, p50: percentile(times, 50), p95: percentile(times, 95), max: Math.max(...times), steps };
}
