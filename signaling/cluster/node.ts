/**
 * This node's membership in a cluster of whipcast nodes sharing one Postgres:
 * heartbeats in the node registry, expiry of lost nodes (any node may notice;
 * the database makes sure one announces it), and which node is each channel's
 * origin. A lone node (no NODE_URL) is a cluster of one with an in-process bus.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database, NodeRecord } from '@whipcast/db';
import type { Logger } from 'pino';
import { localBus, postgresBus, type ClusterBus } from './bus.ts';

export interface ClusterOptions {
  db: Database;
  logger: Logger;
  secret: string;
  /** This node's base URL for the other nodes; unset = not clustered. */
  nodeUrl?: string | undefined;
  nodeId?: string | undefined;
  heartbeatSeconds: number;
  expirySeconds: number;
}

export interface Cluster {
  readonly nodeId: string;
  readonly clustered: boolean;
  readonly bus: ClusterBus;
  /** True when a request carries the node-to-node credential. */
  authorizes(token: string | null): boolean;
  /** The credential this node presents to the others. */
  readonly token: string;
  /** This node holds the channel's publisher now. */
  claimOrigin(channelId: string): Promise<void>;
  /** The publisher here ended: offline in the database unless another node took the channel. True when it went offline. */
  releaseOrigin(channelId: string): Promise<boolean>;
  /** The other alive node holding the channel's publisher, if any. */
  originOf(channelId: string): Promise<NodeRecord | null>;
  aliveNodes(): Promise<NodeRecord[]>;
  /** Leaves the registry (its channels go offline) and stops listening. */
  close(): Promise<void>;
}

/** The bearer credential nodes use with each other: derived from the shared WHIPCAST_SECRET. */
export function nodeToken(secret: string): string {
  return createHmac('sha256', secret).update('whipcast node-to-node v1').digest('base64url');
}

export async function joinCluster(opts: ClusterOptions): Promise<Cluster> {
  const { db, logger } = opts;
  const nodeId = opts.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const token = nodeToken(opts.secret);
  const expected = Buffer.from(token);
  const authorizes = (given: string | null) => {
    const b = Buffer.from(given ?? '');
    return b.length === expected.length && timingSafeEqual(b, expected);
  };

  if (!opts.nodeUrl) {
    return {
      nodeId,
      clustered: false,
      bus: localBus(nodeId, logger),
      token,
      authorizes,
      claimOrigin: async () => {},
      releaseOrigin: async (channelId) => (await db.streams.setOffline(channelId), true),
      originOf: async () => null,
      aliveNodes: async () => [],
      close: async () => {},
    };
  }

  const self: NodeRecord = { id: nodeId, url: opts.nodeUrl.replace(/\/+$/, '') };
  const bus = await postgresBus(db.sql, nodeId, logger);
  const announceLost = (lost: { nodes: string[]; streams: string[] }) => {
    for (const node of lost.nodes) {
      if (node === nodeId) logger.info({ node }, 'this node left the cluster');
      else logger.warn({ node }, 'node lost: its heartbeat expired');
      bus.publish({ t: 'nodeLost', node });
    }
    for (const channelId of lost.streams) bus.publish({ t: 'status', streamId: channelId, live: false, reason: 'origin node lost' });
  };

  await db.cluster.heartbeat(self);
  // Channels left live by nodes that are gone (this one's previous run included).
  announceLost(await db.cluster.expire(opts.expirySeconds));
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = (async () => {
      try {
        await db.cluster.heartbeat(self);
        announceLost(await db.cluster.expire(opts.expirySeconds));
      } catch (err) {
        logger.warn({ err }, 'cluster heartbeat failed');
      }
    })();
  }, opts.heartbeatSeconds * 1000);
  timer.unref();
  logger.info({ node: nodeId, url: self.url }, 'joined the cluster');

  return {
    nodeId,
    clustered: true,
    bus,
    token,
    authorizes,
    claimOrigin: (channelId) => db.cluster.claimOrigin(channelId, nodeId),
    releaseOrigin: (channelId) => db.cluster.releaseOrigin(channelId, nodeId),
    async originOf(channelId) {
      const origin = await db.cluster.originOf(channelId, opts.expirySeconds);
      return origin && origin.id !== nodeId ? origin : null;
    },
    aliveNodes: () => db.cluster.aliveNodes(opts.expirySeconds),
    async close() {
      clearInterval(timer);
      await beating;
      try {
        announceLost(await db.cluster.expire(opts.expirySeconds, [nodeId]));
      } catch (err) {
        logger.warn({ err }, 'could not leave the cluster registry');
      }
      await bus.close();
    },
  };
}
