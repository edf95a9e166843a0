/**
 * Wires the SFU into the server: builds it from the config, keeps channel
 * status in the database and across nodes (`cluster/channel-sync.ts`), turns
 * it into events for the sockets, and exposes the WHIP/WHEP and relay routes.
 */
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveWorkerBin, Sfu } from '@whipcast/sfu';
import { createChannelSync } from './cluster/channel-sync.ts';
import { relayRoutes } from './cluster/relay-routes.ts';
import { defaultWorkerCount, detectAnnouncedAddress } from './config.ts';
import { whipRoutes, type WhipMedia } from './http/routes/whip.ts';
import type { MediaLayer, MediaEvents, ViewerRtc } from './media.ts';
import type { MediaDeps } from './server.ts';

export async function createSfuMedia(deps: MediaDeps): Promise<MediaLayer & { sfu: Sfu }> {
  const { config, logger, db, channels, metrics, cluster } = deps;
  const log = logger.child({ component: 'sfu' });
  const loopbackOnly = config.rtcListenIp === '127.0.0.1' || config.rtcListenIp === '::1';
  const sfu = await Sfu.create({
    workerBin: resolveWorkerBin({
      ...process.env,
      ...(config.mediasoupWorkerBin ? { MEDIASOUP_WORKER_BIN: config.mediasoupWorkerBin } : {}),
    }),
    numWorkers: defaultWorkerCount(config),
    listenIp: config.rtcListenIp,
    announcedAddress: config.rtcAnnouncedAddress ?? (loopbackOnly ? undefined : detectAnnouncedAddress()),
    relayAddress: config.relayAnnouncedAddress ?? (loopbackOnly ? config.rtcListenIp : detectAnnouncedAddress()),
    port: config.rtcPort,
    publisherTimeoutMs: config.publisherTimeoutMs,
    dvrWindowMs: config.dvrWindowSeconds * 1000,
    dvrMaxBytes: config.dvrMemoryBudgetMb * 1024 * 1024,
    routerMaxViewers: config.routerMaxViewers,
    ...(config.dvrSpillDir === 'off'
      ? {}
      : { dvrSpillDir: config.dvrSpillDir === 'tmp' ? join(tmpdir(), 'whipcast-dvr') : config.dvrSpillDir }),
    logger: log,
  });
  metrics.gauge('whipcast_live_channels', 'Channels live on this node (own publisher or relay)', () => sfu.liveStreams().length);
  metrics.gauge('whipcast_viewers', 'Viewers with a media session on this node, all channels', () =>
    sfu.liveStreams().reduce((n, id) => n + sfu.viewerCount(id), 0),
  );
  metrics.gauge('whipcast_relays_out', 'Channels this node pipes to other nodes (one per channel and edge)', () => sfu.relays().length);
  metrics.gauge(
    'whipcast_worker_viewers',
    'Viewers placed on each mediasoup worker, all channels',
    () => {
      const byWorker: Record<string, number> = {};
      for (const w of sfu.pool.workers) byWorker[String(w.index)] = 0;
      for (const id of sfu.liveStreams())
        for (const p of sfu.placement(id)) byWorker[String(p.worker)] = (byWorker[String(p.worker)] ?? 0) + p.viewers;
      return byWorker;
    },
    'worker',
  );
  metrics.gauge('whipcast_media_workers_alive', 'Running mediasoup workers', () => sfu.pool.workers.filter((w) => !w.worker.closed).length);

  const events = new EventEmitter<MediaEvents>();
  const sync = createChannelSync({
    sfu,
    cluster,
    db,
    logger: log,
    relayLingerMs: config.relayLingerSeconds * 1000,
    onStatus: (streamId, live, reason) => (live ? events.emit('live', streamId) : events.emit('offline', streamId, reason)),
  });
  sfu.on('viewers', (streamId, count) => events.emit('viewers', streamId, count));
  sfu.on('reconsume', (streamId) => events.emit('reconsume', streamId));
  sfu.on('dvr', (transportId) => events.emit('dvrSwitch', transportId));
  sfu.on('transportClosed', (transportId, reason) => events.emit('transportClosed', transportId, reason));

  /** The channel a socket viewer's transport belongs to (to pull it first on an edge). */
  const ensureFor = async (transportId: string) => {
    const streamId = sfu.viewerStream(transportId);
    if (streamId) await sync.ensure(streamId);
  };
  const viewerRtc: ViewerRtc = {
    capabilities: async (streamId) => (await sync.ensure(streamId), sfu.capabilities(streamId)),
    createViewerTransport: (streamId) => sfu.createViewerTransport(streamId),
    connectViewerTransport: (id, dtls) => sfu.connectViewerTransport(id, dtls),
    consume: async (id, caps) => (await ensureFor(id), sfu.consume(id, caps)),
    resumeConsumer: (id, consumerId) => sfu.resumeConsumer(id, consumerId),
    pauseConsumer: (id, consumerId) => sfu.pauseConsumer(id, consumerId),
    restartViewerIce: (id) => sfu.restartViewerIce(id),
    closeViewerTransport: (id) => sfu.closeViewerTransport(id),
    dvrSeek: (id, target) => sfu.dvrSeek(id, target),
    dvrLive: async (id) => (await ensureFor(id), sfu.dvrLive(id)),
    dvrPause: (id) => sfu.dvrPause(id),
    dvrResume: (id) => sfu.dvrResume(id),
    dvrPosition: (id) => sfu.dvrPosition(id),
  };
  const whip: WhipMedia = {
    async publish(streamId, offer) {
      const answer = await sfu.publish(streamId, offer);
      await sync.claimed(streamId);
      return answer;
    },
    unpublish: (id) => sfu.unpublish(id),
    watch: async (streamId, offer) => (await sync.ensure(streamId), sfu.watch(streamId, offer)),
    stopWatching: (id) => sfu.stopWatching(id),
    etagOf: (id) => sfu.etagOf(id),
    sessionStream: (id) => sfu.sessionStream(id),
    restartIce: (id, remote) => sfu.restartIce(id, remote),
  };

  return {
    sfu,
    events,
    viewerRtc,
    ready: () => sfu.ready(),
    endPublisher: (id, reason) => sync.kick(id, reason),
    routes: () => [
      ...whipRoutes({ media: whip, channels, iceServers: config.iceServers, ratePerMinute: config.whipRateLimitPerMinute }),
      ...(cluster.clustered ? relayRoutes({ cluster, media: sfu }) : []),
    ],
    async close() {
      await sfu.close();
      await sync.close();
    },
  };
}
