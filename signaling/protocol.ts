/**
 * The /ws protocol, shared by the server and the web app: every frame is one
 * MessagePack map with a `t` (type). Client requests carry an `id`; the server
 * answers each with `ok` (same id, a result) or `error` (same id, a code).
 * Everything else the server sends is a push. Schemas (zod) are the single
 * definition: the server validates with them, the web app imports the types.
 */
import { decode, encode } from '@msgpack/msgpack';
import { z } from 'zod';

const id = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 31);
const streamId = z.string().uuid();
const json = z.record(z.string(), z.unknown());

/** Client → server requests. */
export const ClientFrame = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ping'), id }),
  /** Authenticate (or re-authenticate with a refreshed token) without reconnecting; `null` signs out. */
  z.object({ t: z.literal('auth'), id, token: z.string().max(512).nullable() }),
  /** Follow every channel's live status and viewer count (the browse page): `lobby.update` pushes. */
  z.object({ t: z.literal('lobby.join'), id }),
  z.object({ t: z.literal('lobby.leave'), id }),
  z.object({ t: z.literal('chat.join'), id, room: streamId }),
  z.object({ t: z.literal('chat.leave'), id, room: streamId }),
  z.object({
    t: z.literal('chat.history'),
    id,
    room: streamId,
    before: z.number().int().positive().optional(),
    limit: z.number().int().min(1).max(200).optional(),
  }),
  z.object({ t: z.literal('chat.send'), id, room: streamId, text: z.string().min(1).max(10_000) }),
  z.object({ t: z.literal('chat.delete'), id, room: streamId, messageId: z.number().int().positive() }),
  z.object({
    t: z.literal('chat.timeout'),
    id,
    room: streamId,
    userId: z.string().uuid(),
    seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 86400),
  }),
  z.object({ t: z.literal('chat.ban'), id, room: streamId, userId: z.string().uuid() }),
  z.object({ t: z.literal('chat.unban'), id, room: streamId, userId: z.string().uuid() }),
  z.object({ t: z.literal('chat.slowmode'), id, room: streamId, seconds: z.number().int().min(0).max(3600) }),
  /** Viewer WebRTC (mediasoup-client). */
  z.object({ t: z.literal('rtc.capabilities'), id, streamId }),
  z.object({ t: z.literal('rtc.transport'), id, streamId }),
  z.object({ t: z.literal('rtc.connect'), id, transportId: z.string().max(64), dtlsParameters: json }),
  z.object({ t: z.literal('rtc.consume'), id, transportId: z.string().max(64), rtpCapabilities: json }),
  z.object({ t: z.literal('rtc.resume'), id, consumerId: z.string().max(64) }),
  z.object({ t: z.literal('rtc.pause'), id, consumerId: z.string().max(64) }),
  z.object({ t: z.literal('rtc.restartIce'), id, transportId: z.string().max(64) }),
  z.object({ t: z.literal('rtc.close'), id, transportId: z.string().max(64) }),
  /** DVR: watch the past on the same transport. `offsetMs` behind live, or `deltaMs` from the current position. */
  z.object({
    t: z.literal('dvr.seek'),
    id,
    transportId: z.string().max(64),
    offsetMs: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600_000)
      .optional(),
    deltaMs: z
      .number()
      .int()
      .min(-24 * 3600_000)
      .max(24 * 3600_000)
      .optional(),
  }),
  z.object({ t: z.literal('dvr.live'), id, transportId: z.string().max(64) }),
  z.object({ t: z.literal('dvr.pause'), id, transportId: z.string().max(64) }),
  z.object({ t: z.literal('dvr.resume'), id, transportId: z.string().max(64) }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['t'];

export interface ChatMessageView {
  id: number;
  room: string;
  userId: string;
  username: string;
  text: string;
  /** ISO 8601, server clock. */
  at: string;
}

export interface RoomState {
  room: string;
  live: boolean;
  slowModeSeconds: number;
  maxMessageLength: number;
  /** Whether this socket may send here now (signed in, not banned or timed out). */
  canSend: boolean;
  /** Signed-in user is the channel owner (may moderate). */
  isOwner: boolean;
  history: ChatMessageView[];
  viewers: number;
  chatters: number;
}

export interface ConsumerView {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: Record<string, unknown>;
  /** Instant start: set up this consumer too, but show it only after `dvr.switch`. */
  standby?: boolean;
}

export interface TransportView {
  id: string;
  iceParameters: Record<string, unknown>;
  iceCandidates: Record<string, unknown>[];
  dtlsParameters: Record<string, unknown>;
}

/** Result of each request type (the `r` field of its `ok`). */
export interface Results {
  ping: { now: number };
  auth: { user: { id: string; username: string } | null };
  'lobby.join': Record<string, never>;
  'lobby.leave': Record<string, never>;
  'chat.join': RoomState;
  'chat.leave': Record<string, never>;
  'chat.history': { messages: ChatMessageView[] };
  'chat.send': { message: ChatMessageView };
  'chat.delete': Record<string, never>;
  'chat.timeout': { until: string };
  'chat.ban': Record<string, never>;
  'chat.unban': Record<string, never>;
  'chat.slowmode': { seconds: number };
  'rtc.capabilities': { routerRtpCapabilities: Record<string, unknown>; live: boolean };
  'rtc.transport': TransportView;
  'rtc.connect': Record<string, never>;
  'rtc.consume': { consumers: ConsumerView[] };
  'rtc.resume': Record<string, never>;
  'rtc.pause': Record<string, never>;
  'rtc.restartIce': { iceParameters: Record<string, unknown> };
  'rtc.close': Record<string, never>;
  'dvr.seek': { consumers: ConsumerView[]; behindLiveMs: number; windowMs: number; live: boolean };
  'dvr.live': { consumers: ConsumerView[] };
  'dvr.pause': Record<string, never>;
  'dvr.resume': Record<string, never>;
}

export const ERROR_CODES = [
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
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Server → client frames. */
export type ServerFrame =
  | { [K in keyof Results]: { t: 'ok'; id: number; r: Results[K] } }[keyof Results]
  | { t: 'error'; id: number | null; code: ErrorCode; message: string; retryAfterMs?: number }
  | { t: 'hello'; version: number; maxPayload: number }
  | { t: 'chat.message'; room: string; message: ChatMessageView }
  | { t: 'chat.deleted'; room: string; messageId: number }
  | { t: 'chat.moderation'; room: string; action: 'timeout' | 'ban' | 'unban'; userId: string; until: string | null }
  | { t: 'chat.slowmode'; room: string; seconds: number }
  /** Some pushes to this socket were dropped (it was too slow): refetch history. */
  | { t: 'chat.resync'; room: string }
  | { t: 'presence'; room: string; viewers: number; chatters: number }
  /** A channel's live status or viewer count changed (coalesced, for lobby sockets). */
  | { t: 'lobby.update'; room: string; live: boolean; viewers: number }
  | { t: 'stream.live'; room: string }
  | { t: 'stream.offline'; room: string; reason: string }
  /** The channel's publisher changed codecs: consume again on the same transport. */
  | { t: 'rtc.reconsume'; room: string }
  /** The server closed this receive transport (its media worker was lost): build a new one. */
  | { t: 'rtc.closed'; transportId: string; reason: string }
  /** Where a DVR viewer is (about once a second while not live). */
  | { t: 'dvr.position'; transportId: string; behindLiveMs: number; windowMs: number; paused: boolean }
  /** Instant start is over: show the standby (live) consumers, drop the catch-up ones. */
  | { t: 'dvr.switch'; transportId: string };
export type ServerFrameType = ServerFrame['t'];

export const PROTOCOL_VERSION = 1;

/** WebSocket close codes the server uses (4000–4999 are application codes). */
export const CLOSE_CODES = {
  policyViolation: 1008,
  tooLarge: 1009,
  shuttingDown: 1001,
  /** Too many bad frames or requests: abuse. */
  abuse: 4008,
  /** The socket could not keep up with what it was sent. */
  tooSlow: 4009,
} as const;

export const encodeFrame = (frame: ServerFrame | ClientFrame): Uint8Array => encode(frame);

/** Decodes a server frame (client side; the server is trusted). */
export const decodeServerFrame = (bytes: Uint8Array | ArrayBuffer): ServerFrame => decode(bytes) as ServerFrame;

export type ParsedClientFrame = { ok: true; frame: ClientFrame } | { ok: false; id: number | null; message: string };

/** Decodes and validates a client frame (server side). Never throws. */
export function parseClientFrame(bytes: Uint8Array): ParsedClientFrame {
  let value: unknown;
  try {
    value = decode(bytes, { maxStrLength: 65_536, maxBinLength: 65_536, maxArrayLength: 1024, maxMapLength: 256 });
  } catch {
    return { ok: false, id: null, message: 'frame is not valid MessagePack' };
  }
  const maybeId = typeof value === 'object' && value !== null && 'id' in value && typeof value.id === 'number' ? value.id : null;
  const parsed = ClientFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, id: maybeId, message: issue ? `${issue.path.join('.') || 'frame'}: ${issue.message}` : 'invalid frame' };
  }
  return { ok: true, frame: parsed.data };
}
