import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LossBasedLayers, type SteeredConsumer } from './loss-based-layers.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

interface FakeConsumer extends SteeredConsumer {
  closed: boolean;
  loss: number;
  currentLayers: { spatialLayer: number; temporalLayer: number };
  asked: number[];
  setPreferredLayers(layers: { spatialLayer: number }): Promise<void>;
}

/** A simulcast consumer on a link losing `loss`; mediasoup switches to the preferred layer at once. */
function consumer(layers = 3): FakeConsumer {
  const c: FakeConsumer = {
    closed: false,
    paused: false,
    loss: 0,
    currentLayers: { spatialLayer: layers - 1, temporalLayer: 0 },
    asked: [] as number[],
    getStats: () => Promise.resolve([{ type: 'outbound-rtp', fractionLost: Math.min(255, Math.round(c.loss * 256)) }]),
    setPreferredLayers: ({ spatialLayer }: { spatialLayer: number }) => {
      c.asked.push(spatialLayer);
      c.currentLayers = { spatialLayer, temporalLayer: 0 };
      return Promise.resolve();
    },
  };
  return c;
}

function steer(c: FakeConsumer): LossBasedLayers {
  return new LossBasedLayers({ consumer: c, layers: () => 3, probeAfterMs: 10_000, maxProbeAfterMs: 40_000, probeWatchMs: 5000 });
}

describe('LossBasedLayers', () => {
  it('steps down a layer, and another when the loss stays high 2 s after reaching it; no lower than the lowest', async () => {
    const c = consumer();
    const s = steer(c);
    c.loss = 0.4;
    await vi.advanceTimersByTimeAsync(1000);
    expect(c.asked).toEqual([1]);
    await vi.advanceTimersByTimeAsync(2000); // reached at the 2 s reading: the link's queue drains first
    expect(c.asked).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(c.asked).toEqual([1, 0]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(c.asked).toEqual([1, 0]); // the lowest layer: nothing lower to go to
    s.close();
  });

  it('waits for mediasoup to reach the lower layer (its keyframe) before stepping again', async () => {
    const c = consumer();
    c.setPreferredLayers = ({ spatialLayer }) => {
      c.asked.push(spatialLayer); // mediasoup has not switched yet
      return Promise.resolve();
    };
    const s = steer(c);
    c.loss = 0.4;
    await vi.advanceTimersByTimeAsync(5000);
    expect(c.asked).toEqual([1]);
    c.currentLayers = { spatialLayer: 1, temporalLayer: 0 };
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.asked).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(c.asked).toEqual([1, 0]);
    s.close();
  });

  it('a moderate loss (5 %: random loss that NACK repairs) is no reason to step down', async () => {
    const c = consumer();
    const s = steer(c);
    c.loss = 0.05;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(c.asked).toEqual([]);
    s.close();
  });

  it('tries the layer above after a quiet spell; a try that brings loss back doubles the wait', async () => {
    const c = consumer();
    const s = steer(c);
    c.loss = 0.4;
    await vi.advanceTimersByTimeAsync(1000); // → 1
    c.loss = 0;
    await vi.advanceTimersByTimeAsync(10_000); // quiet 10 s: try 2
    expect(c.asked).toEqual([1, 2]);
    c.loss = 0.4;
    await vi.advanceTimersByTimeAsync(1000); // failed: back to 1, next try after 20 s
    expect(c.asked).toEqual([1, 2, 1]);
    c.loss = 0;
    await vi.advanceTimersByTimeAsync(19_000);
    expect(c.asked).toEqual([1, 2, 1]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.asked).toEqual([1, 2, 1, 2]);
    // the link got better: the try holds, and the wait is back to 10 s for a later drop
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.asked).toEqual([1, 2, 1, 2]);
    expect(s.steps).toEqual({ down: 2, up: 2 });
    s.close();
  });

  it('close stops it; a closed consumer stops it', async () => {
    const c = consumer();
    const s = steer(c);
    s.close();
    c.loss = 0.5;
    await vi.advanceTimersByTimeAsync(3000);
    expect(c.asked).toEqual([]);
    const c2 = consumer();
    const s2 = steer(c2);
    c2.closed = true;
    c2.loss = 0.5;
    await vi.advanceTimersByTimeAsync(3000);
    expect(c2.asked).toEqual([]);
    s2.close();
  });
});
