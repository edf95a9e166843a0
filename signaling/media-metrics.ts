/**
 * Per-channel media metrics (issue #13 item 8), read from mediasoup's own RTP stats every `intervalMs`:
 * what the publisher sends (bitrate, loss, NACKs and keyframe requests whipcast sends it) and what the viewers
 * get (their layers, the NACKs/keyframe requests they send, RTX packets sent to them, the loss they report).
 * A channel's series go when it stops being live on this node.
 */
import type { types } from 'mediasoup';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Sfu } from '../sfu/index.ts';
import type { Logger } from 'pino';
import { PeriodicJob } from './periodic.ts';

export interface MediaMetricsOptions {
  sfu: Sfu;
  registry: Registry;
  /** How often the stats are read, ms (each read is one worker request per producer and consumer). */
  intervalMs?: number;
  logger?: Logger;
}

type Counted = 'packets' | 'lost' | 'nacks' | 'keyframeRequests' | 'rtx';

/** The counters' last cumulative values, per RTP stream (a new stream starts from zero). */
type Seen = Map<string, Record<Counted, number>>;

export class MediaMetrics {
  readonly #sfu: Sfu;
  readonly #job: PeriodicJob;
  #seen: Seen = new Map();
  /** Label sets written per channel, removed with it. */
  readonly #labels = new Map<string, { metric: Gauge | Counter; labels: Record<string, string> }[]>();

  readonly #ingestBitrate: Gauge<'channel' | 'kind'>;
  readonly #ingestLoss: Gauge<'channel' | 'kind'>;
  readonly #ingestPackets: Counter<'channel' | 'kind'>;
  readonly #ingestLost: Counter<'channel' | 'kind'>;
  readonly #ingestNacks: Counter<'channel'>;
  readonly #ingestKeyframeRequests: Counter<'channel'>;
  readonly #viewerLayers: Gauge<'channel' | 'layer'>;
  readonly #viewerNacks: Counter<'channel'>;
  readonly #viewerKeyframeRequests: Counter<'channel'>;
  readonly #viewerRtx: Counter<'channel'>;
  readonly #viewerLost: Counter<'channel'>;

  constructor(opts: MediaMetricsOptions) {
    this.#sfu = opts.sfu;
    const registers = [opts.registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]) => new Gauge<L>({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.#ingestBitrate = gauge('whipcast_channel_ingest_bitrate_bps', 'What the publisher sends, bit/s', ['channel', 'kind']);
    this.#ingestLoss = gauge(
      'whipcast_channel_ingest_loss_ratio',
      'Publisher → server packet loss in the last RTCP interval, before NACK repair (0–1)',
      ['channel', 'kind'],
    );
    this.#ingestPackets = counter('whipcast_channel_ingest_packets_total', 'RTP packets received from the publisher', ['channel', 'kind']);
    this.#ingestLost = counter(
      'whipcast_channel_ingest_packets_lost_total',
      'Publisher packets lost on the way in (net of those NACK recovered)',
      ['channel', 'kind'],
    );
    this.#ingestNacks = counter('whipcast_channel_ingest_nacks_sent_total', 'NACKs whipcast sent the publisher', ['channel']);
    this.#ingestKeyframeRequests = counter(
      'whipcast_channel_ingest_keyframe_requests_sent_total',
      'PLI/FIR whipcast sent the publisher (OBS ignores them)',
      ['channel'],
    );
    this.#viewerLayers = gauge(
      'whipcast_channel_viewer_layers',
      "Viewers' video consumers by the layer they receive (`single`: no simulcast)",
      ['channel', 'layer'],
    );
    this.#viewerNacks = counter('whipcast_channel_viewer_nacks_received_total', 'NACKs received from viewers', ['channel']);
    this.#viewerKeyframeRequests = counter('whipcast_channel_viewer_keyframe_requests_received_total', 'PLI/FIR received from viewers', [
      'channel',
    ]);
    this.#viewerRtx = counter('whipcast_channel_viewer_rtx_packets_sent_total', 'Packets resent to viewers (RTX) after their NACKs', [
      'channel',
    ]);
    this.#viewerLost = counter(
      'whipcast_channel_viewer_packets_lost_total',
      'Packets lost on the way to viewers, as their receiver reports say',
      ['channel'],
    );
    this.#job = new PeriodicJob({
      name: 'media metrics',
      intervalMs: opts.intervalMs ?? 5000,
      run: () => this.#poll(),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  }

  /** Stops polling (the series stay until the registry goes). Idempotent. */
  async close(): Promise<void> {
    await this.#job.close();
  }

  /** Reads the stats now (tests; the job does it every `intervalMs`). */
  poll(): Promise<void> {
    return this.#job.run();
  }

  async #poll(): Promise<void> {
    const seen: Seen = new Map();
    const live = new Set<string>();
    for (const channel of this.#sfu.liveChannels()) {
      const id = channel.id;
      live.add(id);
      for (const producer of channel.ingest?.producers.values() ?? []) {
        if (producer.closed) continue;
        const stats = await producer.getStats().catch(() => []);
        const kind = producer.kind;
        this.#set(
          id,
          this.#ingestBitrate,
          { channel: id, kind },
          stats.reduce((n, s) => n + s.bitrate, 0),
        );
        this.#set(id, this.#ingestLoss, { channel: id, kind }, Math.max(0, ...stats.map((s) => s.fractionLost)) / 256);
        for (const s of stats) {
          const d = this.#delta(seen, `${producer.id}:${s.ssrc}`, s);
          this.#inc(id, this.#ingestPackets, { channel: id, kind }, d.packets);
          this.#inc(id, this.#ingestLost, { channel: id, kind }, d.lost);
          this.#inc(id, this.#ingestNacks, { channel: id }, d.nacks);
          this.#inc(id, this.#ingestKeyframeRequests, { channel: id }, d.keyframeRequests);
        }
      }
      const layers: Record<string, number> = {};
      for (const viewer of channel.viewers()) {
        for (const consumer of viewer.currentConsumers()) {
          if (consumer.closed) continue;
          if (consumer.kind === 'video') {
            const layer = consumer.type === 'simple' ? 'single' : String(consumer.currentLayers?.spatialLayer ?? 'none');
            layers[layer] = (layers[layer] ?? 0) + 1;
          }
          const sent = (await consumer.getStats().catch(() => [])).find(isSendStats);
          if (!sent) continue;
          const d = this.#delta(seen, `${consumer.id}:${sent.ssrc}`, sent);
          this.#inc(id, this.#viewerNacks, { channel: id }, d.nacks);
          this.#inc(id, this.#viewerKeyframeRequests, { channel: id }, d.keyframeRequests);
          this.#inc(id, this.#viewerRtx, { channel: id }, d.rtx);
          this.#inc(id, this.#viewerLost, { channel: id }, d.lost);
        }
      }
      for (const { labels } of (this.#labels.get(id) ?? []).filter((l) => l.metric === this.#viewerLayers))
        this.#viewerLayers.set(labels, 0);
      for (const [layer, n] of Object.entries(layers)) this.#set(id, this.#viewerLayers, { channel: id, layer }, n);
    }
    this.#seen = seen;
    for (const [id, written] of this.#labels) {
      if (live.has(id)) continue;
      for (const { metric, labels } of written) metric.remove(labels);
      this.#labels.delete(id);
    }
  }

  /** What a stream's counters grew by since the last poll (all of it for a stream not seen before). */
  #delta(seen: Seen, key: string, s: types.RtpStreamRecvStats | types.RtpStreamSendStats): Record<Counted, number> {
    const now: Record<Counted, number> = {
      packets: s.packetCount,
      lost: Math.max(0, s.packetsLost),
      nacks: s.nackCount,
      keyframeRequests: s.pliCount + s.firCount,
      rtx: s.packetsRetransmitted,
    };
    const was = this.#seen.get(key);
    seen.set(key, now);
    const d = { ...now };
    if (was) for (const k of Object.keys(d) as Counted[]) d[k] = Math.max(0, now[k] - was[k]);
    return d;
  }

  #remember(channelId: string, metric: Gauge | Counter, labels: Record<string, string>): void {
    const list = this.#labels.get(channelId) ?? [];
    if (!list.some((l) => l.metric === metric && sameLabels(l.labels, labels))) list.push({ metric, labels });
    this.#labels.set(channelId, list);
  }

  #set<L extends string>(channelId: string, metric: Gauge<L>, labels: Record<L, string>, value: number): void {
    metric.set(labels, value);
    this.#remember(channelId, metric, labels);
  }

  #inc<L extends string>(channelId: string, metric: Counter<L>, labels: Record<L, string>, value: number): void {
    metric.inc(labels, value);
    this.#remember(channelId, metric, labels);
  }
}

function isSendStats(s: types.RtpStreamRecvStats | types.RtpStreamSendStats): s is types.RtpStreamSendStats {
  return s.type === 'outbound-rtp';
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
