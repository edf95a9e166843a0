/**
 * Writes the SDP answer for a WHIP (recvonly) or WHEP (sendonly) session from
 * what was accepted per m-line and the mediasoup transport's ICE/DTLS data.
 * mediasoup is ICE-lite and always takes the DTLS role the offer leaves it.
 */
import type { types } from 'mediasoup';
import type { CodecParameters } from '../codecs.ts';
import type { OfferedCodec, OfferedMedia, ParsedOffer } from './offer.ts';

export interface AcceptedMedia {
  media: OfferedMedia;
  codec: OfferedCodec;
  /** Offer's RTX payload type, when RTX is used on this m-line. */
  rtxPayloadType?: number;
  /** Parameters to put in the answer's fmtp (default: the offered ones). */
  answerParameters?: CodecParameters;
  extensions: { id: number; uri: string }[];
  /** WHIP simulcast: rids received. */
  rids?: string[];
  /** WHEP: SSRCs this side sends (omitted → receiver demuxes by MID, which lets the source change without renegotiation). */
  sendSsrcs?: { ssrc: number; rtxSsrc?: number; cname: string };
}

export interface TransportInfo {
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

/** The DTLS role the remote end takes, for `transport.connect()`. */
export function remoteDtlsRole(offer: ParsedOffer): types.DtlsRole {
  return offer.setup === 'passive' ? 'server' : 'client';
}

export function buildAnswer(opts: {
  offer: ParsedOffer;
  accepted: AcceptedMedia[];
  transport: TransportInfo;
  direction: 'recvonly' | 'sendonly';
  sessionVersion?: number;
}): string {
  const { offer, accepted, transport, direction } = opts;
  const fp = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256') ?? transport.dtlsParameters.fingerprints[0]!;
  const setup = offer.setup === 'passive' ? 'active' : 'passive';
  const lines = [
    'v=0',
    `o=whipcast ${Date.now()} ${opts.sessionVersion ?? 1} IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${accepted.map((a) => a.media.mid).join(' ')}`,
    ...(offer.extmapAllowMixed ? ['a=extmap-allow-mixed'] : []),
    'a=msid-semantic: WMS *',
  ];
  const candidates = transport.iceCandidates.map(
    (c) =>
      `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ ${c.type}${c.tcpType ? ` tcptype ${c.tcpType}` : ''}`,
  );
  for (const a of accepted) {
    const pts = [a.codec.payloadType, ...(a.rtxPayloadType !== undefined ? [a.rtxPayloadType] : [])];
    lines.push(`m=${a.media.kind} 9 ${a.media.protocol} ${pts.join(' ')}`, 'c=IN IP4 0.0.0.0');
    lines.push(`a=mid:${a.media.mid}`, `a=${direction}`);
    lines.push(`a=ice-ufrag:${transport.iceParameters.usernameFragment}`, `a=ice-pwd:${transport.iceParameters.password}`);
    lines.push(`a=fingerprint:${fp.algorithm} ${fp.value}`, `a=setup:${setup}`);
    lines.push('a=rtcp-mux', 'a=rtcp-rsize');
    for (const e of a.extensions) lines.push(`a=extmap:${e.id} ${e.uri}`);
    const c = a.codec;
    lines.push(`a=rtpmap:${c.payloadType} ${c.mimeType.split('/')[1]}/${c.clockRate}${c.channels ? `/${c.channels}` : ''}`);
    const params = a.answerParameters ?? c.parameters;
    const fmtp = Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(';');
    if (fmtp) lines.push(`a=fmtp:${c.payloadType} ${fmtp}`);
    for (const fb of c.rtcpFeedback) lines.push(`a=rtcp-fb:${c.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`);
    if (a.rtxPayloadType !== undefined) {
      lines.push(`a=rtpmap:${a.rtxPayloadType} rtx/${c.clockRate}`, `a=fmtp:${a.rtxPayloadType} apt=${c.payloadType}`);
    }
    if (a.rids?.length) {
      for (const rid of a.rids) lines.push(`a=rid:${rid} recv`);
      lines.push(`a=simulcast:recv ${a.rids.join(';')}`);
    }
    if (a.sendSsrcs) {
      const s = a.sendSsrcs;
      const msid = `whipcast ${a.media.kind}`;
      if (s.rtxSsrc) lines.push(`a=ssrc-group:FID ${s.ssrc} ${s.rtxSsrc}`);
      for (const ssrc of [s.ssrc, ...(s.rtxSsrc ? [s.rtxSsrc] : [])])
        lines.push(`a=ssrc:${ssrc} cname:${s.cname}`, `a=ssrc:${ssrc} msid:${msid}`);
    }
    if (direction === 'sendonly') lines.push(`a=msid:whipcast ${a.media.kind}`);
    lines.push(...candidates, 'a=end-of-candidates');
  }
  return lines.join('\r\n') + '\r\n';
}
