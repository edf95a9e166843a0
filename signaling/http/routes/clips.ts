import type { Clip } from '@whipcast/db';
import type { Accounts } from '../../accounts.ts';
import { ClipRequest } from '../../api.ts';
import type { Channels } from '../../channels.ts';
import { ClipRefused, type ClipFailure, type Clips } from '../../clips.ts';
import { readJson } from '../body.ts';
import { HttpError, jsonResponse } from '../errors.ts';
import { fileResponse } from '../file-response.ts';
import type { Route } from '../types.ts';
import { userAuthenticator } from './auth.ts';
import { err, JSON_BODY_ERRORS, UNAUTHORIZED } from './docs.ts';

export interface ClipRoutesOptions {
  accounts: Accounts;
  channels: Channels;
  clips: Clips;
  db: { clips: { get(id: string): Promise<Clip | null> } };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NOT_FOUND = { '404': err('No such clip') };
const VIDEO = ['content-range', 'accept-ranges'];
/** Clips of H.264 channels are MP4, of VP8 channels WebM (docs/recordings.md). */
const VIDEO_TYPES = ['video/mp4', 'video/webm'];
const STATUS: Record<ClipFailure, number> = {
  invalid: 400,
  not_live: 409,
  empty: 409,
  unsupported: 422,
  rate_limited: 429,
  busy: 503,
};

/** Clips (issue #14): cut one from a live channel, read it, its file (with `Range`) and poster, delete it. */
export function clipRoutes({ accounts, channels, clips, db }: ClipRoutesOptions): Route[] {
  const requireUser = userAuthenticator(accounts);
  const noStore = { 'cache-control': 'no-store' };

  async function find(id: string): Promise<Clip> {
    const c = UUID.test(id) ? await db.clips.get(id) : null;
    if (!c) throw new HttpError(404, 'not_found', 'No such clip');
    return c;
  }

  return [
    {
      method: 'POST',
      path: '/api/live/streams/:id/clips',
      doc: {
        tags: ['clips'],
        summary:
          'Cut a clip of a live channel from its DVR buffer (no re-encoding): the last `durationS` seconds, or ending `endOffsetMs` behind live; ready when answered',
        auth: 'session',
        request: { contentType: 'application/json', schema: 'ClipRequest', description: 'Optional: an empty body takes the defaults.' },
        responses: {
          '201': { description: 'The clip', schema: 'ClipCreated' },
          ...JSON_BODY_ERRORS,
          ...UNAUTHORIZED,
          '404': err('No such channel'),
          '409': err('The channel is not live (on this node), or nothing is buffered for the requested moment'),
          '422': err("The channel's codec cannot be clipped"),
          '429': err('Too many clips by this user in the last hour (`CLIPS_PER_USER_PER_HOUR`); see Retry-After'),
          '503': err('Other clips are being cut on this node right now; see Retry-After'),
        },
      },
      async handler(req, ctx) {
        const user = await requireUser(req);
        const body = await readClipRequest(req);
        const stream = UUID.test(ctx.params.id!) ? await channels.get(ctx.params.id!) : null;
        if (!stream) throw new HttpError(404, 'not_found', 'No such stream');
        try {
          const clip = await clips.create(stream, user, body);
          const view = clips.toApi(clip);
          return jsonResponse({ id: clip.id, url: `/clips/${clip.id}`, downloadUrl: view.downloadUrl }, 201, {
            ...noStore,
            location: `/api/clips/${clip.id}`,
          });
        } catch (e) {
          if (!(e instanceof ClipRefused)) throw e;
          const headers: Record<string, string> = e.retryAfterS ? { 'retry-after': String(e.retryAfterS) } : {};
          throw new HttpError(STATUS[e.reason], e.reason === 'invalid' ? 'invalid_body' : e.reason, e.message, headers);
        }
      },
    },
    {
      method: 'GET',
      path: '/api/clips/:id',
      doc: {
        tags: ['clips'],
        summary: 'One clip',
        responses: { '200': { description: 'The clip', schema: 'Clip' }, ...NOT_FOUND },
      },
      async handler(_req, ctx) {
        return jsonResponse(clips.toApi(await find(ctx.params.id!)), 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/clips/:id/download',
      doc: {
        tags: ['clips'],
        summary: 'The clip file: MP4 with `moov` first (WebM for a VP8 channel), with `Range`',
        responses: {
          '200': { description: 'The file (as an attachment)', contentType: VIDEO_TYPES, headers: VIDEO },
          '206': { description: 'The requested range', contentType: VIDEO_TYPES, headers: VIDEO },
          '404': err('No such clip, or its file is not on this node (cut on another node without shared storage)'),
          '416': err('Range outside the file'),
        },
      },
      async handler(req, ctx) {
        const c = await find(ctx.params.id!);
        const files = clips.files(c);
        const size = await clips.size(files.media);
        if (size === null) throw new HttpError(404, 'not_found', 'The clip file is not on this server node');
        const date = c.createdAt.toISOString().slice(0, 10);
        return fileResponse(req, files.media, {
          contentType: files.contentType,
          length: size,
          cacheControl: 'public, max-age=3600',
          contentDisposition: `attachment; filename="whipcast-clip-${date}-${c.id.slice(0, 8)}.${c.container}"`,
        });
      },
    },
    {
      method: 'GET',
      path: '/api/clips/:id/poster',
      doc: {
        tags: ['clips'],
        summary: "The clip's poster (its first keyframe)",
        responses: { '200': { description: 'JPEG', contentType: 'image/jpeg' }, '404': err('No such clip, or no poster') },
      },
      async handler(req, ctx) {
        const c = await find(ctx.params.id!);
        const files = clips.files(c);
        const size = c.hasPoster ? await clips.size(files.poster) : null;
        if (size === null) throw new HttpError(404, 'not_found', 'This clip has no poster');
        return fileResponse(req, files.poster, { contentType: 'image/jpeg', length: size, cacheControl: 'public, max-age=3600' });
      },
    },
    {
      method: 'DELETE',
      path: '/api/clips/:id',
      doc: {
        tags: ['clips'],
        summary: "Delete a clip and its files (the channel's owner or the clip's creator)",
        auth: 'session',
        responses: {
          '204': { description: 'Deleted' },
          ...UNAUTHORIZED,
          '403': err("Neither the channel's owner nor the clip's creator"),
          ...NOT_FOUND,
        },
      },
      async handler(req, ctx) {
        const user = await requireUser(req);
        const c = await find(ctx.params.id!);
        if (c.creatorId !== user.id) {
          const stream = await channels.get(c.streamId);
          if (stream?.ownerId !== user.id) {
            throw new HttpError(403, 'forbidden', "Only the channel's owner or the clip's creator can delete it");
          }
        }
        await clips.delete(c);
        return new Response(null, { status: 204 });
      },
    },
  ];
}

/** The body of a clip request; an empty body (no content type needed) takes the defaults. */
async function readClipRequest(req: Request): Promise<{ durationS: number; endOffsetMs: number }> {
  const text = await req.clone().text();
  if (text.trim() === '') return ClipRequest.parse({});
  return readJson(req, ClipRequest);
}
