import { describe, expect, it } from 'vitest';
import { parseResult, type RtpParameters } from '$shared/protocol.ts';
import { consumerParameters, deviceCapabilities } from './rtc-params.ts';

const TOFFSET = 'urn:ietf:params:rtp-hdrext:toffset' as const;

/** What a router on the server answers to `rtc.capabilities` (trimmed to one codec per kind), checked as the web checks it. */
function routerCapabilities() {
  const parsed = parseResult('rtc.capabilities', {
    live: true,
    routerRtpCapabilities: {
      codecs: [
        {
          kind: 'audio',
          mimeType: 'audio/opus',
          clockRate: 48000,
          channels: 2,
          preferredPayloadType: 100,
          parameters: {},
          rtcpFeedback: [],
        },
        {
          kind: 'video',
          mimeType: 'video/H264',
          clockRate: 90000,
          preferredPayloadType: 101,
          parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' },
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        },
      ],
      headerExtensions: [
        { kind: 'video', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, direction: 'sendrecv' },
        { kind: 'video', uri: TOFFSET, preferredId: 9, direction: 'sendrecv' },
        { kind: 'video', uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', preferredId: 5 },
      ],
    },
  });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.result.routerRtpCapabilities;
}

describe('deviceCapabilities', () => {
  it('keeps every codec and the header extensions mediasoup-client knows, leaving out the others', () => {
    const caps = deviceCapabilities(routerCapabilities());
    expect(caps.codecs?.map((c) => [c.mimeType, c.preferredPayloadType])).toEqual([
      ['audio/opus', 100],
      ['video/H264', 101],
    ]);
    expect(caps.codecs?.[1]?.parameters).toEqual({ 'packetization-mode': 1, 'profile-level-id': '42e01f' });
    expect(caps.headerExtensions?.map((h) => [h.uri, h.preferredId])).toEqual([
      ['urn:ietf:params:rtp-hdrext:sdes:mid', 1],
      ['http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', 5],
    ]);
  });

  it('refuses a codec without a payload type', () => {
    const caps = routerCapabilities();
    const { preferredPayloadType: _, ...opus } = caps.codecs![0]!;
    expect(() => deviceCapabilities({ ...caps, codecs: [opus] })).toThrow('router codec audio/opus has no payload type');
  });
});

describe('consumerParameters', () => {
  it('passes everything through but the header extensions mediasoup-client does not know', () => {
    const rtp: RtpParameters = {
      mid: '0',
      codecs: [{ mimeType: 'video/H264', payloadType: 101, clockRate: 90000, parameters: { 'packetization-mode': 1 } }],
      headerExtensions: [
        { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 },
        { uri: TOFFSET, id: 9 },
      ],
      encodings: [{ ssrc: 1234, rtx: { ssrc: 1235 } }],
      rtcp: { cname: 'x', reducedSize: true },
    };
    const { headerExtensions, ...rest } = consumerParameters(rtp);
    expect(headerExtensions).toEqual([{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }]);
    expect(rest).toEqual({ mid: '0', codecs: rtp.codecs, encodings: rtp.encodings, rtcp: rtp.rtcp });
  });
});
