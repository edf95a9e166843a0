/**
 * From the protocol's WebRTC payloads (signaling/protocol.ts, validated on
 * arrival) to mediasoup-client's types, without casts. The protocol mirrors the
 * server's mediasoup, which differs from mediasoup-client's types in two ways:
 * a router capability's `preferredPayloadType` is optional there (mediasoup
 * always fills it in a router's capabilities; one without it is refused here),
 * and the server knows RTP header extensions mediasoup-client does not list
 * (today `urn:ietf:params:rtp-hdrext:toffset`): those are left out, so the
 * device never offers them and the server never puts them on a consumer.
 */
import type { types } from 'mediasoup-client';
import type { Results, RtpParameters } from '$shared/protocol.ts';

type RouterRtpCapabilities = Results['rtc.capabilities']['routerRtpCapabilities'];

/** Every header extension mediasoup-client's types know (`satisfies` fails to compile if one is missing or unknown). */
const CLIENT_HEADER_EXTENSIONS = {
  'urn:ietf:params:rtp-hdrext:sdes:mid': true,
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id': true,
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id': true,
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time': true,
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01': true,
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level': true,
  'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension': true,
  'urn:3gpp:video-orientation': true,
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time': true,
  'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay': true,
  'urn:mediasoup:params:rtp-hdrext:packet-id': true,
} as const satisfies Record<types.RtpHeaderExtensionUri, true>;

const clientKnows = (uri: string): uri is types.RtpHeaderExtensionUri => Object.hasOwn(CLIENT_HEADER_EXTENSIONS, uri);

/** The header extensions of `list` that mediasoup-client knows, with their URI typed as it expects. */
function knownExtensions<E extends { uri: string }>(list: E[] | undefined): (E & { uri: types.RtpHeaderExtensionUri })[] | undefined {
  return list?.flatMap((e) => {
    const uri = e.uri;
    return clientKnows(uri) ? [{ ...e, uri }] : [];
  });
}

/** A router's capabilities as a mediasoup-client `Device` loads them. Throws on a codec without a payload type. */
export function deviceCapabilities(caps: RouterRtpCapabilities): types.RtpCapabilities {
  return {
    codecs: caps.codecs?.map((c) => {
      const { preferredPayloadType } = c;
      if (preferredPayloadType === undefined) throw new Error(`router codec ${c.mimeType} has no payload type`);
      return { ...c, preferredPayloadType };
    }),
    headerExtensions: knownExtensions(caps.headerExtensions),
  };
}

/** A consumer's RTP parameters as mediasoup-client's `transport.consume` takes them. */
export function consumerParameters(p: RtpParameters): types.RtpParameters {
  return { ...p, headerExtensions: knownExtensions(p.headerExtensions) };
}
