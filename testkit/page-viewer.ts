/**
 * A plain WHEP viewer run inside a browser page (Chromium via playwright-core or
 * Firefox via puppeteer-core), showing the stream in a `<video>` element so a
 * test can read the picture (`frameNumberInPage`) and the browser's own
 * `getStats` figures. The page code is plain JavaScript in strings, so it runs
 * the same whichever driver evaluates it.
 */
import type { EvaluatingPage } from './media/frame-number.ts';

/** Id of the `<video>` element `startWhepInPage` adds. */
export const WHEP_VIDEO_ID = 'whep-video';

const START_IN_PAGE = `async (url, videoId) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.id = videoId;
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.ontrack = (e) => { stream.addTrack(e.track); video.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const body = await res.text();
  if (res.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: body });
  window.__whep = pc;
  return { status: res.status, body: res.status === 201 ? '' : body };
}`;

/**
 * POSTs a WHEP offer from the page to `url` (absolute, or relative to the page)
 * and shows what arrives in `<video id="whep-video">`. Returns the HTTP status
 * (and the body when it is not 201).
 */
export async function startWhepInPage(page: EvaluatingPage, url: string): Promise<{ status: number; body: string }> {
  const r = await page.evaluate(`(${START_IN_PAGE})(${JSON.stringify(url)}, ${JSON.stringify(WHEP_VIDEO_ID)})`);
  if (!isRecord(r) || typeof r.status !== 'number' || typeof r.body !== 'string') throw new Error('WHEP page script returned nothing');
  return { status: r.status, body: r.body };
}

/** The page's inbound video RTP figures (`getStats`), summed over video streams. */
export interface InboundVideoStats {
  framesDecoded: number;
  framesReceived: number;
  framesDropped: number;
  packetsReceived: number;
  packetsLost: number;
  nackCount: number;
  pliCount: number;
  firCount: number;
  freezeCount: number;
  totalFreezesDuration: number;
  frameWidth: number;
  frameHeight: number;
  framesPerSecond: number;
  /** e.g. 'video/VP8' */
  codec: string;
}

const STATS_IN_PAGE = `async () => {
  const pc = window.__whep;
  if (!pc) throw new Error('no WHEP viewer in this page');
  const keys = ['framesDecoded', 'framesReceived', 'framesDropped', 'packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount', 'freezeCount', 'totalFreezesDuration'];
  const out = { frameWidth: 0, frameHeight: 0, framesPerSecond: 0, codec: '' };
  for (const k of keys) out[k] = 0;
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
    for (const k of keys) out[k] += s[k] || 0;
    out.frameWidth = Math.max(out.frameWidth, s.frameWidth || 0);
    out.frameHeight = Math.max(out.frameHeight, s.frameHeight || 0);
    out.framesPerSecond += s.framesPerSecond || 0;
    if (s.codecId && stats.get(s.codecId)) out.codec = stats.get(s.codecId).mimeType;
  });
  return out;
}`;

/** `getStats` of the WHEP viewer `startWhepInPage` started. */
export async function inboundVideoStats(page: EvaluatingPage): Promise<InboundVideoStats> {
  const r = await page.evaluate(`(${STATS_IN_PAGE})()`);
  if (!isRecord(r)) throw new Error('stats page script returned nothing');
  const n = (k: keyof InboundVideoStats): number => (typeof r[k] === 'number' ? r[k] : 0);
  return {
    framesDecoded: n('framesDecoded'),
    framesReceived: n('framesReceived'),
    framesDropped: n('framesDropped'),
    packetsReceived: n('packetsReceived'),
    packetsLost: n('packetsLost'),
    nackCount: n('nackCount'),
    pliCount: n('pliCount'),
    firCount: n('firCount'),
    freezeCount: n('freezeCount'),
    totalFreezesDuration: n('totalFreezesDuration'),
    frameWidth: n('frameWidth'),
    frameHeight: n('frameHeight'),
    framesPerSecond: n('framesPerSecond'),
    codec: typeof r.codec === 'string' ? r.codec : '',
  };
}

/** Closes the page's WHEP peer connection. */
export async function stopWhepInPage(page: EvaluatingPage): Promise<void> {
  await page.evaluate(`window.__whep && window.__whep.close()`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
