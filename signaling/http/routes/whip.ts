/**
 * WHIP (RFC 9725) ingest and WHEP playback over HTTP. SDP handling and media
 * live in `sfu/`; this module maps HTTP to it: content types, bearer auth,
 * CORS, Link ice-server headers, rate limits, session URLs, PATCH (trickle and
 * ICE restart) and the status codes OBS and other clients rely on.
 */
import type { IceRestartResult, WhepViewer, WhipIngest } from '@whipcast/sfu';
import type { Channels } from '../../channels.ts';
import { bearerToken } from '../body.ts';
import { asHttpError, errorResponse, HttpError } from '../errors.ts';
import { createRateLimiter } from '../rate-limit.ts';
import type { Route, RouteDoc } from '../types.ts';
import { err } from './docs.ts';

/** What these routes need from the SFU. */
export interface WhipMedia {
  /** A publisher for the channel from a WHIP offer. */
  publish(channelId: string, offer: string): Promise<WhipIngest>;
  /** A viewer of the live channel from a WHEP offer. */
  watch(channelId: string, offer: string): Promise<WhepViewer>;
  /** A session by the id in its URL. */
  session(kind: 'whip' | 'whep', id: string): WhipIngest | WhepViewer | undefined;
}

/**
 * A session's ETag is the client's current ICE ufrag: an ICE restart (a new
 * ufrag) is what changes the session (RFC 9725 §4.3.1).
 */
const etagOf = (s: WhipIngest | WhepViewer): string => `"${s.remoteIceUfrag}"`;

export interface WhipRoutesOptions {
  media: WhipMedia;
  channels: Channels;
  /** STUN/TURN URLs for `Link: rel="ice-server"`. */
  iceServers: string[];
  ratePerMinute: number;
}

const SDP = 'application/sdp';
const SDPFRAG = 'application/trickle-ice-sdpfrag';
const MAX_SDP_BYTES = 64 * 1024;
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After, WWW-Authenticate',
};
const WWW_AUTH = { 'www-authenticate': 'Bearer realm="whipcast", error="invalid_token"' };

function withCors(res: Response): Response {
  for (const [k, v] of Object.entries(CORS)) res.headers.set(k, v);
  return res;
}

function preflight(methods: string, extra: Record<string, string> = {}): Response {
  return new Response(null, {
    status: 204,
    headers: {
      ...CORS,
      'access-control-allow-methods': methods,
      'access-control-allow-headers': 'Authorization, Content-Type, If-Match',
      'access-control-max-age': '86400',
      ...extra,
    },
  });
}

/** `Link` header values for the configured ICE servers (`stun:`, `turn:`, `turns:`; credentials from the URL's userinfo). */
export function iceServerLinks(urls: string[]): string[] {
  return urls.map((raw) => {
    const m = /^(stuns?|turns?):(?:([^:@]+):([^@]+)@)?(.+)$/.exec(raw.trim());
    if (!m) return `<${raw}>; rel="ice-server"`;
    const [, scheme, user, pass, rest] = m;
    const creds =
      user && pass ? `; username="${decodeURIComponent(user)}"; credential="${decodeURIComponent(pass)}"; credential-type="password"` : '';
    return `<${scheme}:${rest}>; rel="ice-server"${creds}`;
  });
}

async function readSdp(req: Request): Promise<string> {
  const type = (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== SDP) throw new HttpError(415, 'unsupported_media_type', `Send the offer as ${SDP}`, { 'accept-post': SDP });
  const body = await req.text();
  if (!body.trim()) throw new HttpError(400, 'malformed_sdp', 'Empty SDP offer');
  return body;
}

/** An SFU or SDP error as the HTTP error it answers with (the mapping shared with the socket); anything else is rethrown. */
function mediaError(e: unknown): never {
  throw asHttpError(e) ?? e;
}

function created(session: WhipIngest | WhepViewer, location: string, iceServers: string[]): Response {
  const headers = new Headers({ 'content-type': SDP, location, etag: etagOf(session), 'accept-patch': SDPFRAG, ...CORS });
  for (const link of iceServerLinks(iceServers)) headers.append('link', link);
  return new Response(session.answer, { status: 201, headers });
}

/** Parses an ICE restart / trickle sdpfrag: the new credentials, if any. */
export function parseSdpFrag(body: string): { ufrag?: string; pwd?: string; candidates: string[] } {
  const ufrag = /^a=ice-ufrag:(\S+)/m.exec(body)?.[1];
  const pwd = /^a=ice-pwd:(\S+)/m.exec(body)?.[1];
  const candidates = [...body.matchAll(/^a=candidate:.*$/gm)].map((m) => m[0]);
  return { ...(ufrag ? { ufrag } : {}), ...(pwd ? { pwd } : {}), candidates };
}

function restartFrag(r: IceRestartResult): string {
  const lines = [`a=ice-ufrag:${r.iceParameters.usernameFragment}`, `a=ice-pwd:${r.iceParameters.password}`];
  for (const c of r.iceCandidates) {
    lines.push(
      `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ ${c.type}${c.tcpType ? ` tcptype ${c.tcpType}` : ''}`,
    );
  }
  lines.push('a=end-of-candidates');
  return lines.join('\r\n') + '\r\n';
}

const SESSION_DOC = (kind: 'WHIP' | 'WHEP'): Record<string, RouteDoc> => ({
  DELETE: {
    tags: [kind.toLowerCase()],
    summary: `End a ${kind} session`,
    responses: { '200': { description: 'Session ended' }, '404': err('No such session') },
  },
  PATCH: {
    tags: [kind.toLowerCase()],
    summary: `Trickle ICE (204) or ICE restart with If-Match (200 + sdpfrag) for a ${kind} session`,
    request: { contentType: SDPFRAG },
    responses: {
      '200': { description: 'ICE restarted: the server sdpfrag', contentType: SDPFRAG, headers: ['ETag'] },
      '204': { description: 'Candidates accepted' },
      '404': err('No such session'),
      '412': err('If-Match does not match the session ETag'),
      '415': err(`Not ${SDPFRAG}`),
    },
  },
});

export function whipRoutes(opts: WhipRoutesOptions): Route[] {
  const { media, channels, iceServers } = opts;
  const perIp = createRateLimiter(opts.ratePerMinute, 60_000);
  const perKey = createRateLimiter(opts.ratePerMinute, 60_000);

  function limit(key: string, limiter = perIp): void {
    const retry = limiter.hit(key);
    if (retry) throw new HttpError(429, 'rate_limited', 'Too many session requests; slow down', { 'retry-after': String(retry) });
  }

  const sessionRoutes = (kind: 'whip' | 'whep'): Route[] => {
    const path = `/${kind}/sessions/:sessionId`;
    const docs = SESSION_DOC(kind === 'whip' ? 'WHIP' : 'WHEP');
    return [
      { method: 'OPTIONS', path, handler: () => preflight('PATCH, DELETE, OPTIONS', { 'accept-patch': SDPFRAG }) },
      {
        method: 'DELETE',
        path,
        doc: docs.DELETE,
        handler(_req, ctx) {
          const session = media.session(kind, ctx.params.sessionId!);
          if (!session) return withCors(errorResponse(404, 'not_found', 'No such session'));
          session.close(kind === 'whip' ? 'publisher stopped (DELETE)' : 'viewer stopped (DELETE)');
          return new Response(null, { status: 200, headers: CORS });
        },
      },
      {
        method: 'PATCH',
        path,
        maxBodyBytes: 16 * 1024,
        doc: docs.PATCH,
        async handler(req, ctx) {
          limit(`patch:${ctx.remoteAddress}`);
          const session = media.session(kind, ctx.params.sessionId!);
          if (!session) throw new HttpError(404, 'not_found', 'No such session');
          const type = (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== SDPFRAG) throw new HttpError(415, 'unsupported_media_type', `Send ${SDPFRAG}`, { 'accept-patch': SDPFRAG });
          const frag = parseSdpFrag(await req.text());
          const ifMatch = req.headers.get('if-match');
          if (ifMatch && ifMatch !== '*' && ifMatch !== etagOf(session))
            throw new HttpError(412, 'precondition_failed', 'ETag does not match');
          const restarting = frag.ufrag && frag.pwd && frag.ufrag !== session.remoteIceUfrag;
          if (!restarting) {
            // mediasoup is ICE-lite: it learns the peer's addresses from its checks, so trickled candidates need no action.
            return new Response(null, { status: 204, headers: CORS });
          }
          if (!ifMatch) throw new HttpError(428, 'precondition_required', 'An ICE restart needs If-Match: "*" or the session ETag');
          try {
            const r = await session.restartIce({ ufrag: frag.ufrag!, pwd: frag.pwd! });
            return new Response(restartFrag(r), { status: 200, headers: { ...CORS, 'content-type': SDPFRAG, etag: etagOf(session) } });
          } catch (e) {
            mediaError(e);
          }
        },
      },
    ];
  };

  const routes: Route[] = [
    { method: 'OPTIONS', path: '/whip', handler: () => preflight('POST, OPTIONS', { 'accept-post': SDP }) },
    {
      method: 'POST',
      path: '/whip',
      maxBodyBytes: MAX_SDP_BYTES,
      doc: {
        tags: ['whip'],
        summary: 'Publish (WHIP, RFC 9725): SDP offer in, SDP answer out. A new POST for a live channel replaces its publisher.',
        auth: 'streamKey',
        request: { contentType: SDP, description: 'SDP offer (sendonly or sendrecv; at most one audio and one video track)' },
        responses: {
          '201': { description: 'SDP answer; Location is the session URL', contentType: SDP, headers: ['Location', 'ETag', 'Link'] },
          '400': err('Malformed SDP'),
          '401': err('Missing, wrong or rotated stream key'),
          '413': err('Offer too large'),
          '415': err('Not application/sdp'),
          '422': err('No acceptable track or codec in the offer'),
          '429': err('Too many attempts from this address or key'),
          '503': err('Media server not ready'),
        },
      },
      async handler(req, ctx) {
        limit(`ip:${ctx.remoteAddress}`);
        const offer = await readSdp(req);
        const key = bearerToken(req);
        if (!key) return withCors(errorResponse(401, 'unauthorized', 'Send the stream key as a Bearer token', WWW_AUTH));
        limit(`key:${key}`, perKey);
        const auth = await channels.authenticateStreamKey(key);
        if (!auth) return withCors(errorResponse(401, 'unauthorized', 'Unknown or rotated stream key', WWW_AUTH));
        try {
          const ingest = await media.publish(auth.streamId, offer);
          return created(ingest, `/whip/sessions/${ingest.id}`, iceServers);
        } catch (e) {
          mediaError(e);
        }
      },
    },
    ...sessionRoutes('whip'),
    { method: 'OPTIONS', path: '/whep/:streamId', handler: () => preflight('POST, HEAD, OPTIONS', { 'accept-post': SDP }) },
    {
      method: 'HEAD',
      path: '/whep/:streamId',
      doc: {
        tags: ['whep'],
        summary: 'Whether a POST would find the channel live (no body)',
        responses: { '200': { description: 'The channel is live' }, '404': { description: 'No such channel, or it is not live' } },
      },
      async handler(_req, ctx) {
        // the same answer a POST would give before it looks at the offer
        const stream = await channels.get(ctx.params.streamId!);
        const status = stream?.status === 'live' ? 200 : 404;
        return new Response(null, { status, headers: { ...CORS, 'content-type': SDP, 'accept-post': SDP } });
      },
    },
    {
      method: 'POST',
      path: '/whep/:streamId',
      maxBodyBytes: MAX_SDP_BYTES,
      doc: {
        tags: ['whep'],
        summary: 'Watch a live channel (WHEP): recvonly SDP offer in, sendonly answer out',
        request: { contentType: SDP, description: 'SDP offer (recvonly)' },
        responses: {
          '201': { description: 'SDP answer; Location is the session URL', contentType: SDP, headers: ['Location', 'ETag', 'Link'] },
          '400': err('Malformed SDP'),
          '404': err('No such channel, or it is not live'),
          '413': err('Offer too large'),
          '415': err('Not application/sdp'),
          '422': err('The player cannot receive the channel’s codecs'),
          '429': err('Too many attempts from this address'),
          '503': err('Media server not ready'),
        },
      },
      async handler(req, ctx) {
        limit(`ip:${ctx.remoteAddress}`);
        const offer = await readSdp(req);
        const stream = await channels.get(ctx.params.streamId!);
        if (!stream) throw new HttpError(404, 'not_found', 'No such channel');
        try {
          const viewer = await media.watch(stream.id, offer);
          return created(viewer, `/whep/sessions/${viewer.id}`, iceServers);
        } catch (e) {
          mediaError(e);
        }
      },
    },
    ...sessionRoutes('whep'),
  ];
  // Browsers can only read error bodies that carry CORS headers too.
  return routes.map((r) => ({
    ...r,
    async handler(req, ctx) {
      try {
        return withCors(await r.handler(req, ctx));
      } catch (e) {
        if (e instanceof HttpError) return withCors(errorResponse(e.status, e.code, e.message, e.headers));
        throw e;
      }
    },
  }));
}
