/**
 * Wires the SFU into the server: builds it from the config, keeps channel
 * status in the database and across nodes (`cluster/channel-sync.ts`), turns
 * it into events for the sockets, and exposes the WHIP/WHEP and relay routes.
 */
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOffer, resolveWorkerAllocator, resolveWorkerBin, Sfu, SfuError, type Channel } from '@whipcast/sfu';
import { createChannelSync } from './cluster/channel-sync.ts';
import { relayRoutes } from './cluster/relay-routes.ts';
import { defaultWorkerCount, detectAnnouncedAddress } from './config.ts';
import { MediaMetrics } from './media-metrics.ts';
import { whipRoutes, type WhipMedia } from './http/routes/whip.ts';
import type { MediaDeps, MediaLayer, MediaEvents, ProgramSource, ProgramSources, SocketMedia } from './media.ts';

export async function createSfuMedia(deps: MediaDeps): Promise<MediaLayer & { sfu: Sfu }> {
  const { config, logger, db, channels, metrics, cluster, recordings } = deps;
  const log = logger.child({ component: 'sfu' });
  const loopbackOnly = config.rtcListenIp === '127.0.0.1' || config.rtcListenIp === '::1';
  const sfu = await Sfu.create({
    workerBin: resolveWorkerBin({
      ...process.env,
      ...(config.mediasoupWorkerBin ? { MEDIASOUP_WORKER_BIN: config.mediasoupWorkerBin } : {}),
    }),
    numWorkers: defaultWorkerCount(config),
    allocator: resolveWorkerAllocator(config.workerAllocator),
    listenIp: config.rtcListenIp,
    announcedAddress: config.rtcAnnouncedAddress ?? (loopbackOnly ? undefined : detectAnnouncedAddress()),
    relayAddress: config.relayAnnouncedAddress ?? (loopbackOnly ? config.rtcListenIp : detectAnnouncedAddress()),
    port: config.rtcPort,
    udpBufferBytes: config.rtcUdpBufferBytes,
    publisherTimeoutMs: config.publisherTimeoutMs,
    dvrWindowMs: config.dvrWindowSeconds * 1000,
    dvrMaxBytes: config.dvrMemoryBudgetMb * 1024 * 1024,
    routerMaxViewers: config.routerMaxViewers,
    instantStart: config.instantStart,
    maxCatchUps: config.maxCatchUps,
    keyframeRecoveryMs: config.keyframeRecoverySeconds * 1000,
    layerHoldMs: config.layerHoldSeconds * 1000,
    maxReplays: config.dvrMaxReplays,
    dvrShareWithinMs: config.dvrShareWithinMs,
    ...(config.transcodeLadder.length
      ? {
          ladder: {
            heights: config.transcodeLadder,
            vp8Rung: config.transcodeVp8Rung,
            vp8RungIdleMs: config.transcodeVp8RungIdleSeconds * 1000,
          },
        }
      : {}),
    ...(recordings ? { recordings: { dir: recordings.dir, reconnectGraceMs: config.recordingsReconnectGraceSeconds * 1000 } } : {}),
    ...(config.dvrSpillDir === 'off'
      ? {}
      : { dvrSpillDir: config.dvrSpillDir === 'tmp' ? join(tmpdir(), 'whipcast-dvr') : config.dvrSpillDir }),
    logger: log,
  });
  metrics.gauge('whipcast_live_channels', 'Channels live on this node (own publisher or relay)', () => sfu.liveChannels().length);
  metrics.gauge('whipcast_viewers', 'Viewers with a media session on this node, all channels', () =>
    sfu.liveChannels().reduce((n, c) => n + c.viewerCount, 0),
  );
  metrics.gauge('whipcast_relays_out', 'Channels this node pipes to other nodes (one per channel and edge)', () => sfu.relays().length);
  metrics.gauge(
    'whipcast_worker_viewers',
    'Viewers placed on each mediasoup worker, all channels',
    () => {
      const byWorker: Record<string, number> = {};
      for (const w of sfu.pool.workers) byWorker[String(w.index)] = 0;
      for (const c of sfu.liveChannels())
        for (const p of c.placement()) byWorker[String(p.worker)] = (byWorker[String(p.worker)] ?? 0) + p.viewers;
      return byWorker;
    },
    'worker',
  );
  metrics.gauge(
    'whipcast_dvr_memory_bytes',
    "Memory the channels' DVR buffers hold on this node (payloads in memory and their index; bounded by DVR_MEMORY_BUDGET_MB), bytes",
    () => sfu.channels().reduce((n, c) => n + c.dvr.heldBytes, 0),
  );
  metrics.gauge('whipcast_media_workers_alive', 'Running mediasoup workers', () => sfu.pool.workers.filter((w) => !w.worker.closed).length);
  const mediaMetrics = new MediaMetrics({ sfu, registry: metrics.registry, logger: log });
  const recoveries = metrics.counter(
    'whipcast_keyframe_recoveries_total',
    "Viewers whose video lost a keyframe and was served one from the DVR buffer instead of waiting for the publisher's next one (KEYFRAME_RECOVERY_SECONDS), by client (player: the web player; WHEP players are not recovered) and position (live, or dvr: watching the past)",
    ['client', 'position'],
  );
  for (const position of ['live', 'dvr'] as const) recoveries.inc({ client: 'player', position }, 0); // on /metrics from the start
  sfu.on('keyframerecovery', (_channel, viewer, position) => recoveries.inc({ client: viewer.client, position }));

  const events = new EventEmitter<MediaEvents>();
  const sync = createChannelSync({
    sfu,
    cluster,
    db,
    logger: log,
    relayLingerMs: config.relayLingerSeconds * 1000,
    onStatus: (channelId, live, reason) => (live ? events.emit('live', channelId) : events.emit('offline', channelId, reason)),
  });
  sfu.on('viewers', (channel, count) => events.emit('viewers', channel.id, count));
  sfu.on('reconsume', (channel) => events.emit('reconsume', channel.id));
  sfu.on('recording', (channel, recording) => recordings?.track(channel, recording));

  const socketViewers: SocketMedia = {
    routerRtpCapabilities: sfu.capabilities,
    async capabilities(channelId) {
      await sync.ensure(channelId);
      return { routerRtpCapabilities: sfu.capabilities, live: sfu.channel(channelId)?.live ?? false };
    },
    createViewer: async (channelId) => (await sfu.openChannel(channelId)).createSocketViewer(),
    ensure: (channelId) => sync.ensure(channelId),
  };
  const whip: WhipMedia = {
    async publish(channelId, offer) {
      const save = recordings ? await db.recordings.saveEnabled(channelId) : false;
      const channel = await sfu.openChannel(channelId);
      channel.saveRecordings = save;
      const ingest = await channel.publish(offer);
      await sync.claimed(channelId);
      return ingest;
    },
    async watch(channelId, offer) {
      parseOffer(offer); // a bad offer is a 400 even for an offline channel
      await sync.ensure(channelId);
      const channel = sfu.channel(channelId);
      if (!channel?.live) throw new SfuError('stream_offline', 'The stream is not live');
      return channel.watch(offer);
    },
    session: (kind, id) => (kind === 'whip' ? sfu.whipSession(id) : sfu.whepSession(id)),
  };

  const programs: ProgramSources = {
    get: (channelId) => programOf(sfu.channel(channelId)),
    live: () => sfu.liveChannels().flatMap((c) => programOf(c) ?? []),
  };

  return {
    sfu,
    events,
    socketViewers,
    programs,
    ready: () => sfu.ready(),
    endPublisher: (id, reason) => sync.kick(id, reason),
    routes: () => [
      ...whipRoutes({ media: whip, channels, iceServers: config.iceServers, ratePerMinute: config.whipRateLimitPerMinute }),
      ...(cluster.clustered ? relayRoutes({ cluster, media: sfu }) : []),
    ],
    async close() {
      await mediaMetrics.close();
      await sfu.close();
      await sync.close();
    },
  };
}

/** A live channel's DVR buffer and program codecs, when it has video. */
function programOf(channel: Channel | undefined): ProgramSource | null {
  const video = channel?.live ? channel.programTrack('video')?.codec : undefined;
  if (!channel || !video) return null;
  const audio = channel.programTrack('audio')?.codec;
  return { channelId: channel.id, dvr: channel.dvr, video, ...(audio ? { audio } : {}) };
}
