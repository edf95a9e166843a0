/**
 * The browser's own WebRTC figures for whatever a page plays (the web player's
 * mediasoup-client connections, a WHEP viewer, anything): record the page's
 * peer connections before it loads (`recordPeerConnections`), then read their
 * inbound RTP streams (`pageInboundRtp`, summed with `sumInbound` /
 * `summedVideo`) or the stream behind the picture a `<video>` shows
 * (`shownVideoRtp`: never a receiver left over from a seek or a switch). The
 * page code is plain JavaScript in strings, so Chromium (playwright-core) and
 * Firefox (puppeteer-core) run the same.
 */
import type { EvaluatingPage } from './media/frame-number.ts';

/** A page whose scripts can be prepared before they run: playwright-core's (`addInitScript`) or puppeteer-core's. */
export interface InitScriptPage {
  addInitScript?(script: string): Promise<unknown>;
  evaluateOnNewDocument?(script: string): Promise<unknown>;
}

/** One inbound RTP stream's `getStats` figures (0 where the browser gives none). */
export interface InboundRtp {
  kind: 'audio' | 'video';
  ssrc: number;
  packetsReceived: number;
  packetsLost: number;
  framesDecoded: number;
  /** Complete frames the jitter buffer got, and those it dropped (too late or undecodable) before decoding. */
  framesReceived: number;
  framesDropped: number;
  keyFramesDecoded: number;
  framesPerSecond: number;
  frameWidth: number;
  frameHeight: number;
  freezeCount: number;
  totalFreezesDuration: number;
  nackCount: number;
  pliCount: number;
  firCount: number;
}

const COUNTERS = [
  'ssrc',
  'packetsReceived',
  'packetsLost',
  'framesDecoded',
  'framesReceived',
  'framesDropped',
  'keyFramesDecoded',
  'framesPerSecond',
  'frameWidth',
  'frameHeight',
  'freezeCount',
  'totalFreezesDuration',
  'nackCount',
  'pliCount',
  'firCount',
] as const;

// Plain JavaScript run in every document of the page before its own scripts.
const RECORD = `(() => {
  if (window.__whipcastPcs) return;
  const pcs = [];
  window.__whipcastPcs = pcs;
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      pcs.push(this);
    }
  };
})();`;

/** Records every RTCPeerConnection the page makes. Call before the page loads (navigates); `impairPage` may come before or after. */
export async function recordPeerConnections(page: InitScriptPage): Promise<void> {
  if (page.addInitScript) await page.addInitScript(RECORD);
  else if (page.evaluateOnNewDocument) await page.evaluateOnNewDocument(RECORD);
  else throw new Error('recordPeerConnections: the page can neither addInitScript nor evaluateOnNewDocument');
}

const PICK = `(s) => { const o = { kind: s.kind }; for (const k of ${JSON.stringify(COUNTERS)}) o[k] = s[k] || 0; return o; }`;

const INBOUND_IN_PAGE = `async () => {
  const pick = ${PICK};
  const out = [];
  for (const pc of window.__whipcastPcs || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') out.push(pick(s)); });
  }
  return out;
}`;

const SHOWN_IN_PAGE = `async (selector) => {
  const pick = ${PICK};
  const video = document.querySelector(selector);
  const stream = video && video.srcObject;
  const track = stream && stream.getVideoTracks ? stream.getVideoTracks()[0] : undefined;
  if (!track) return null;
  for (const pc of window.__whipcastPcs || []) {
    if (pc.connectionState === 'closed') continue;
    const receiver = pc.getReceivers().find((r) => r.track === track);
    if (!receiver) continue;
    let found = null;
    (await receiver.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') found = pick(s); });
    return found;
  }
  return null;
}`;

/** Every inbound RTP stream of the page's open peer connections (see `recordPeerConnections`). */
export async function pageInboundRtp(page: EvaluatingPage): Promise<InboundRtp[]> {
  const r = await page.evaluate(`(${INBOUND_IN_PAGE})()`);
  if (!Array.isArray(r)) throw new Error('inbound stats page script returned nothing');
  return r.map(toInbound);
}

/**
 * The inbound video stream behind the picture `<video>` (`selector`) shows now — its receiver's stats, not
 * those of receivers the player left behind. Null while it shows no track of a recorded peer connection.
 */
export async function shownVideoRtp(page: EvaluatingPage, selector = 'video'): Promise<InboundRtp | null> {
  const r = await page.evaluate(`(${SHOWN_IN_PAGE})(${JSON.stringify(selector)})`);
  return r === null || r === undefined ? null : toInbound(r);
}

type Counter = Exclude<keyof InboundRtp, 'kind' | 'ssrc'>;

/** One figure summed over the streams of a kind. */
export function sumInbound(list: readonly InboundRtp[], kind: 'audio' | 'video', key: Counter): number {
  return list.filter((s) => s.kind === kind).reduce((n, s) => n + s[key], 0);
}

/**
 * The page's video as one figure set: counters summed over its video streams, picture size and frame rate of the
 * stream decoding the most frames per second (the one on screen, when the player keeps an old receiver for a while).
 */
export function summedVideo(list: readonly InboundRtp[]): InboundRtp {
  const video = list.filter((s) => s.kind === 'video');
  const out = toInbound({ kind: 'video' });
  let fastest: InboundRtp | undefined;
  for (const s of video) {
    for (const k of [
      'packetsReceived',
      'packetsLost',
      'framesDecoded',
      'freezeCount',
      'totalFreezesDuration',
      'nackCount',
      'pliCount',
      'firCount',
    ] as const)
      out[k] += s[k];
    if (!fastest || s.framesPerSecond > fastest.framesPerSecond) fastest = s;
  }
  if (fastest)
    Object.assign(out, {
      ssrc: fastest.ssrc,
      framesPerSecond: fastest.framesPerSecond,
      frameWidth: fastest.frameWidth,
      frameHeight: fastest.frameHeight,
    });
  return out;
}

function toInbound(v: unknown): InboundRtp {
  const r: Record<string, unknown> = typeof v === 'object' && v !== null ? { ...v } : {};
  const n = (k: (typeof COUNTERS)[number]): number => {
    const x = r[k];
    return typeof x === 'number' ? x : 0;
  };
  return {
    kind: r.kind === 'audio' ? 'audio' : 'video',
    ssrc: n('ssrc'),
    packetsReceived: n('packetsReceived'),
    packetsLost: n('packetsLost'),
    framesDecoded: n('framesDecoded'),
    framesReceived: n('framesReceived'),
    framesDropped: n('framesDropped'),
    keyFramesDecoded: n('keyFramesDecoded'),
    framesPerSecond: n('framesPerSecond'),
    frameWidth: n('frameWidth'),
    frameHeight: n('frameHeight'),
    freezeCount: n('freezeCount'),
    totalFreezesDuration: n('totalFreezesDuration'),
    nackCount: n('nackCount'),
    pliCount: n('pliCount'),
    firCount: n('firCount'),
  };
}
