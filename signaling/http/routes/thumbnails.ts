import { errorResponse } from '../errors.ts';
import type { Route } from '../types.ts';
import type { Thumbnailer } from '../../thumbnails.ts';
import { err } from './docs.ts';

/** GET /api/live/streams/:id/thumbnail: the channel's newest picture, made off the request path. */
export function thumbnailRoutes(thumbnails: Thumbnailer): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/live/streams/:id/thumbnail',
      doc: {
        tags: ['streams'],
        summary:
          "The channel's live thumbnail (its newest keyframe, made again about every THUMBNAIL_INTERVAL_SECONDS); after the stream ends, its last picture",
        responses: {
          '200': { description: 'JPEG picture, 480 px wide', contentType: 'image/jpeg', headers: ['etag'] },
          '304': { description: 'Not modified (`If-None-Match` matched the ETag)' },
          '404': err('No picture of this channel (yet)'),
        },
      },
      async handler(req, ctx) {
        const picture = await thumbnails.get(ctx.params.id!);
        if (!picture) return errorResponse(404, 'not_found', 'This channel has no thumbnail yet');
        const headers = { 'content-type': picture.mimeType, etag: picture.etag, 'cache-control': 'no-cache' };
        if (req.headers.get('if-none-match') === picture.etag) return new Response(null, { status: 304, headers });
        return new Response(new Uint8Array(picture.image), { status: 200, headers });
      },
    },
  ];
}
