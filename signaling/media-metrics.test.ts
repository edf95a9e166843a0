/**
 * Per-channel media metrics scraped from /metrics during a real publish: the publisher sends through a
 * 3 % lossy link (whipcast NACKs it), a viewer receives through a 5 % lossy link (its receiver reports
 * count the loss). The channel's series go when it goes offline.
 * (This Node viewer sends receiver reports but no NACKs: web/e2e/lossy-viewer.test.ts reads the viewer NACK and RTX
 * counters with a Chromium viewer.)
 */
import { ImpairedPeer, ObsPublisher, registerStreamer, waitLive, WhepViewer } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1' } });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** The value of `name{…channel="id"…}` (summed over its other labels), or null when no such series. */
async function scrape(channelId: string): Promise<(name: string, match?: Record<string, string>) => number | null> {
  const text = await (await server.api('/metrics')).text();
  return (name, match = {}) => {
    let total: number | null = null;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const labels = line.slice(line.indexOf('{') + 1, line.indexOf('}'));
      const want = { channel: channelId, ...match };
      if (!Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) continue;
      total = (total ?? 0) + Number(line.slice(line.indexOf('}') + 1));
    }
    return total;
  };
}

describe('media metrics', () => {
  it('per channel: ingest bitrate and loss, NACKs to the publisher, viewer layers and loss', { timeout: 60_000 }, async () => {
    const streamer = await registerStreamer(server.url);
    const inLink = new ImpairedPeer({ toServer: { loss: 0.03 } });
    const outLink = new ImpairedPeer({ toPeer: { loss: 0.05 } });
    const pub = await ObsPublisher.publish({
      url: streamer.whipUrl,
      token: streamer.streamKey,
      rewriteAnswer: (sdp) => inLink.rewriteSdp(sdp),
    });
    let viewer: WhepViewer | null = null;
    try {
      await pub.connected();
      await waitLive(server.url, streamer.id);
      viewer = await WhepViewer.watch({ url: streamer.whepUrl, rewriteAnswer: (sdp) => outLink.rewriteSdp(sdp) });
      await viewer.connected();
      const id = streamer.id;
      await expect
        .poll(
          async () => {
            const m = await scrape(id);
            return {
              video: (m('whipcast_channel_ingest_bitrate_bps', { kind: 'video' }) ?? 0) > 300_000,
              audio: (m('whipcast_channel_ingest_bitrate_bps', { kind: 'audio' }) ?? 0) > 10_000,
              packets: (m('whipcast_channel_ingest_packets_total') ?? 0) > 500,
              nacksToPublisher: (m('whipcast_channel_ingest_nacks_sent_total') ?? 0) > 0,
              viewerLayer: m('whipcast_channel_viewer_layers', { layer: 'single' }),
              viewerLost: (m('whipcast_channel_viewer_packets_lost_total') ?? 0) > 0,
              viewerNacks: m('whipcast_channel_viewer_nacks_received_total') !== null,
            };
          },
          { timeout: 30_000, interval: 1000 },
        )
        .toEqual({
          video: true,
          audio: true,
          packets: true,
          nacksToPublisher: true,
          viewerLayer: 1,
          viewerLost: true,
          viewerNacks: true,
        });
      expect((await inLink.counters()).toServer.lost).toBeGreaterThan(0);

      // offline: the channel's series go
      viewer.close();
      viewer = null;
      await pub.stop();
      await expect
        .poll(async () => (await scrape(id))('whipcast_channel_ingest_bitrate_bps'), { timeout: 15_000, interval: 1000 })
        .toBeNull();
      const m = await scrape(id);
      expect(m('whipcast_channel_ingest_nacks_sent_total')).toBeNull();
      expect(m('whipcast_channel_viewer_layers')).toBeNull();
    } finally {
      viewer?.close();
      await pub.stop().catch(() => 0);
      await inLink.close();
      await outLink.close();
    }
  });
});
