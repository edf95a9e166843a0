/**
 * The /ws protocol, shared by the server and the web app: every frame is one
 * MessagePack map with a `t` (type). Client requests carry an `id`; the server
 * answers each with `ok` (same id, a result) or `error` (same id, a code).
 * Everything else the server sends is a push.
 *
 * The zod schemas below are the single definition of every frame in both
 * directions: the server validates what clients send (`parseClientFrame`), the
 * web app validates what the server sends (`parseServerFrame`, then
 * `parseResult` for the result of the request it made), and both take their
 * TypeScript types from them. The WebRTC payloads mirror mediasoup's types, so
 * what the server hands the SFU is checked here and typed as mediasoup expects.
 *
 * It is one file, past the usual ~400 lines, on purpose: it is the single
 * definition both ends import, and splitting it would scatter that definition.
 */
import { decode, encode } from '@msgpack/msgpack';
import { z } from 'zod';
import { plainText } from './text.ts';

/**
 * Bumped when a change breaks older clients (or a client needs what an older server lacks); the web app
 * compares it with the `hello` frame. 2: `dvr.recover`. 3: `hello` carries the router capabilities and the
 * player uses `rtc.watch`. 4: `dvr.resume` may answer with new consumers (shared DVR replays).
 */
export const PROTOCOL_VERSION = 4;

const id = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 31);
const uuid = z.uuid();
/** A mediasoup id (transport, consumer, producer). */
const mediaId = z.string().min(1).max(64);
const DAY_MS = 24 * 3600_000;

// ---- WebRTC payloads (mediasoup's types, as zod) ----

const MediaKind = z.enum(['audio', 'video']);
/** The RTP header extensions mediasoup knows (`RtpHeaderExtensionUri`). */
const HeaderExtensionUri = z.enum([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension',
  'urn:3gpp:video-orientation',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time',
  'urn:ietf:params:rtp-hdrext:toffset',
  'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay',
  'urn:mediasoup:params:rtp-hdrext:packet-id',
]);
const payloadType = z.number().int().min(0).max(127);
const RtcpFeedback = z.object({ type: z.string().max(32), parameter: z.string().max(32).optional() });
/** Codec parameters (fmtp) as the client sends them: names to strings or numbers (typed `unknown` as in mediasoup). */
const CodecParametersIn = z.record(
  z.string().max(64),
  z.unknown().refine((v) => (typeof v === 'string' && v.length <= 256) || (typeof v === 'number' && Number.isFinite(v)), {
    message: 'codec parameters are strings or numbers',
  }),
);
/** Codec parameters as mediasoup reports them. */
const CodecParametersOut = z.record(z.string(), z.unknown());
const codecCapability = {
  kind: MediaKind,
  mimeType: z.string().max(64),
  clockRate: z.number().int().positive(),
  channels: z.number().int().min(1).max(8).optional(),
  rtcpFeedback: z.array(RtcpFeedback).max(32).optional(),
};
const RtpHeaderExtension = z.object({
  kind: MediaKind,
  uri: HeaderExtensionUri,
  preferredId: z.number().int().min(1).max(255),
  preferredEncrypt: z.boolean().optional(),
  direction: z.enum(['sendrecv', 'sendonly', 'recvonly', 'inactive']).optional(),
});

/** What a receiving device can decode (mediasoup-client `device.rtpCapabilities`); sent by the client. */
export const RtpCapabilities = z.object({
  codecs: z
    .array(z.object({ ...codecCapability, preferredPayloadType: payloadType, parameters: CodecParametersIn.optional() }))
    .max(64)
    .optional(),
  headerExtensions: z.array(RtpHeaderExtension).max(64).optional(),
});
export type RtpCapabilities = z.infer<typeof RtpCapabilities>;

/** A router's capabilities, for a mediasoup-client `Device` to load; sent by the server. */
const RouterRtpCapabilities = z.object({
  codecs: z
    .array(z.object({ ...codecCapability, preferredPayloadType: payloadType.optional(), parameters: CodecParametersOut.optional() }))
    .optional(),
  headerExtensions: z.array(RtpHeaderExtension).optional(),
});

/** The client's DTLS role and certificate fingerprints (`transport.on('connect')` of mediasoup-client). */
export const DtlsParameters = z.object({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(z.object({ algorithm: z.enum(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512']), value: z.string().max(256) }))
    .min(1)
    .max(8),
});
export type DtlsParameters = z.infer<typeof DtlsParameters>;

export const IceParameters = z.object({ usernameFragment: z.string(), password: z.string(), iceLite: z.boolean().optional() });
export type IceParameters = z.infer<typeof IceParameters>;

export const IceCandidate = z.object({
  foundation: z.string(),
  priority: z.number(),
  ip: z.string(),
  address: z.string(),
  protocol: z.enum(['udp', 'tcp']),
  port: z.number().int(),
  type: z.literal('host'),
  tcpType: z.literal('passive').optional(),
});
export type IceCandidate = z.infer<typeof IceCandidate>;

/** How one consumer's RTP is sent (mediasoup `RtpParameters`). */
export const RtpParameters = z.object({
  mid: z.string().optional(),
  codecs: z.array(
    z.object({
      mimeType: z.string(),
      payloadType,
      clockRate: z.number().int(),
      channels: z.number().int().optional(),
      parameters: CodecParametersOut.optional(),
      rtcpFeedback: z.array(RtcpFeedback).optional(),
    }),
  ),
  headerExtensions: z
    .array(
      z.object({
        uri: HeaderExtensionUri,
        id: z.number().int(),
        encrypt: z.boolean().optional(),
        parameters: CodecParametersOut.optional(),
      }),
    )
    .optional(),
  encodings: z
    .array(
      z.object({
        ssrc: z.number().int().optional(),
        rid: z.string().optional(),
        codecPayloadType: z.number().int().optional(),
        rtx: z.object({ ssrc: z.number().int() }).optional(),
        dtx: z.boolean().optional(),
        scalabilityMode: z.string().optional(),
        maxBitrate: z.number().optional(),
      }),
    )
    .optional(),
  rtcp: z.object({ cname: z.string().optional(), reducedSize: z.boolean().optional() }).optional(),
  msid: z.string().optional(),
});
export type RtpParameters = z.infer<typeof RtpParameters>;

/** A receive transport for mediasoup-client's `device.createRecvTransport`. */
export const TransportView = z.object({
  id: mediaId,
  iceParameters: IceParameters,
  iceCandidates: z.array(IceCandidate),
  dtlsParameters: DtlsParameters,
});
export type TransportView = z.infer<typeof TransportView>;

export const ConsumerView = z.object({
  id: mediaId,
  producerId: mediaId,
  kind: MediaKind,
  rtpParameters: RtpParameters,
  /** Instant start: set up this consumer too, but show it only after `dvr.switch`. */
  standby: z.boolean().optional(),
});
export type ConsumerView = z.infer<typeof ConsumerView>;

/** A simulcast layer of the channel's video, named by its picture size (the player says e.g. "360p"). */
export const LayerView = z.object({
  /** mediasoup's spatial layer: 0 = the lowest. */
  spatialLayer: z.number().int().min(0),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
export type LayerView = z.infer<typeof LayerView>;

/** The video layers a socket viewer can choose (lowest first; empty: one layer only) and its choice (null: Auto). */
export const LayerChoice = z.object({ layers: z.array(LayerView), preferred: z.number().int().min(0).nullable() });
export type LayerChoice = z.infer<typeof LayerChoice>;

/** A program track this viewer's browser cannot decode (e.g. H.264 in a Firefox without OpenH264). */
export const UnplayableTrack = z.object({ kind: MediaKind, mimeType: z.string().max(64) });
export type UnplayableTrack = z.infer<typeof UnplayableTrack>;

/** A program track this viewer gets as a transcoded copy (the VP8 rung of an H.264 channel): `dvr: false`, live only. */
export const TranscodedTrack = z.object({ kind: MediaKind, mimeType: z.string().max(64), as: z.string().max(64), dvr: z.boolean() });
export type TranscodedTrack = z.infer<typeof TranscodedTrack>;

// ---- client → server ----

/** Where a `dvr.seek` goes: `offsetMs` behind live, or `deltaMs` from the current position (exactly one). */
const seekTarget = {
  offsetMs: z.number().int().min(0).max(DAY_MS).optional(),
  deltaMs: z.number().int().min(-DAY_MS).max(DAY_MS).optional(),
};

/** Client → server requests. */
export const ClientFrame = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ping'), id }),
  /** Authenticate (or re-authenticate with a refreshed token) without reconnecting; `null` signs out. */
  z.object({ t: z.literal('auth'), id, token: z.string().max(512).nullable() }),
  /** Follow every channel's live status and viewer count (the browse page): `lobby.update` pushes. */
  z.object({ t: z.literal('lobby.join'), id }),
  z.object({ t: z.literal('lobby.leave'), id }),
  z.object({ t: z.literal('chat.join'), id, room: uuid }),
  z.object({ t: z.literal('chat.leave'), id, room: uuid }),
  z.object({
    t: z.literal('chat.history'),
    id,
    room: uuid,
    before: z.number().int().positive().optional(),
    limit: z.number().int().min(1).max(200).optional(),
  }),
  z.object({ t: z.literal('chat.send'), id, room: uuid, text: plainText({ min: 1, max: 10_000, multiline: true }) }),
  z.object({ t: z.literal('chat.delete'), id, room: uuid, messageId: z.number().int().positive() }),
  z.object({
    t: z.literal('chat.timeout'),
    id,
    room: uuid,
    userId: uuid,
    seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 86400),
  }),
  z.object({ t: z.literal('chat.ban'), id, room: uuid, userId: uuid }),
  z.object({ t: z.literal('chat.unban'), id, room: uuid, userId: uuid }),
  z.object({ t: z.literal('chat.slowmode'), id, room: uuid, seconds: z.number().int().min(0).max(3600) }),
  /** Viewer WebRTC (mediasoup-client). */
  /**
   * Watch a channel in one round trip (the web player): a receive transport, connected at once when the
   * client's `dtlsParameters` come along (its certificate made beforehand), and, when the channel is live, its
   * consumers — started by the server as soon as DTLS is up: no `rtc.connect`, no `rtc.resume`.
   */
  z.object({
    t: z.literal('rtc.watch'),
    id,
    streamId: uuid,
    rtpCapabilities: RtpCapabilities,
    dtlsParameters: DtlsParameters.optional(),
  }),
  z.object({ t: z.literal('rtc.capabilities'), id, streamId: uuid }),
  z.object({ t: z.literal('rtc.transport'), id, streamId: uuid }),
  z.object({ t: z.literal('rtc.connect'), id, transportId: mediaId, dtlsParameters: DtlsParameters }),
  z.object({ t: z.literal('rtc.consume'), id, transportId: mediaId, rtpCapabilities: RtpCapabilities }),
  z.object({ t: z.literal('rtc.resume'), id, consumerId: mediaId }),
  z.object({ t: z.literal('rtc.pause'), id, consumerId: mediaId }),
  z.object({ t: z.literal('rtc.restartIce'), id, transportId: mediaId }),
  /** The channel's video layers (simulcast) and this transport's choice. */
  z.object({ t: z.literal('rtc.layers'), id, transportId: mediaId }),
  /** Receive this video layer (a `spatialLayer` of `rtc.layers`) when the link allows; `null`: Auto (the best it allows). */
  z.object({ t: z.literal('rtc.preferLayer'), id, transportId: mediaId, spatialLayer: z.number().int().min(0).max(15).nullable() }),
  z.object({ t: z.literal('rtc.close'), id, transportId: mediaId }),
  /** DVR: watch the past on the same transport. */
  z
    .object({ t: z.literal('dvr.seek'), id, transportId: mediaId, ...seekTarget })
    .refine((f) => (f.offsetMs === undefined) !== (f.deltaMs === undefined), { message: 'give exactly one of offsetMs and deltaMs' }),
  z.object({ t: z.literal('dvr.live'), id, transportId: mediaId }),
  z.object({ t: z.literal('dvr.pause'), id, transportId: mediaId }),
  z.object({ t: z.literal('dvr.resume'), id, transportId: mediaId }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['t'];
/** A request as a client writes it: the frame without its `id` (the client numbers them). */
export type ClientRequest = ClientFrame extends infer F
  ? F extends { t: infer T; id: number }
    ? { t: T } & Omit<F, 't' | 'id'>
    : never
  : never;

// ---- server → client ----

export const ChatMessageView = z.object({
  id: z.number().int(),
  room: uuid,
  userId: uuid,
  username: z.string(),
  text: z.string(),
  /** ISO 8601, server clock. */
  at: z.string(),
});
export type ChatMessageView = z.infer<typeof ChatMessageView>;

export const RoomState = z.object({
  room: uuid,
  live: z.boolean(),
  slowModeSeconds: z.number().int(),
  maxMessageLength: z.number().int(),
  /** Whether this socket may send here now (signed in, not banned or timed out). */
  canSend: z.boolean(),
  /** Signed-in user is the channel owner (may moderate). */
  isOwner: z.boolean(),
  history: z.array(ChatMessageView),
  viewers: z.number().int(),
  chatters: z.number().int(),
});
export type RoomState = z.infer<typeof RoomState>;

const empty = z.object({});
const DvrState = { behindLiveMs: z.number(), windowMs: z.number() };

const RESULT_SCHEMAS = {
  ping: z.object({ now: z.number() }),
  auth: z.object({ user: z.object({ id: uuid, username: z.string() }).nullable() }),
  'lobby.join': empty,
  'lobby.leave': empty,
  'chat.join': RoomState,
  'chat.leave': empty,
  'chat.history': z.object({ messages: z.array(ChatMessageView) }),
  'chat.send': z.object({ message: ChatMessageView }),
  'chat.delete': empty,
  'chat.timeout': z.object({ until: z.string() }),
  'chat.ban': empty,
  'chat.unban': empty,
  'chat.slowmode': z.object({ seconds: z.number().int() }),
  /** `live: false`: a transport and no consumers yet; `rtc.consume` (and `rtc.resume`) once `stream.live` comes. */
  'rtc.watch': z.object({
    transport: TransportView,
    live: z.boolean(),
    consumers: z.array(ConsumerView),
    unplayable: z.array(UnplayableTrack),
    transcoded: z.array(TranscodedTrack).optional(),
  }),
  'rtc.capabilities': z.object({ routerRtpCapabilities: RouterRtpCapabilities, live: z.boolean() }),
  'rtc.transport': TransportView,
  'rtc.connect': empty,
  /**
   * `unplayable`: what the channel sends that this device cannot decode (not consumed; all of it: no consumers).
   * `transcoded`: what it gets as a transcoded copy instead (a VP8 rung of H.264 video: live only).
   */
  'rtc.consume': z.object({
    consumers: z.array(ConsumerView),
    unplayable: z.array(UnplayableTrack),
    transcoded: z.array(TranscodedTrack).optional(),
  }),
  'rtc.resume': empty,
  'rtc.pause': empty,
  'rtc.restartIce': z.object({ iceParameters: IceParameters }),
  'rtc.layers': LayerChoice,
  'rtc.preferLayer': LayerChoice,
  'rtc.close': empty,
  'dvr.seek': z.object({ consumers: z.array(ConsumerView), ...DvrState, live: z.boolean() }),
  'dvr.live': z.object({ consumers: z.array(ConsumerView) }),
  'dvr.pause': empty,
  /** `consumers`: the viewer's shared replay played on while it was paused, so it resumes on another (set them up like a seek's). */
  'dvr.resume': z.object({ consumers: z.array(ConsumerView).optional(), behindLiveMs: z.number().optional() }),
} satisfies { [T in ClientFrameType]: z.ZodType };
/** Result of each request type (the `r` field of its `ok`). */
export type Results = { [T in ClientFrameType]: z.infer<(typeof RESULT_SCHEMAS)[T]> };
/** The schema of each request type's result. */
const RESULTS: { [T in ClientFrameType]: z.ZodType<Results[T]> } = RESULT_SCHEMAS;

const ERROR_CODES = [
  'bad_frame', // not msgpack, not a map, unknown type or wrong fields
  'too_large',
  'rate_limited',
  'unauthorized', // needs a signed-in user, or the token is invalid
  'forbidden', // not allowed in this room (not owner, banned…)
  'timed_out', // the user is timed out in this room
  'slow_mode',
  'not_found',
  'not_joined',
  'stream_offline',
  'unavailable',
  'internal',
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Pushes: server → client frames without an `id`. */
export const Push = z.discriminatedUnion('t', [
  z.object({
    t: z.literal('hello'),
    version: z.number().int(),
    maxPayload: z.number().int(),
    /** What a mediasoup-client `Device` loads to watch any channel here (the same for every channel); absent without media. */
    routerRtpCapabilities: RouterRtpCapabilities.optional(),
  }),
  z.object({ t: z.literal('chat.message'), room: uuid, message: ChatMessageView }),
  z.object({ t: z.literal('chat.deleted'), room: uuid, messageId: z.number().int() }),
  z.object({
    t: z.literal('chat.moderation'),
    room: uuid,
    action: z.enum(['timeout', 'ban', 'unban']),
    userId: uuid,
    until: z.string().nullable(),
  }),
  z.object({ t: z.literal('chat.slowmode'), room: uuid, seconds: z.number().int() }),
  /** Some pushes to this socket were dropped (it was too slow): refetch history. */
  z.object({ t: z.literal('chat.resync'), room: uuid }),
  z.object({ t: z.literal('presence'), room: uuid, viewers: z.number().int(), chatters: z.number().int() }),
  /** A channel's live status or viewer count changed (coalesced, for lobby sockets). */
  z.object({ t: z.literal('lobby.update'), room: uuid, live: z.boolean(), viewers: z.number().int() }),
  z.object({ t: z.literal('stream.live'), room: uuid }),
  z.object({ t: z.literal('stream.offline'), room: uuid, reason: z.string() }),
  /** The channel's publisher changed codecs: consume again on the same transport. */
  z.object({ t: z.literal('rtc.reconsume'), room: uuid }),
  /** The server closed this receive transport (its media worker was lost): build a new one. */
  z.object({ t: z.literal('rtc.closed'), transportId: mediaId, reason: z.string() }),
  /** Where a DVR viewer is (about once a second while not live). */
  z.object({ t: z.literal('dvr.position'), transportId: mediaId, ...DvrState, paused: z.boolean() }),
  /** Instant start (or a keyframe recovery) is over: show the standby (live) consumers, drop the catch-up ones. */
  z.object({ t: z.literal('dvr.switch'), transportId: mediaId }),
  /**
   * Keyframe recovery: this viewer's live video lost a keyframe the publisher does not resend, so the server
   * catches it up from the cached GOP. Set these consumers up like a `dvr.live` answer's, replacing only the
   * kinds they have (the audio stays); `dvr.switch` follows at the next live keyframe. (Protocol 2.)
   */
  z.object({ t: z.literal('dvr.recover'), transportId: mediaId, consumers: z.array(ConsumerView) }),
]);
export type Push = z.infer<typeof Push>;

/** The answer to a request, as it travels: `r` is checked against `RESULTS` by whoever knows the request type. */
const OkEnvelope = z.object({ t: z.literal('ok'), id, r: z.unknown() });
const ErrorFrame = z.object({
  t: z.literal('error'),
  /** The request's id; null when the frame could not be read far enough to tell. */
  id: id.nullable(),
  code: ErrorCode,
  message: z.string(),
  retryAfterMs: z.number().int().nonnegative().optional(),
});
type ErrorFrame = z.infer<typeof ErrorFrame>;
const ServerFrameEnvelope = z.union([OkEnvelope, ErrorFrame, Push]);

type OkFrame = { [T in ClientFrameType]: { t: 'ok'; id: number; r: Results[T] } }[ClientFrameType];
/** Server → client frames. */
export type ServerFrame = OkFrame | ErrorFrame | Push;

/** WebSocket close codes the server uses (4000–4999 are application codes). */
export const CLOSE_CODES = {
  shuttingDown: 1001,
  /** A frame over `hello.maxPayload`. */
  tooLarge: 1009,
  /** Too many bad frames or requests: abuse. */
  abuse: 4008,
  /** The socket could not keep up with what it was sent. */
  tooSlow: 4009,
  /** Too many sockets from one address. */
  tooMany: 4029,
} as const;

/** Limits on what a frame may unpack to (a MessagePack bomb is refused before zod sees it). */
const DECODE_LIMITS = { maxStrLength: 65_536, maxBinLength: 65_536, maxArrayLength: 1024, maxMapLength: 256 };

/** Optional fields that are `undefined` are left out (MessagePack would turn them into `null`, which the schemas refuse). */
const ENCODE_OPTIONS = { ignoreUndefined: true };

export const encodeFrame = (frame: ServerFrame | ClientFrame): Uint8Array => encode(frame, ENCODE_OPTIONS);

/** The `ok` answer to a request of type `T`. */
export const encodeOk = <T extends ClientFrameType>(id: number, r: Results[T]): Uint8Array => encode({ t: 'ok', id, r }, ENCODE_OPTIONS);

/** A request as a client sends it, numbered `id`. */
export const encodeRequest = (req: ClientRequest, id: number): Uint8Array<ArrayBuffer> =>
  encode({ ...req, id }, ENCODE_OPTIONS) as Uint8Array<ArrayBuffer>;

type Parsed<T> = { ok: true; frame: T } | { ok: false; id: number | null; message: string };

function parseWith<T>(schema: z.ZodType<T>, bytes: Uint8Array): Parsed<T> {
  let value: unknown;
  try {
    value = decode(bytes, DECODE_LIMITS);
  } catch {
    return { ok: false, id: null, message: 'frame is not valid MessagePack' };
  }
  const maybeId = typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'number' ? value.id : null;
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, id: maybeId, message: describeIssue(parsed.error) };
  return { ok: true, frame: parsed.data };
}

const describeIssue = (error: z.ZodError): string => {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || 'frame'}: ${issue.message}` : 'invalid frame';
};

/** Decodes and validates a client frame (server side). Never throws. */
export const parseClientFrame = (bytes: Uint8Array): Parsed<ClientFrame> => parseWith(ClientFrame, bytes);

/** A server frame as received: pushes and errors checked; an `ok`'s result still to be checked with `parseResult`. */
export type ReceivedFrame = z.infer<typeof ServerFrameEnvelope>;

/** Decodes and validates a server frame (client side). Never throws. */
export const parseServerFrame = (bytes: Uint8Array): Parsed<ReceivedFrame> => parseWith(ServerFrameEnvelope, bytes);

/** Checks the result of a request of type `t` (client side). */
export function parseResult<T extends ClientFrameType>(
  t: T,
  r: unknown,
): { ok: true; result: Results[T] } | { ok: false; message: string } {
  const schema: z.ZodType<Results[T]> = RESULTS[t];
  const parsed = schema.safeParse(r);
  return parsed.success ? { ok: true, result: parsed.data } : { ok: false, message: `${t} result: ${describeIssue(parsed.error)}` };
}
