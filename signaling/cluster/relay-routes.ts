/**
 * Node-to-node media control, served by every clustered node: an edge asks a
 * channel's origin to pipe the channel to its PipeTransport, and tells it when
 * it no longer needs it. Authenticated with the credential derived from the
 * shared WHIPCAST_SECRET.
 */
import { SfuError, type PipeEndpoint, type RelayOffer, type Sfu } from '@whipcast/sfu';
import { RelayGrant, RelayRequest } from '../api.ts';
import { bearerToken, readJson } from '../http/body.ts';
import { HttpError, jsonResponse } from '../http/errors.ts';
import { err, JSON_BODY_ERRORS } from '../http/routes/docs.ts';
import type { Route } from '../http/types.ts';
import type { Cluster } from './node.ts';

/** What these routes need from the SFU (origin side): its channels and the relays they serve. */
export type RelaySource = Pick<Sfu, 'channel' | 'relays'>;

const NODE_UNAUTHORIZED = { '401': err('Missing or wrong node credential') };

export function relayRoutes(opts: { cluster: Cluster; media: RelaySource }): Route[] {
  const { cluster, media } = opts;
  const authorize = (req: Request) => {
    if (!cluster.authorizes(bearerToken(req))) throw new HttpError(401, 'unauthorized', 'Node credential required');
  };
  return [
    {
      method: 'GET',
      path: '/internal/relays',
      doc: {
        tags: ['cluster'],
        summary: 'Relays this node serves to other nodes (node-to-node, diagnostics)',
        auth: 'node',
        responses: { '200': { description: 'The relays', schema: 'RelayList' }, ...NODE_UNAUTHORIZED },
      },
      handler(req) {
        authorize(req);
        return jsonResponse({ relays: media.relays().map((r) => ({ id: r.id, streamId: r.channelId, peer: r.peer })) });
      },
    },
    {
      method: 'POST',
      path: '/internal/relays',
      doc: {
        tags: ['cluster'],
        summary: "Pipe a live channel to another node's PipeTransport (node-to-node)",
        auth: 'node',
        request: { contentType: 'application/json', schema: 'RelayRequest' },
        responses: {
          '201': { description: 'Relay started', schema: 'RelayGrant' },
          ...JSON_BODY_ERRORS,
          ...NODE_UNAUTHORIZED,
          '404': err('The channel is not live on this node'),
        },
      },
      async handler(req) {
        authorize(req);
        const body = await readJson(req, RelayRequest);
        try {
          const channel = media.channel(body.streamId);
          if (!channel) throw new SfuError('stream_offline', 'The stream is not live on this node');
          const relay = await channel.serveRelay(body.node, body.endpoint);
          return jsonResponse({ id: relay.id, offer: relay.offer }, 201);
        } catch (e) {
          if (e instanceof SfuError) throw new HttpError(404, 'stream_offline', e.message);
          throw e;
        }
      },
    },
    {
      method: 'DELETE',
      path: '/internal/relays/:relayId',
      doc: {
        tags: ['cluster'],
        summary: 'Stop a relay (node-to-node)',
        auth: 'node',
        responses: { '204': { description: 'Stopped' }, ...NODE_UNAUTHORIZED, '404': err('No such relay') },
      },
      handler(req, ctx) {
        authorize(req);
        const relay = media.relays().find((r) => r.id === ctx.params.relayId);
        if (!relay) throw new HttpError(404, 'not_found', 'No such relay');
        relay.close();
        return new Response(null, { status: 204 });
      },
    },
  ];
}

/** Asks `originUrl` for a relay of a channel to this node's pipe end. */
export async function requestRelay(
  originUrl: string,
  token: string,
  body: { streamId: string; node: string; endpoint: PipeEndpoint },
): Promise<{ id: string; offer: RelayOffer }> {
  const res = await fetch(`${originUrl}/internal/relays`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (res.status === 404) throw new SfuError('stream_offline', 'The stream is not live on its origin node');
  if (res.status !== 201) throw new SfuError('unavailable', `The origin node refused the relay: ${res.status} ${text.slice(0, 200)}`);
  return RelayGrant.parse(JSON.parse(text));
}

export async function releaseRelay(originUrl: string, token: string, id: string): Promise<void> {
  await fetch(`${originUrl}/internal/relays/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  }).catch(() => {});
}
