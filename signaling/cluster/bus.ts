/**
 * The cluster bus: events published by one node reach every node, the
 * publisher included (at once, in-process). Between nodes it is Postgres
 * LISTEN/NOTIFY on the shared database; a lone node uses the in-process part only.
 */
import type { Sql } from '@whipcast/db';
import type { Logger } from 'pino';
import { parseClusterMessage, type ClusterEvent, type ClusterMessage } from './events.ts';

export type ClusterHandler = (message: ClusterMessage) => void;

export interface ClusterBus {
  /** Delivers to this node's handlers now and to the other nodes' shortly. */
  publish(event: ClusterEvent): void;
  subscribe(handler: ClusterHandler): () => void;
  close(): Promise<void>;
}

/** NOTIFY payloads are limited to 8000 bytes by Postgres. */
const MAX_PAYLOAD_BYTES = 7900;
export const BUS_CHANNEL = 'whipcast_cluster';

function localDelivery(nodeId: string, logger: Logger) {
  const handlers = new Set<ClusterHandler>();
  return {
    deliver(message: ClusterMessage) {
      for (const h of handlers) {
        try {
          h(message);
        } catch (err) {
          logger.error({ err, type: message.t }, 'cluster event handler failed');
        }
      }
    },
    subscribe(handler: ClusterHandler) {
      handlers.add(handler);
      return () => void handlers.delete(handler);
    },
    stamp: (event: ClusterEvent): ClusterMessage => ({ ...event, from: nodeId }),
  };
}

export function localBus(nodeId: string, logger: Logger): ClusterBus {
  const local = localDelivery(nodeId, logger);
  return {
    publish: (event) => local.deliver(local.stamp(event)),
    subscribe: local.subscribe,
    close: async () => {},
  };
}

export async function postgresBus(sql: Sql, nodeId: string, logger: Logger): Promise<ClusterBus> {
  const local = localDelivery(nodeId, logger);
  const listener = await sql.listen(BUS_CHANNEL, (payload) => {
    const message = parseClusterMessage(payload);
    if (!message) return logger.warn({ payload: payload.slice(0, 200) }, 'ignored a malformed cluster message');
    if (message.from !== nodeId) local.deliver(message);
  });
  let closed = false;
  return {
    publish(event) {
      const message = local.stamp(event);
      local.deliver(message);
      if (closed) return;
      const payload = JSON.stringify(message);
      if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
        logger.error({ type: event.t, bytes: Buffer.byteLength(payload) }, 'cluster event too large for NOTIFY; not sent to other nodes');
        return;
      }
      sql.notify(BUS_CHANNEL, payload).catch((err: unknown) => logger.warn({ err, type: event.t }, 'cluster event not sent'));
    },
    subscribe: local.subscribe,
    async close() {
      closed = true;
      await listener.unlisten().catch(() => {});
    },
  };
}
