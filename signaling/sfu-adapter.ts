/**
 * Wires the SFU into the server: builds it from the config, turns its
 * lifecycle events into channel status in the database (and, through
 * `events`, pushes to sockets), and exposes the WHIP/WHEP routes.
 */
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveWorkerBin, Sfu } from '@whipcast/sfu';
import { defaultWorkerCount, detectAnnouncedAddress } from './config.ts';
import { whipRoutes } from './http/routes/whip.ts';
import type { MediaLayer, MediaEvents, ViewerRtc } from './media.ts';
import type { MediaDeps } from './server.ts';

export async function createSfuMedia(deps: MediaDeps): Promise<MediaLayer & { sfu: Sfu }> {
  const { config, logger, db, channels, metrics } = deps;
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
  metrics.gauge('whipcast_live_channels', 'Channels with a live publisher', () => sfu.liveStreams().length);
  metrics.gauge('whipcast_viewers', 'Viewers with a media session, all channels', () =>
    sfu.liveStreams().reduce((n, id) => n + sfu.viewerCount(id), 0),
  );
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
  // Status writes for one channel happen in event order.
  const queues = new Map<string, Promise<void>>();
  const enqueue = (streamId: string, step: () => Promise<void>) => {
    const next = (queues.get(streamId) ?? Promise.resolve())
      .then(step)
      .catch((err: unknown) => log.error({ err, streamId }, 'channel status update failed'));
    queues.set(streamId, next);
    void next.finally(() => queues.get(streamId) === next && queues.delete(streamId));
  };
  sfu.on('live', (streamId) => {
    enqueue(streamId, async () => {
      await db.streams.setLive(streamId);
      events.emit('live', streamId);
    });
  });
  sfu.on('offline', (streamId, reason) => {
    enqueue(streamId, async () => {
      await db.streams.setOffline(streamId);
      events.emit('offline', streamId, reason);
    });
  });
  sfu.on('viewers', (streamId, count) => events.emit('viewers', streamId, count));
  sfu.on('reconsume', (streamId) => events.emit('reconsume', streamId));
  sfu.on('dvr', (transportId) => events.emit('dvrSwitch', transportId));
  sfu.on('transportClosed', (transportId, reason) => events.emit('transportClosed', transportId, reason));

  return {
    sfu,
    events,
    viewerRtc: sfu as unknown as ViewerRtc,
    ready: () => sfu.ready(),
    viewerCount: (id) => sfu.viewerCount(id),
    endPublisher: (id, reason) => void sfu.endPublisher(id, reason),
    routes: () => whipRoutes({ media: sfu, channels, iceServers: config.iceServers, ratePerMinute: config.whipRateLimitPerMinute }),
    async close() {
      await sfu.close();
      await Promise.allSettled([...queues.values()]);
    },
  };
}
