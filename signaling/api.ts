/**
 * The HTTP API's bodies, defined once: they validate requests, give the server
 * and the web app their TypeScript types, and generate the OpenAPI document.
 */
import { z } from 'zod';
import { RtpParameters } from './protocol.ts';
import { plainText } from './text.ts';

export const apiSchemas = z.registry<{ id: string; description?: string }>();

const schema = <T extends z.ZodType>(id: string, s: T, description?: string): T => {
  apiSchemas.add(s, description ? { id, description } : { id });
  return s;
};

export const ErrorBody = schema(
  'Error',
  z.object({
    error: z.object({
      code: z.string().describe('Machine-readable error code, e.g. `invalid_credentials`.'),
      message: z.string().describe('Human-readable explanation.'),
    }),
  }),
);

export const Credentials = schema(
  'Credentials',
  z.object({
    username: z
      .string()
      .min(3)
      .max(32)
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
    password: z.string().min(8).max(256),
  }),
);

export const LoginCredentials = schema(
  'LoginCredentials',
  z.object({ username: z.string().max(256), password: z.string().max(256) }),
  'Any strings: credentials that cannot belong to an account are simply wrong (401), never a 400.',
);

export const User = schema('User', z.object({ id: z.uuid(), username: z.string() }));

export const AuthResult = schema(
  'AuthResult',
  z.object({
    token: z.string().describe('Session token: send as `Authorization: Bearer <token>`.'),
    expiresAt: z.iso.datetime(),
    user: User,
  }),
);

export const StreamStatus = z.enum(['live', 'offline']);

export const Stream = schema(
  'Stream',
  z.object({
    id: z.uuid().describe('Channel id; also the id of its chat room.'),
    title: z.string(),
    description: z.string(),
    status: StreamStatus,
    viewerCount: z.number().int().min(0).describe('Viewers receiving media now (chat-only tabs are not viewers).'),
    startedAt: z.iso.datetime().nullable(),
    owner: User,
    saveRecordings: z.boolean().describe('"Save past broadcasts": each live session is recorded (owner setting, default on).'),
  }),
);

export const StreamList = schema('StreamList', z.object({ streams: z.array(Stream) }));

export const StreamUpdate = schema(
  'StreamUpdate',
  z.object({
    title: plainText({ max: 140, trim: true }),
    description: plainText({ max: 2000, multiline: true }).default(''),
    saveRecordings: z
      .boolean()
      .optional()
      .describe('"Save past broadcasts" (omitted: unchanged). Applies from the next time a publisher connects.'),
  }),
);

export const RecordingView = schema(
  'Recording',
  z.object({
    id: z.uuid(),
    streamId: z.uuid().describe('The channel it was recorded on (`GET /api/live/streams/:id`).'),
    title: z.string().describe("The channel's title when the session went live."),
    startedAt: z.iso.datetime(),
    endedAt: z.iso.datetime().nullable().describe('null while the session is still being recorded.'),
    durationMs: z.number().int().min(0).describe('What plays now (grows while the session is recorded).'),
    posterUrl: z.string().nullable().describe('JPEG poster (the first keyframe), null when there is none.'),
    playbackUrl: z
      .string()
      .describe('The video for a `<video>` element, with `Range`: the growing file up to its last complete fragment while live.'),
    downloadUrl: z.string().describe('Progressive MP4 (`moov` first; WebM for VP8), with `Range`; 409 until the session has ended.'),
  }),
);

export const RecordingList = schema('RecordingList', z.object({ recordings: z.array(RecordingView).describe('Newest first.') }));

export const ClipRequest = schema(
  'ClipRequest',
  z
    .object({
      durationS: z.number().int().min(5).max(60).default(30).describe('Length of the clip, seconds (5–60, default 30).'),
      endOffsetMs: z
        .number()
        .int()
        .min(0)
        .max(24 * 3600 * 1000)
        .default(0)
        .describe('How far behind live the clip ends, ms (a viewer watching in the DVR window); default 0, the live edge.'),
    })
    .strict(),
);

export const ClipCreated = schema(
  'ClipCreated',
  z.object({
    id: z.uuid(),
    url: z.string().describe("The clip's shareable page, `/clips/<id>`."),
    downloadUrl: z.string().describe('The clip file (MP4; WebM for a VP8 channel), with `Range`.'),
  }),
);

export const ClipView = schema(
  'Clip',
  z.object({
    id: z.uuid(),
    streamId: z.uuid().describe('The channel it was cut from.'),
    durationMs: z.number().int().min(0),
    createdAt: z.iso.datetime(),
    creator: User.nullable().describe('Who cut it; null once that account is gone.'),
    downloadUrl: z.string().describe('The clip file (MP4; WebM for a VP8 channel), with `Range`.'),
    posterUrl: z.string().nullable().describe('JPEG of its first frame, null when there is none.'),
  }),
);

export const StreamKey = schema(
  'StreamKey',
  z.object({
    streamKey: z.string().describe('Paste into OBS as the "Bearer Token". Keep it secret.'),
    whipUrl: z.url().describe('Paste into OBS as the "Server" of the WHIP service.'),
  }),
);

export const ChatBan = schema(
  'ChatBan',
  z.object({
    userId: z.uuid(),
    username: z.string(),
    kind: z.enum(['timeout', 'ban']),
    until: z.iso.datetime().nullable().describe('When a timeout ends; null for a ban (until lifted).'),
  }),
);

export const ChatBanList = schema('ChatBanList', z.object({ bans: z.array(ChatBan) }));

export const ChatRestriction = schema(
  'ChatRestriction',
  z.object({ restriction: ChatBan.nullable().describe("The caller's ban or timeout in this channel's chat, if any.") }),
);

export const Health = schema('Health', z.object({ status: z.literal('ok') }));

export const Readiness = schema(
  'Readiness',
  z.object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({ database: z.boolean(), media: z.boolean() }),
  }),
);

export type CredentialsBody = z.infer<typeof Credentials>;
export type ApiUser = z.infer<typeof User>;
export type ApiAuthResult = z.infer<typeof AuthResult>;
export type ApiStream = z.infer<typeof Stream>;
export type ApiStreamList = z.infer<typeof StreamList>;
export type ApiStreamUpdate = z.infer<typeof StreamUpdate>;
export type ApiStreamKey = z.infer<typeof StreamKey>;
export type ApiRecording = z.infer<typeof RecordingView>;
export type ApiRecordingList = z.infer<typeof RecordingList>;
export type ApiClipRequest = z.infer<typeof ClipRequest>;
export type ApiClipCreated = z.infer<typeof ClipCreated>;
export type ApiClip = z.infer<typeof ClipView>;
export type ApiError = z.infer<typeof ErrorBody>;
export type ApiChatBan = z.infer<typeof ChatBan>;
export type ApiChatBanList = z.infer<typeof ChatBanList>;
export type ApiChatRestriction = z.infer<typeof ChatRestriction>;

// ---- node-to-node (cluster) ----

const PipeEndpoint = z.object({
  ip: z.string().min(1).max(64),
  port: z.number().int().min(1).max(65535),
  srtpParameters: z
    .object({
      cryptoSuite: z.enum(['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']),
      keyBase64: z.string().max(256),
    })
    .optional(),
});

export const RelayRequest = schema(
  'RelayRequest',
  z.object({
    streamId: z.uuid(),
    node: z.string().min(1).max(200).describe('Id of the node asking (relays to it stop when it is lost).'),
    endpoint: PipeEndpoint.describe("The asking node's PipeTransport."),
  }),
  "An edge node asks the channel's origin node to pipe the channel to it.",
);

export const RelayGrant = schema(
  'RelayGrant',
  z.object({
    id: z.string(),
    offer: z.object({
      endpoint: PipeEndpoint,
      tracks: z.array(z.object({ kind: z.enum(['audio', 'video']), rtpParameters: RtpParameters })),
    }),
  }),
  "The origin's PipeTransport and the program tracks it sends (mediasoup RTP parameters).",
);
export type RelayGrant = z.infer<typeof RelayGrant>;

export const RelayList = schema(
  'RelayList',
  z.object({ relays: z.array(z.object({ id: z.string(), streamId: z.uuid(), peer: z.string().describe('The node it goes to.') })) }),
);
