/**
 * Reads a WHIP/WHEP offer into a plain model: ICE and DTLS credentials, and per
 * m-line its mid, direction, codecs, header extensions, SSRCs and simulcast rids.
 * Pure: no mediasoup, no I/O.
 */
import * as sdpTransform from 'sdp-transform';
import type { CodecParameters } from '../codecs.ts';
import { malformed, unsupported } from './errors.ts';

export type MediaKind = 'audio' | 'video';
export type Direction = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

export interface OfferedCodec {
  payloadType: number;
  mimeType: string;
  clockRate: number;
  channels?: number;
  parameters: CodecParameters;
  rtcpFeedback: { type: string; parameter: string }[];
  /** Payload type of this codec's RTX, when offered. */
  rtxPayloadType?: number;
}

export interface OfferedMedia {
  index: number;
  kind: MediaKind;
  mid: string;
  direction: Direction;
  /** Port 0 + a=bundle-only: still part of the bundle (GStreamer max-bundle does this). */
  bundleOnly: boolean;
  /** Codecs in the offerer's order of preference, RTX folded into its codec. */
  codecs: OfferedCodec[];
  extensions: { id: number; uri: string }[];
  /** Media SSRCs, and the RTX SSRC paired with each (ssrc-group FID). */
  ssrcs: { ssrc: number; rtxSsrc?: number; cname?: string }[];
  /** Simulcast send rids in the order the offer lists them. */
  rids: string[];
  protocol: string;
}

export interface ParsedOffer {
  iceUfrag: string;
  icePwd: string;
  fingerprint: { algorithm: string; value: string };
  setup: 'actpass' | 'active' | 'passive';
  media: OfferedMedia[];
  extmapAllowMixed: boolean;
  raw: sdpTransform.SessionDescription;
}

const DIRECTIONS = new Set<Direction>(['sendonly', 'recvonly', 'sendrecv', 'inactive']);

export function parseOffer(sdp: string): ParsedOffer {
  if (typeof sdp !== 'string' || !/^v=0\r?\n/.test(sdp.trimStart())) throw malformed('SDP must start with v=0');
  let session: sdpTransform.SessionDescription;
  try {
    session = sdpTransform.parse(sdp.trimStart());
  } catch (err) {
    throw malformed(`SDP does not parse: ${(err as Error).message}`);
  }
  if (!session.media?.length) throw malformed('SDP has no m-lines');

  const media: OfferedMedia[] = [];
  let ice: { ufrag?: string; pwd?: string } = { ufrag: session.iceUfrag, pwd: session.icePwd };
  let fingerprint = session.fingerprint;
  let setup = session.setup;

  session.media.forEach((m, index) => {
    if (m.type === 'application') throw unsupported('data channels are not supported (m=application)');
    if (m.type !== 'audio' && m.type !== 'video') throw unsupported(`unsupported m-line type "${m.type}"`);
    if (!m.protocol?.includes('SAVPF') && !m.protocol?.includes('SAVP'))
      throw malformed(`m-line ${index} is not a secure RTP profile (${m.protocol})`);
    const mid = m.mid === undefined ? undefined : String(m.mid);
    if (!mid) throw malformed(`m-line ${index} has no a=mid`);
    const direction = (m.direction ?? 'sendrecv') as Direction;
    if (!DIRECTIONS.has(direction)) throw malformed(`m-line ${index} has an invalid direction`);
    ice = { ufrag: m.iceUfrag ?? ice.ufrag, pwd: m.icePwd ?? ice.pwd };
    fingerprint = m.fingerprint ?? fingerprint;
    setup = m.setup ?? setup;
    const bundleOnly = m.port === 0 && (m as { bundleOnly?: string }).bundleOnly !== undefined;
    media.push({
      index,
      kind: m.type,
      mid,
      direction,
      bundleOnly,
      codecs: readCodecs(m, index),
      extensions: (m.ext ?? []).map((e) => ({ id: e.value, uri: e.uri })),
      ssrcs: readSsrcs(m),
      rids: readRids(m),
      protocol: m.protocol,
    });
  });

  if (!ice.ufrag || !ice.pwd) throw malformed('SDP has no ICE credentials (a=ice-ufrag / a=ice-pwd)');
  if (!fingerprint?.hash || !fingerprint.type) throw malformed('SDP has no DTLS fingerprint');
  if (setup !== 'actpass' && setup !== 'active' && setup !== 'passive') throw malformed('SDP has no valid a=setup');
  const mids = new Set(media.map((m) => m.mid));
  if (mids.size !== media.length) throw malformed('duplicate a=mid values');

  return {
    iceUfrag: ice.ufrag,
    icePwd: ice.pwd,
    fingerprint: { algorithm: fingerprint.type.toLowerCase(), value: fingerprint.hash.toUpperCase() },
    setup,
    media,
    extmapAllowMixed: /^a=extmap-allow-mixed/m.test(sdp),
    raw: session,
  };
}

type MediaSection = sdpTransform.SessionDescription['media'][number];

function readCodecs(m: MediaSection, index: number): OfferedCodec[] {
  const order = String(m.payloads ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  if (order.some((pt) => !Number.isInteger(pt) || pt < 0 || pt > 127)) throw malformed(`m-line ${index} has invalid payload types`);
  const byPt = new Map<number, OfferedCodec & { apt?: number }>();
  for (const r of m.rtp ?? []) {
    const params = parseFmtp(m.fmtp?.find((f) => f.payload === r.payload)?.config ?? '');
    byPt.set(r.payload, {
      payloadType: r.payload,
      mimeType: `${m.type}/${r.codec}`,
      clockRate: r.rate ?? (m.type === 'audio' ? 48000 : 90000),
      ...(r.encoding ? { channels: Number(r.encoding) } : {}),
      parameters: params,
      rtcpFeedback: (m.rtcpFb ?? [])
        .filter((fb) => String(fb.payload) === String(r.payload) || fb.payload === '*')
        .map((fb) => ({ type: fb.type, parameter: fb.subtype ?? '' })),
      ...(params.apt !== undefined ? { apt: Number(params.apt) } : {}),
    });
  }
  const codecs: OfferedCodec[] = [];
  for (const pt of order) {
    const c = byPt.get(pt);
    if (!c || c.mimeType.toLowerCase().endsWith('/rtx')) continue;
    codecs.push(c);
  }
  for (const c of byPt.values()) {
    if (!c.mimeType.toLowerCase().endsWith('/rtx') || c.apt === undefined) continue;
    const target = codecs.find((x) => x.payloadType === c.apt);
    if (target) target.rtxPayloadType = c.payloadType;
  }
  for (const c of codecs) delete (c as { apt?: number }).apt;
  return codecs;
}

export function parseFmtp(config: string): CodecParameters {
  const out: CodecParameters = {};
  for (const part of config.split(';')) {
    const [k, ...rest] = part.split('=');
    const key = k?.trim();
    if (!key) continue;
    const value = rest.join('=').trim();
    out[key] = /^\d+$/.test(value) && key !== 'profile-level-id' ? Number(value) : value;
  }
  return out;
}

function readSsrcs(m: MediaSection): OfferedMedia['ssrcs'] {
  const cnames = new Map<number, string>();
  for (const s of m.ssrcs ?? []) if (s.attribute === 'cname' && s.value) cnames.set(Number(s.id), s.value);
  const rtxOf = new Map<number, number>();
  for (const g of m.ssrcGroups ?? []) {
    if (g.semantics !== 'FID') continue;
    const [media, rtx] = g.ssrcs.split(/\s+/).map(Number);
    if (media && rtx) rtxOf.set(media, rtx);
  }
  const rtxSet = new Set(rtxOf.values());
  const seen = new Set<number>();
  const out: OfferedMedia['ssrcs'] = [];
  for (const s of m.ssrcs ?? []) {
    const ssrc = Number(s.id);
    if (seen.has(ssrc) || rtxSet.has(ssrc)) continue;
    seen.add(ssrc);
    const rtx = rtxOf.get(ssrc);
    out.push({ ssrc, ...(rtx ? { rtxSsrc: rtx } : {}), ...(cnames.get(ssrc) ? { cname: cnames.get(ssrc) } : {}) });
  }
  return out;
}

function readRids(m: MediaSection): string[] {
  const rids = (m.rids ?? []).filter((r) => r.direction === 'send').map((r) => String(r.id));
  const sim = m.simulcast?.list1;
  if (m.simulcast && m.simulcast.dir1 === 'send' && sim) {
    // "a=simulcast:send 0;1;2" (alternatives after ',' are ignored, paused '~' rids too)
    const order = String(sim)
      .split(';')
      .map((alt) => alt.split(',')[0]!.trim())
      .filter((r) => r && !r.startsWith('~'));
    return order.filter((r) => rids.length === 0 || rids.includes(r));
  }
  return rids;
}
