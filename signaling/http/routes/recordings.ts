import { stat } from 'node:fs/promises';
import type { Recording } from '@whipcast/db';
import type { Accounts } from '../../accounts.ts';
import type { Channels } from '../../channels.ts';
import type { Recordings } from '../../recordings.ts';
import { HttpError, jsonResponse } from '../errors.ts';
import { fileResponse } from '../file-response.ts';
import type { Route } from '../types.ts';
import { userAuthenticator } from './auth.ts';
import { err, UNAUTHORIZED } from './docs.ts';

export interface RecordingRoutesOptions {
  accounts: Accounts;
  channels: Channels;
  recordings: Recordings;
  /** Lists and reads recordings from the database. */
  db: { recordings: { get(id: string): Promise<Recording | null>; listByStream(streamId: string): Promise<Recording[]> } };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NOT_FOUND = { '404': err('No such recording') };
const VIDEO = ['content-range', 'accept-ranges'];
/** H.264 recordings are MP4, VP8 ones WebM (docs/recordings.md). */
const VIDEO_TYPES = ['video/mp4', 'video/webm'];

/** Past broadcasts (issue #14): list, one, playback, download (both with `Range`), poster, delete. */
export function recordingRoutes({ accounts, channels, recordings, db }: RecordingRoutesOptions): Route[] {
  const requireUser = userAuthenticator(accounts);
  const noStore = { 'cache-control': 'no-store' };

  async function find(id: string): Promise<Recording> {
    const r = UUID.test(id) ? await db.recordings.get(id) : null;
    if (!r) throw new HttpError(404, 'not_found', 'No such recording');
    return r;
  }

  return [
    {
      method: 'GET',
      path: '/api/live/streams/:id/recordings',
      doc: {
        tags: ['recordings'],
        summary: "A channel's past broadcasts (and the one being recorded), newest first",
        responses: { '200': { description: 'Recordings', schema: 'RecordingList' }, '404': err('No such channel') },
      },
      async handler(_req, ctx) {
        const stream = await channels.get(ctx.params.id!);
        if (!stream) throw new HttpError(404, 'not_found', 'No such stream');
        const rows = await db.recordings.listByStream(stream.id);
        return jsonResponse({ recordings: rows.map((r) => recordings.toApi(r)) }, 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/recordings/:id',
      doc: {
        tags: ['recordings'],
        summary: 'One recording',
        responses: { '200': { description: 'The recording', schema: 'Recording' }, ...NOT_FOUND },
      },
      async handler(_req, ctx) {
        return jsonResponse(recordings.toApi(await find(ctx.params.id!)), 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/recordings/:id/playback',
      doc: {
        tags: ['recordings'],
        summary:
          'The recording for a `<video>` element, with `Range`: while live, the growing file up to its last complete fragment; then the moov-first file',
        responses: {
          '200': { description: 'MP4 (WebM for VP8)', contentType: VIDEO_TYPES, headers: VIDEO },
          '206': { description: 'The requested range', contentType: VIDEO_TYPES, headers: VIDEO },
          ...NOT_FOUND,
          '416': err('Range outside the file'),
        },
      },
      async handler(req, ctx) {
        const r = await find(ctx.params.id!);
        const files = recordings.files(r);
        const active = recordings.active(r.id);
        if (r.endedAt === null || active) {
          // still written (or finishing): only what is complete
          const length = active ? active.playable.bytes : 0;
          if (length === 0) throw new HttpError(404, 'not_found', 'Nothing of this recording is playable yet');
          return fileResponse(req, files.live, { contentType: files.contentType, length });
        }
        const path = r.downloadReady ? files.download : files.live;
        const size = await fileSize(path);
        if (size === null) throw new HttpError(404, 'not_found', 'The recording file is gone');
        return fileResponse(req, path, { contentType: files.contentType, length: size });
      },
    },
    {
      method: 'GET',
      path: '/api/recordings/:id/download',
      doc: {
        tags: ['recordings'],
        summary: 'Progressive MP4 (`moov` first; WebM with cues for VP8) that plays in any player, with `Range`',
        responses: {
          '200': { description: 'The file (as an attachment)', contentType: VIDEO_TYPES, headers: VIDEO },
          '206': { description: 'The requested range', contentType: VIDEO_TYPES, headers: VIDEO },
          ...NOT_FOUND,
          '409': err('The session is still being recorded (the file is built when it ends)'),
          '416': err('Range outside the file'),
        },
      },
      async handler(req, ctx) {
        const r = await find(ctx.params.id!);
        if (r.endedAt === null || !r.downloadReady) {
          if (r.endedAt !== null) throw new HttpError(404, 'not_found', 'This recording has no download file');
          throw new HttpError(409, 'not_ready', 'The session is still being recorded; the download is built when it ends');
        }
        const files = recordings.files(r);
        const size = await fileSize(files.download);
        if (size === null) throw new HttpError(404, 'not_found', 'The recording file is gone');
        const date = r.startedAt.toISOString().slice(0, 10);
        return fileResponse(req, files.download, {
          contentType: files.contentType,
          length: size,
          cacheControl: 'private, max-age=3600',
          contentDisposition: `attachment; filename="whipcast-${date}-${r.id.slice(0, 8)}.${r.container}"`,
        });
      },
    },
    {
      method: 'GET',
      path: '/api/recordings/:id/poster',
      doc: {
        tags: ['recordings'],
        summary: "The recording's poster (its first keyframe)",
        responses: { '200': { description: 'JPEG', contentType: 'image/jpeg' }, '404': err('No such recording, or no poster') },
      },
      async handler(req, ctx) {
        const r = await find(ctx.params.id!);
        const files = recordings.files(r);
        const size = await fileSize(files.poster);
        if (size === null) throw new HttpError(404, 'not_found', 'This recording has no poster');
        return fileResponse(req, files.poster, { contentType: 'image/jpeg', length: size, cacheControl: 'public, max-age=300' });
      },
    },
    {
      method: 'DELETE',
      path: '/api/recordings/:id',
      doc: {
        tags: ['recordings'],
        summary: "Delete a recording and its files (the channel's owner only; a session being recorded stops recording)",
        auth: 'session',
        responses: {
          '204': { description: 'Deleted' },
          ...UNAUTHORIZED,
          '403': err('Not the channel owner'),
          ...NOT_FOUND,
        },
      },
      async handler(req, ctx) {
        const user = await requireUser(req);
        const r = await find(ctx.params.id!);
        const stream = await channels.get(r.streamId);
        if (stream?.ownerId !== user.id) throw new HttpError(403, 'forbidden', "Only the channel's owner can delete its recordings");
        await recordings.delete(r);
        return new Response(null, { status: 204 });
      },
    },
  ];
}

async function fileSize(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.size,
    () => null,
  );
}
