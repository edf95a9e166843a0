/**
 * Keeps channels consistent across nodes (and with the database):
 *
 * - the origin (node with the WHIP publisher) writes the channel's status and
 *   announces it on the bus; every node turns bus status into pushes;
 * - an edge (any other node) asked for a channel by a viewer pulls it from
 *   the origin over a PipeTransport, re-pulls when the origin moves or its
 *   tracks change, ends the relay when the origin goes offline or no viewer
 *   here has watched for a while;
 * - a node displaced as origin (OBS re-homed the channel) hands its viewers
 *   over to a relay from the new origin;
 * - key rotation ends the publisher wherever it is.
 */
import type { Database } from '@whipcast/db';
import { SfuError, type Sfu } from '@whipcast/sfu';
import type { Logger } from 'pino';
import type { ClusterMessage } from './events.ts';
import type { Cluster } from './node.ts';
import { releaseRelay, requestRelay } from './relay-routes.ts';

/** What this module needs from the SFU. */
export type SyncedSfu = Pick<Sfu, 'on' | 'channel' | 'openChannel' | 'liveChannels' | 'closeRelaysTo'>;

export interface ChannelSyncOptions {
  sfu: SyncedSfu;
  cluster: Cluster;
  db: Database;
  logger: Logger;
  /** An edge ends a relay nobody here has watched for this long. */
  relayLingerMs: number;
  /** The channel's status changed (from any node), after the database has it. */
  onStatus(streamId: string, live: boolean, reason: string): void;
}

export interface ChannelSync {
  /** On an edge: makes sure the channel is pulled from its origin (and live here) when it is live anywhere. */
  ensure(streamId: string): Promise<void>;
  /** This node took the channel's WHIP publisher. */
  claimed(streamId: string): Promise<void>;
  /** Ends the channel's publisher on whichever node has it. */
  kick(streamId: string, reason: string): void;
  /** Settles pending status writes. */
  close(): Promise<void>;
}

const LIVE_WAIT_MS = 5000;

export function createChannelSync(opts: ChannelSyncOptions): ChannelSync {
  const { sfu, cluster, db, logger: log } = opts;
  const { bus } = cluster;
  const ingestSource = (streamId: string) => sfu.channel(streamId)?.ingest?.source ?? null;
  const isLive = (streamId: string) => sfu.channel(streamId)?.live ?? false;
  const viewerCount = (streamId: string) => sfu.channel(streamId)?.viewerCount ?? 0;
  const endIngest = (streamId: string, reason: string) => sfu.channel(streamId)?.endIngest(reason);

  // Status writes for one channel happen in event order.
  const queues = new Map<string, Promise<void>>();
  const enqueue = (streamId: string, step: () => Promise<void>): Promise<void> => {
    const next = (queues.get(streamId) ?? Promise.resolve())
      .then(step)
      .catch((err: unknown) => log.error({ err, streamId }, 'channel status update failed'));
    queues.set(streamId, next);
    void next.finally(() => queues.get(streamId) === next && queues.delete(streamId));
    return next;
  };

  sfu.on('live', ({ id: streamId }, source) => {
    if (source !== 'publisher') return; // an edge: the origin announces it
    enqueue(streamId, async () => {
      await db.streams.setLive(streamId);
      bus.publish({ t: 'status', streamId, live: true });
    });
  });
  sfu.on('offline', ({ id: streamId }, reason, source) => {
    if (source === 'relay') return repullIfWatched(streamId);
    enqueue(streamId, async () => {
      // false: another node took the channel over meanwhile, it is not offline
      if (await cluster.releaseOrigin(streamId)) bus.publish({ t: 'status', streamId, live: false, reason });
    });
  });
  sfu.on('reconsume', ({ id: streamId }) => {
    // the program tracks were re-made: relays to other nodes carried the old ones
    if (ingestSource(streamId) === 'publisher') bus.publish({ t: 'origin', streamId, node: cluster.nodeId });
  });

  // ---- edge: pulling channels from their origin ----
  const pulls = new Map<string, Promise<void>>();
  /** Channels whose origin moved while a pull was under way: pull again once it ends. */
  const again = new Set<string>();
  let closed = false;

  async function waitLive(streamId: string): Promise<void> {
    const until = Date.now() + LIVE_WAIT_MS;
    while (!isLive(streamId) && ingestSource(streamId) === 'relay' && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  }

  /** (Re)makes the relay of a channel from its current origin; replaces whatever feeds it here. `fresh`: the origin just moved. */
  function pull(streamId: string, opts: { fresh?: boolean } = {}): Promise<void> {
    let pending = pulls.get(streamId);
    if (pending) {
      if (opts.fresh) again.add(streamId);
      return pending;
    }
    pending = (async () => {
      const origin = await cluster.originOf(streamId);
      if (!origin) return;
      let relayId: string | undefined;
      const release = () => relayId && void releaseRelay(origin.url, cluster.token, relayId);
      const channel = await sfu.openChannel(streamId);
      const ingest = await channel
        .pull(async (local) => {
          const grant = await requestRelay(origin.url, cluster.token, { streamId, node: cluster.nodeId, endpoint: local });
          relayId = grant.id;
          return grant.offer;
        })
        .catch((err: unknown) => {
          release();
          throw err;
        });
      // the relay ended here: the origin stops sending
      ingest.once('close', release);
      log.info({ streamId, origin: origin.id }, 'pulling channel from its origin node');
      await waitLive(streamId);
    })()
      .catch((err: unknown) => {
        if (!(err instanceof SfuError && err.code === 'stream_offline'))
          log.warn({ err, streamId }, 'could not pull channel from its origin');
      })
      .finally(() => {
        pulls.delete(streamId);
        if (again.delete(streamId) && !closed) void pull(streamId);
      });
    pulls.set(streamId, pending);
    return pending;
  }

  /**
   * A relay ended here (no media from the origin for PUBLISHER_TIMEOUT_MS, the
   * origin's router gone…) while viewers still watch: if the channel is still
   * live on its origin, pull it again; they carry on with the same tracks.
   */
  function repullIfWatched(streamId: string): void {
    const timer = setTimeout(() => {
      if (closed || ingestSource(streamId) !== null || viewerCount(streamId) === 0) return;
      log.info({ streamId }, 'relay ended while viewers watch: pulling again if the channel is live on its origin');
      void pull(streamId);
    }, 1000);
    timer.unref();
  }

  async function ensure(streamId: string): Promise<void> {
    if (!cluster.clustered) return;
    const source = ingestSource(streamId);
    if (source === 'publisher') return;
    if (source === 'relay') return waitLive(streamId);
    await pull(streamId);
  }

  // relays nobody here watches end after the linger time
  const idleSince = new Map<string, number>();
  const idleTimer = setInterval(
    () => {
      const now = Date.now();
      for (const streamId of [...idleSince.keys()]) if (ingestSource(streamId) !== 'relay') idleSince.delete(streamId);
      for (const { id: streamId } of sfu.liveChannels()) {
        if (ingestSource(streamId) !== 'relay' || viewerCount(streamId) > 0) {
          idleSince.delete(streamId);
          continue;
        }
        const since = idleSince.get(streamId) ?? now;
        idleSince.set(streamId, since);
        if (now - since >= opts.relayLingerMs) {
          idleSince.delete(streamId);
          endIngest(streamId, 'no viewers left on this node');
        }
      }
    },
    Math.max(250, Math.min(5000, opts.relayLingerMs / 2)),
  );
  idleTimer.unref();

  const unsubscribe = bus.subscribe((m: ClusterMessage) => {
    switch (m.t) {
      case 'status':
        // the origin went offline (or was lost): the relay from it is over
        if (!m.live && ingestSource(m.streamId) === 'relay') endIngest(m.streamId, m.reason ?? 'origin went offline');
        opts.onStatus(m.streamId, m.live, m.reason ?? (m.live ? 'live' : 'offline'));
        break;
      case 'origin': {
        if (m.node === cluster.nodeId) break;
        const source = ingestSource(m.streamId);
        if (source === 'relay') void pull(m.streamId, { fresh: true });
        else if (source === 'publisher') {
          // OBS moved to another node: our viewers follow it there through a relay, or the session just ends
          if (viewerCount(m.streamId) > 0) void pull(m.streamId, { fresh: true });
          else endIngest(m.streamId, 'channel moved to another node');
        }
        break;
      }
      case 'kick':
        if (ingestSource(m.streamId) === 'publisher') endIngest(m.streamId, m.reason);
        break;
      case 'nodeLost':
        if (m.node !== cluster.nodeId) {
          const n = sfu.closeRelaysTo(m.node);
          if (n) log.info({ node: m.node, relays: n }, 'stopped relays to a lost node');
        } else {
          // we were expired (stalled heartbeats) yet still run: take our live channels back
          // (a node that leaves stops listening before it announces itself lost)
          for (const { id: streamId } of sfu.liveChannels()) {
            if (ingestSource(streamId) !== 'publisher') continue;
            void enqueue(streamId, async () => {
              await cluster.claimOrigin(streamId);
              await db.streams.setLive(streamId);
              bus.publish({ t: 'origin', streamId, node: cluster.nodeId });
              bus.publish({ t: 'status', streamId, live: true });
            });
          }
        }
        break;
    }
  });

  return {
    ensure,
    async claimed(streamId) {
      await enqueue(streamId, () => cluster.claimOrigin(streamId));
      bus.publish({ t: 'origin', streamId, node: cluster.nodeId });
    },
    kick: (streamId, reason) => bus.publish({ t: 'kick', streamId, reason }),
    async close() {
      closed = true;
      unsubscribe();
      clearInterval(idleTimer);
      await Promise.allSettled([...queues.values(), ...pulls.values()]);
    },
  };
}
