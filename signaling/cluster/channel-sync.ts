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
  onStatus(channelId: string, live: boolean, reason: string): void;
}

export interface ChannelSync {
  /** On an edge: makes sure the channel is pulled from its origin (and live here) when it is live anywhere. */
  ensure(channelId: string): Promise<void>;
  /** This node took the channel's WHIP publisher. */
  claimed(channelId: string): Promise<void>;
  /** Ends the channel's publisher on whichever node has it. */
  kick(channelId: string, reason: string): void;
  /** Settles pending status writes. */
  close(): Promise<void>;
}

const LIVE_WAIT_MS = 5000;

export function createChannelSync(opts: ChannelSyncOptions): ChannelSync {
  const { sfu, cluster, db, logger: log } = opts;
  const { bus } = cluster;
  const ingestSource = (channelId: string) => sfu.channel(channelId)?.ingest?.source ?? null;
  const isLive = (channelId: string) => sfu.channel(channelId)?.live ?? false;
  const viewerCount = (channelId: string) => sfu.channel(channelId)?.viewerCount ?? 0;
  const endIngest = (channelId: string, reason: string) => sfu.channel(channelId)?.endIngest(reason);

  // Status writes for one channel happen in event order.
  const queues = new Map<string, Promise<void>>();
  const enqueue = (channelId: string, step: () => Promise<void>): Promise<void> => {
    const next = (queues.get(channelId) ?? Promise.resolve())
      .then(step)
      .catch((err: unknown) => log.error({ err, channelId }, 'channel status update failed'));
    queues.set(channelId, next);
    void next.finally(() => queues.get(channelId) === next && queues.delete(channelId));
    return next;
  };

  sfu.on('live', ({ id: channelId }, source) => {
    if (source !== 'publisher') return; // an edge: the origin announces it
    enqueue(channelId, async () => {
      await db.streams.setLive(channelId);
      bus.publish({ t: 'status', streamId: channelId, live: true });
    });
  });
  sfu.on('offline', ({ id: channelId }, reason, source) => {
    if (source === 'relay') return repullIfWatched(channelId);
    enqueue(channelId, async () => {
      // false: another node took the channel over meanwhile, it is not offline
      if (await cluster.releaseOrigin(channelId)) bus.publish({ t: 'status', streamId: channelId, live: false, reason });
    });
  });
  sfu.on('reconsume', ({ id: channelId }) => {
    // the program tracks were re-made: relays to other nodes carried the old ones
    if (ingestSource(channelId) === 'publisher') bus.publish({ t: 'origin', streamId: channelId, node: cluster.nodeId });
  });

  // ---- edge: pulling channels from their origin ----
  const pulls = new Map<string, Promise<void>>();
  /** Channels whose origin moved while a pull was under way: pull again once it ends. */
  const again = new Set<string>();
  let closed = false;

  async function waitLive(channelId: string): Promise<void> {
    const until = Date.now() + LIVE_WAIT_MS;
    while (!isLive(channelId) && ingestSource(channelId) === 'relay' && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  }

  /** (Re)makes the relay of a channel from its current origin; replaces whatever feeds it here. `fresh`: the origin just moved. */
  function pull(channelId: string, opts: { fresh?: boolean } = {}): Promise<void> {
    let pending = pulls.get(channelId);
    if (pending) {
      if (opts.fresh) again.add(channelId);
      return pending;
    }
    pending = (async () => {
      const origin = await cluster.originOf(channelId);
      if (!origin) return;
      let relayId: string | undefined;
      const release = () => relayId && void releaseRelay(origin.url, cluster.token, relayId);
      const channel = await sfu.openChannel(channelId);
      const ingest = await channel
        .pull(async (local) => {
          const grant = await requestRelay(origin.url, cluster.token, { streamId: channelId, node: cluster.nodeId, endpoint: local });
          relayId = grant.id;
          return grant.offer;
        })
        .catch((err: unknown) => {
          release();
          throw err;
        });
      // the relay ended here: the origin stops sending
      ingest.once('close', release);
      log.info({ channelId, origin: origin.id }, 'pulling channel from its origin node');
      await waitLive(channelId);
    })()
      .catch((err: unknown) => {
        if (!(err instanceof SfuError && err.code === 'stream_offline'))
          log.warn({ err, channelId }, 'could not pull channel from its origin');
      })
      .finally(() => {
        pulls.delete(channelId);
        if (again.delete(channelId) && !closed) void pull(channelId);
      });
    pulls.set(channelId, pending);
    return pending;
  }

  /**
   * A relay ended here (no media from the origin for PUBLISHER_TIMEOUT_MS, the
   * origin's router gone…) while viewers still watch: if the channel is still
   * live on its origin, pull it again; they carry on with the same tracks.
   */
  function repullIfWatched(channelId: string): void {
    const timer = setTimeout(() => {
      if (closed || ingestSource(channelId) !== null || viewerCount(channelId) === 0) return;
      log.info({ channelId }, 'relay ended while viewers watch: pulling again if the channel is live on its origin');
      void pull(channelId);
    }, 1000);
    timer.unref();
  }

  async function ensure(channelId: string): Promise<void> {
    if (!cluster.clustered) return;
    const source = ingestSource(channelId);
    if (source === 'publisher') return;
    if (source === 'relay') return waitLive(channelId);
    await pull(channelId);
  }

  // relays nobody here watches end after the linger time
  const idleSince = new Map<string, number>();
  const idleTimer = setInterval(
    () => {
      const now = Date.now();
      for (const channelId of [...idleSince.keys()]) if (ingestSource(channelId) !== 'relay') idleSince.delete(channelId);
      for (const { id: channelId } of sfu.liveChannels()) {
        if (ingestSource(channelId) !== 'relay' || viewerCount(channelId) > 0) {
          idleSince.delete(channelId);
          continue;
        }
        const since = idleSince.get(channelId) ?? now;
        idleSince.set(channelId, since);
        if (now - since >= opts.relayLingerMs) {
          idleSince.delete(channelId);
          endIngest(channelId, 'no viewers left on this node');
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
          for (const { id: channelId } of sfu.liveChannels()) {
            if (ingestSource(channelId) !== 'publisher') continue;
            void enqueue(channelId, async () => {
              await cluster.claimOrigin(channelId);
              await db.streams.setLive(channelId);
              bus.publish({ t: 'origin', streamId: channelId, node: cluster.nodeId });
              bus.publish({ t: 'status', streamId: channelId, live: true });
            });
          }
        }
        break;
    }
  });

  return {
    ensure,
    async claimed(channelId) {
      await enqueue(channelId, () => cluster.claimOrigin(channelId));
      bus.publish({ t: 'origin', streamId: channelId, node: cluster.nodeId });
    },
    kick: (channelId, reason) => bus.publish({ t: 'kick', streamId: channelId, reason }),
    async close() {
      closed = true;
      unsubscribe();
      clearInterval(idleTimer);
      await Promise.allSettled([...queues.values(), ...pulls.values()]);
    },
  };
}
