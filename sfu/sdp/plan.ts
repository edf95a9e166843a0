/**
 * Decides what whipcast accepts from an offer, as mediasoup parameters:
 * `planIngest` turns a WHIP offer into Producer RTP parameters, `planEgress`
 * turns a WHEP offer into the viewer's RTP capabilities for Consumers.
 * Pure functions; errors are SdpErrors carrying the HTTP status.
 */
import type { types } from 'mediasoup';
import { sameCodec, SUPPORTED_EXTENSIONS, SUPPORTED_FEEDBACK } from '../codecs.ts';
import type { AcceptedMedia } from './answer.ts';
import { unsupported } from './errors.ts';
import type { MediaKind, OfferedCodec, OfferedMedia, ParsedOffer } from './offer.ts';

export interface IngestTrack {
  kind: MediaKind;
  accepted: AcceptedMedia;
  rtpParameters: types.RtpParameters;
}

/** What a channel's source sends, per kind (from its producers). */
export type SourceCodecs = Partial<Record<MediaKind, types.RtpCodecParameters>>;

export interface EgressPlan {
  accepted: AcceptedMedia[];
  rtpCapabilities: types.RtpCapabilities;
  /** Router codecs whose payload types are the viewer's own (see `egressRouterKey`). */
  routerCodecs: types.RouterRtpCodecCapability[];
}

function onePerKind(offer: ParsedOffer, wanted: (m: OfferedMedia) => boolean, what: string): OfferedMedia[] {
  const media = offer.media.filter((m) => m.direction !== 'inactive');
  if (media.length === 0) throw unsupported('the offer has no active m-lines');
  for (const m of media) if (!wanted(m)) throw unsupported(`m-line mid=${m.mid} is ${m.direction}; ${what}`);
  for (const kind of ['audio', 'video'] as const) {
    if (media.filter((m) => m.kind === kind).length > 1) throw unsupported(`at most one ${kind} track is supported`);
  }
  return media;
}

const feedback = (c: OfferedCodec) =>
  c.rtcpFeedback.filter((fb) => SUPPORTED_FEEDBACK.has(fb.parameter ? `${fb.type} ${fb.parameter}` : fb.type));

function extensionsFor(m: OfferedMedia, caps: types.RtpCapabilities): { id: number; uri: string }[] {
  const known = new Set((caps.headerExtensions ?? []).filter((h) => h.kind === m.kind).map((h) => h.uri as string));
  return m.extensions.filter((e) => SUPPORTED_EXTENSIONS.has(e.uri) && (known.has(e.uri) || e.uri.endsWith('rtp-stream-id')));
}

export function planIngest(offer: ParsedOffer, routerCaps: types.RtpCapabilities): IngestTrack[] {
  const media = onePerKind(offer, (m) => m.direction === 'sendonly' || m.direction === 'sendrecv', 'a WHIP publisher must send');
  const routerCodecs = (routerCaps.codecs ?? []).filter((c) => !c.mimeType.toLowerCase().endsWith('/rtx'));
  return media.map((m) => {
    const codec = m.codecs.find((c) =>
      routerCodecs.some(
        (r) =>
          r.kind === m.kind &&
          r.clockRate === c.clockRate &&
          sameCodec(r, c) &&
          (m.kind !== 'audio' || (r.channels ?? 1) === (c.channels ?? 1)),
      ),
    );
    if (!codec) {
      const offered = m.codecs.map((c) => c.mimeType.split('/')[1]).join(', ') || 'none';
      throw unsupported(
        `no supported ${m.kind} codec offered (offered: ${offered}; supported: Opus, H.264 packetization-mode=1, VP8, VP9, AV1)`,
      );
    }
    const extensions = extensionsFor(m, routerCaps);
    const rtx = m.kind === 'video' ? codec.rtxPayloadType : undefined;
    const codecs: types.RtpCodecParameters[] = [
      {
        mimeType: codec.mimeType,
        payloadType: codec.payloadType,
        clockRate: codec.clockRate,
        ...(codec.channels ? { channels: codec.channels } : {}),
        parameters: codec.parameters,
        rtcpFeedback: feedback(codec),
      },
    ];
    if (rtx !== undefined)
      codecs.push({ mimeType: `${m.kind}/rtx`, payloadType: rtx, clockRate: codec.clockRate, parameters: { apt: codec.payloadType } });
    const rids = orderRidsLowToHigh(m.rids);
    const encodings: types.RtpEncodingParameters[] = rids.length
      ? rids.map((rid) => ({ rid }))
      : m.ssrcs.length
        ? [{ ssrc: m.ssrcs[0]!.ssrc, ...(rtx !== undefined && m.ssrcs[0]!.rtxSsrc ? { rtx: { ssrc: m.ssrcs[0]!.rtxSsrc } } : {}) }]
        : [{}];
    const cname = m.ssrcs.find((s) => s.cname)?.cname;
    return {
      kind: m.kind,
      accepted: {
        media: m,
        codec: { ...codec, rtcpFeedback: feedback(codec) },
        ...(rtx !== undefined ? { rtxPayloadType: rtx } : {}),
        extensions,
        ...(m.rids.length ? { rids: m.rids } : {}),
      },
      rtpParameters: {
        mid: m.mid,
        codecs,
        headerExtensions: extensions.map((e) => ({ uri: e.uri as types.RtpHeaderExtensionUri, id: e.id })),
        encodings,
        rtcp: { ...(cname ? { cname } : {}), reducedSize: true },
      },
    };
  });
}

/**
 * mediasoup wants simulcast encodings lowest resolution first. OBS numbers its
 * rids "0".."N-1" with 0 the full resolution, so numeric rids go highest number
 * first; other rid names keep the offer's order (browsers list low to high).
 */
export function orderRidsLowToHigh(rids: string[]): string[] {
  if (rids.length > 1 && rids.every((r) => /^\d+$/.test(r))) return [...rids].sort((a, b) => Number(b) - Number(a));
  return rids;
}

export function planEgress(offer: ParsedOffer, source: SourceCodecs, routerCaps: types.RtpCapabilities): EgressPlan {
  const media = onePerKind(offer, (m) => m.direction === 'recvonly' || m.direction === 'sendrecv', 'a WHEP player must receive');
  const accepted: AcceptedMedia[] = [];
  const codecs: types.RtpCodecCapability[] = [];
  const headerExtensions: types.RtpHeaderExtension[] = [];
  const routerCodecs: types.RouterRtpCodecCapability[] = [];
  for (const m of media) {
    const src = source[m.kind];
    if (!src) continue; // the channel sends no such track: the m-line is answered inactive-less by omission below
    const codec = m.codecs.find((c) => c.clockRate === src.clockRate && sameCodec(c, src));
    if (!codec) throw unsupported(`the player cannot receive this channel's ${m.kind} codec (${src.mimeType})`);
    const fb = feedback(codec);
    codecs.push({
      kind: m.kind,
      mimeType: codec.mimeType as types.RtpCodecCapability['mimeType'],
      clockRate: codec.clockRate,
      preferredPayloadType: codec.payloadType,
      ...(codec.channels ? { channels: codec.channels } : {}),
      parameters: codec.parameters,
      rtcpFeedback: fb,
    });
    routerCodecs.push({
      kind: m.kind,
      mimeType: src.mimeType as types.RouterRtpCodecCapability['mimeType'],
      clockRate: src.clockRate,
      ...(src.channels ? { channels: src.channels } : {}),
      preferredPayloadType: codec.payloadType,
      parameters: src.parameters ?? {},
    });
    // mediasoup writes header extensions with its own ids (the router's preferredId) and only
    // swaps the MID value per consumer: an extension can be used only where the player's id matches.
    const extensions = extensionsFor(m, routerCaps).filter(
      (e) =>
        !e.uri.includes('rtp-stream-id') &&
        routerCaps.headerExtensions?.some((h) => h.kind === m.kind && h.uri === e.uri && h.preferredId === e.id),
    );
    for (const e of extensions) {
      headerExtensions.push({ kind: m.kind, uri: e.uri as types.RtpHeaderExtensionUri, preferredId: e.id, direction: 'sendrecv' });
    }
    accepted.push({ media: m, codec: { ...codec, rtcpFeedback: fb }, extensions });
  }
  if (accepted.length === 0) throw unsupported('the player offers no track this channel sends');
  return { accepted, rtpCapabilities: { codecs, headerExtensions }, routerCodecs };
}

/** Viewers whose offers use the same payload types share an egress router. */
export function egressRouterKey(codecs: types.RouterRtpCodecCapability[]): string {
  return codecs.map((c) => `${c.kind}:${c.mimeType}:${c.preferredPayloadType}:${JSON.stringify(c.parameters ?? {})}`).join('|');
}
