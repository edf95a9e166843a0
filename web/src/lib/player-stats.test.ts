import { describe, expect, it } from 'vitest';
import { formatDelay, StatsSampler } from './player-stats.ts';

const report = (...stats: Record<string, unknown>[]) => new Map(stats.map((s) => [s.id as string, s])) as unknown as RTCStatsReport;

function video(o: Record<string, number>) {
  return report(
    { id: 'v', type: 'inbound-rtp', kind: 'video', codecId: 'c1', frameWidth: 1280, frameHeight: 720, framesPerSecond: 30, ...o },
    { id: 'c1', type: 'codec', mimeType: 'video/H264' },
    { id: 'p', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.04 },
  );
}
const audio = (o: Record<string, number>) =>
  report({ id: 'a', type: 'inbound-rtp', kind: 'audio', codecId: 'c2', ...o }, { id: 'c2', type: 'codec', mimeType: 'audio/opus' });

describe('StatsSampler', () => {
  it('reports rates over the last interval, not the session average', () => {
    const s = new StatsSampler();
    const first = s.sample(
      video({
        bytesReceived: 100_000,
        packetsReceived: 100,
        packetsLost: 0,
        framesDecoded: 300,
        jitterBufferDelay: 300 * 0.5,
        jitterBufferEmittedCount: 300,
        totalDecodeTime: 300 * 0.004,
      }),
      audio({ bytesReceived: 10_000, packetsReceived: 50, packetsLost: 0 }),
      1000,
    );
    // the first sample has no interval: the session average (500 ms) and no bitrate yet
    expect(first.jitterBufferMs).toBeCloseTo(500);
    expect(first.bitrateKbps).toBeNull();
    expect(first.codec).toBe('H264 + opus');
    expect(first.resolution).toEqual({ width: 1280, height: 720 });

    const second = s.sample(
      video({
        bytesReceived: 350_000,
        packetsReceived: 290,
        packetsLost: 10,
        framesDecoded: 330,
        jitterBufferDelay: 300 * 0.5 + 30 * 0.05,
        jitterBufferEmittedCount: 330,
        totalDecodeTime: 330 * 0.004,
      }),
      audio({ bytesReceived: 20_000, packetsReceived: 100, packetsLost: 0 }),
      2000,
    );
    expect(second.bitrateKbps).toBeCloseTo((260_000 * 8) / 1000);
    expect(second.jitterBufferMs).toBeCloseTo(50);
    expect(second.packetLossPct).toBeCloseTo((10 / 250) * 100);
    expect(second.rttMs).toBeCloseTo(40);
    // half the round trip + jitter buffer + decode
    expect(second.serverToScreenMs).toBeCloseTo(20 + 50 + 4);
    expect(second.currentLayer).toBeNull();
  });

  it('has nothing to say without a video track', () => {
    const r = new StatsSampler().sample(null, null, 1000);
    expect(r).toMatchObject({ resolution: null, fps: null, jitterBufferMs: null, serverToScreenMs: null, codec: null, framesDecoded: 0 });
  });

  it('formats delays', () => {
    expect(formatDelay(12.4)).toBe('12 ms');
    expect(formatDelay(1450)).toBe('1.4 s');
  });
});
