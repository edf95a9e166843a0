import type { Accounts } from '../../accounts.ts';
import { StreamUpdate } from '../../api.ts';
import type { Channels } from '../../channels.ts';
import { readJson } from '../body.ts';
import { HttpError, jsonResponse } from '../errors.ts';
import type { Route } from '../types.ts';
import { userAuthenticator } from './auth.ts';
import { err, JSON_BODY_ERRORS, UNAUTHORIZED } from './docs.ts';

export interface StreamRoutesOptions {
  accounts: Accounts;
  channels: Channels;
  /** The WHIP endpoint URL as a streamer must type it into OBS, for this request. */
  whipUrl(req: Request): string;
}

export function streamRoutes({ accounts, channels, whipUrl }: StreamRoutesOptions): Route[] {
  const requireUser = userAuthenticator(accounts);
  const noStore = { 'cache-control': 'no-store' };
  return [
    {
      method: 'GET',
      path: '/api/live/streams',
      doc: {
        tags: ['streams'],
        summary: 'Channels live now, newest first, with viewer counts',
        responses: { '200': { description: 'Live channels', schema: 'StreamList' } },
      },
      async handler() {
        const live = await channels.listLive();
        return jsonResponse({ streams: live.map((s) => channels.toApi(s)) }, 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/live/streams/me',
      doc: {
        tags: ['streams'],
        summary: "The caller's channel (created with its chat room and stream key on first call)",
        auth: 'session',
        responses: { '200': { description: 'The channel', schema: 'Stream' }, ...UNAUTHORIZED },
      },
      async handler(req) {
        const user = await requireUser(req);
        return jsonResponse(channels.toApi(await channels.mine(user)), 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/live/streams/me/key',
      doc: {
        tags: ['streams'],
        summary: "The caller's stream key and the WHIP URL to paste into OBS",
        auth: 'session',
        responses: {
          '200': { description: 'Key and URL', schema: 'StreamKey' },
          ...UNAUTHORIZED,
          '409': err('The key cannot be recovered because the server secret changed: rotate it'),
        },
      },
      async handler(req) {
        const user = await requireUser(req);
        return jsonResponse(await channels.key(user, whipUrl(req)), 200, noStore);
      },
    },
    {
      method: 'POST',
      path: '/api/live/streams/me/key',
      doc: {
        tags: ['streams'],
        summary: 'Rotate the stream key: the old key stops working at once and a live session using it is ended',
        auth: 'session',
        responses: { '200': { description: 'The new key', schema: 'StreamKey' }, ...UNAUTHORIZED },
      },
      async handler(req) {
        const user = await requireUser(req);
        return jsonResponse(await channels.rotateKey(user, whipUrl(req)), 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/live/streams/me/bans',
      doc: {
        tags: ['streams'],
        summary: "Who is banned or timed out in the caller's chat (lift one with the socket's chat.unban)",
        auth: 'session',
        responses: { '200': { description: 'Bans and timeouts in force, newest first', schema: 'ChatBanList' }, ...UNAUTHORIZED },
      },
      async handler(req) {
        const user = await requireUser(req);
        return jsonResponse({ bans: await channels.bans(user) }, 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/live/streams/:id/chat/restriction',
      doc: {
        tags: ['streams'],
        summary: "The caller's own ban or timeout in a channel's chat (null when they may chat)",
        auth: 'session',
        responses: { '200': { description: 'The restriction, if any', schema: 'ChatRestriction' }, ...UNAUTHORIZED },
      },
      async handler(req, ctx) {
        const user = await requireUser(req);
        return jsonResponse({ restriction: await channels.restriction(user, ctx.params.id!) }, 200, noStore);
      },
    },
    {
      method: 'GET',
      path: '/api/live/streams/:id',
      doc: {
        tags: ['streams'],
        summary: 'One channel',
        responses: { '200': { description: 'The channel', schema: 'Stream' }, '404': err('No such channel') },
      },
      async handler(_req, ctx) {
        const stream = await channels.get(ctx.params.id!);
        if (!stream) throw new HttpError(404, 'not_found', 'No such stream');
        return jsonResponse(channels.toApi(stream), 200, noStore);
      },
    },
    {
      method: 'PUT',
      path: '/api/live/streams/:id',
      maxBodyBytes: 8192,
      doc: {
        tags: ['streams'],
        summary: "Edit a channel's title and description (owner only)",
        auth: 'session',
        request: { contentType: 'application/json', schema: 'StreamUpdate' },
        responses: {
          '200': { description: 'Updated channel', schema: 'Stream' },
          ...JSON_BODY_ERRORS,
          ...UNAUTHORIZED,
          '403': err('Not the owner'),
          '404': err('No such channel'),
        },
      },
      async handler(req, ctx) {
        const user = await requireUser(req);
        const fields = await readJson(req, StreamUpdate);
        return jsonResponse(channels.toApi(await channels.update(user, ctx.params.id!, fields)));
      },
    },
  ];
}
