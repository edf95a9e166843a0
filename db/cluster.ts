import type { Sql } from './connect.ts';

export interface NodeRecord {
  id: string;
  url: string;
}

/**
 * The node registry and the channel → origin table. Times are the database's
 * (`now()`), so node clocks need not agree. A node is alive while its
 * heartbeat is younger than the expiry the caller passes.
 */
export function clusterQueries(sql: Sql) {
  return {
    async heartbeat(node: NodeRecord): Promise<void> {
      await sql`
        INSERT INTO nodes (id, url) VALUES (${node.id}, ${node.url})
        ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, heartbeat_at = now()`;
    },

    async aliveNodes(expirySeconds: number): Promise<NodeRecord[]> {
      return sql<NodeRecord[]>`
        SELECT id, url FROM nodes WHERE heartbeat_at > now() - make_interval(secs => ${expirySeconds}) ORDER BY id`;
    },

    /**
     * Removes nodes whose heartbeat expired, and any node in `also` (a node
     * leaving); their channels go offline. Exactly one caller gets each lost
     * node and channel back, so it alone announces them.
     */
    async expire(expirySeconds: number, also: string[] = []): Promise<{ nodes: string[]; streams: string[] }> {
      return sql.begin(async (tx) => {
        const dead = await tx<{ id: string }[]>`
          DELETE FROM nodes WHERE heartbeat_at <= now() - make_interval(secs => ${expirySeconds}) OR id = ANY(${also})
          RETURNING id`;
        const ids = dead.map((d) => d.id);
        // channels of lost nodes, and any channel left live without an origin (a node that left mid-write)
        const offline = await tx<{ id: string }[]>`
          UPDATE streams SET status = 'offline', ended_at = now(), updated_at = now()
          WHERE status = 'live' AND (
            id IN (SELECT stream_id FROM channel_origins WHERE node_id = ANY(${ids}))
            OR NOT EXISTS (SELECT 1 FROM channel_origins o WHERE o.stream_id = streams.id))
          RETURNING id`;
        await tx`DELETE FROM channel_origins WHERE node_id = ANY(${ids})`;
        return { nodes: ids, streams: offline.map((s) => s.id) };
      });
    },

    /** This node now holds the channel's publisher (a publisher on another node is displaced). */
    async claimOrigin(streamId: string, nodeId: string): Promise<void> {
      await sql`
        INSERT INTO channel_origins (stream_id, node_id) VALUES (${streamId}, ${nodeId})
        ON CONFLICT (stream_id) DO UPDATE SET node_id = EXCLUDED.node_id, since = now()`;
    },

    /**
     * The channel's publisher on this node ended: the channel goes offline,
     * unless another node took it over meanwhile. True when it went offline.
     */
    async releaseOrigin(streamId: string, nodeId: string): Promise<boolean> {
      const rows = await sql`
        WITH released AS (
          DELETE FROM channel_origins WHERE stream_id = ${streamId} AND node_id = ${nodeId} RETURNING stream_id)
        UPDATE streams SET status = 'offline', ended_at = now(), updated_at = now()
        WHERE id IN (SELECT stream_id FROM released) AND status = 'live'
        RETURNING id`;
      return rows.length > 0;
    },

    /** The alive node holding the channel's publisher, if any. */
    async originOf(streamId: string, expirySeconds: number): Promise<NodeRecord | null> {
      const [row] = await sql<NodeRecord[]>`
        SELECT n.id, n.url FROM channel_origins o JOIN nodes n ON n.id = o.node_id
        WHERE o.stream_id = ${streamId} AND n.heartbeat_at > now() - make_interval(secs => ${expirySeconds})`;
      return row ?? null;
    },
  };
}
