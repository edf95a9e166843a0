import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LayerHoldDown, type HeldConsumer } from './layer-hold-down.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A simulcast consumer whose layer the test moves (mediasoup's 'layerschange'). */
class FakeConsumer
  extends EventEmitter<{ layerschange: [layers?: { spatialLayer: number; temporalLayer: number }] }>
  implements HeldConsumer
{
  closed = false;
  currentLayers?: { spatialLayer: number; temporalLayer: number };
  to(spatialLayer: number): void {
    this.currentLayers = { spatialLayer, temporalLayer: 0 };
    this.emit('layerschange', this.currentLayers);
  }
}

/** A hold-down over `c` (layers 160/650/2500 kbit/s) and the ceilings it applied. */
function holdDown(c: FakeConsumer, estimate: { bps: number }) {
  const applied: (number | null)[] = [];
  const h = new LayerHoldDown({
    apply: (ceiling) => applied.push(ceiling),
    estimate: () => Promise.resolve(estimate.bps),
    layerBitrates: () => Promise.resolve([160_000, 650_000, 2_500_000]),
    holdMs: 10_000,
    maxHoldMs: 60_000,
    resetAfterMs: 30_000,
  });
  h.follow(c);
  return { h, applied };
}

describe('LayerHoldDown', () => {
  it('holds a viewer below a layer it dropped from for 10 s, then 20 s, 40 s and at most 60 s while the layer keeps failing', async () => {
    const c = new FakeConsumer();
    const { h, applied } = holdDown(c, { bps: 900_000 });
    c.to(1);
    c.to(0); // the estimate dropped it from layer 1
    expect(applied).toEqual([0]);
    expect(h.ceiling).toBe(0);
    const holds: number[] = [];
    h.on('hold', (_ceiling, ms) => holds.push(ms));
    for (const ms of [10_000, 20_000, 40_000, 60_000]) {
      await vi.advanceTimersByTimeAsync(ms - 1000);
      expect(h.ceiling, `still held ${ms - 1000} ms in`).toBe(0);
      await vi.advanceTimersByTimeAsync(1000);
      expect(h.ceiling).toBeNull(); // released: Auto again
      expect(applied.at(-1)).toBeNull();
      c.to(1); // climbs back ...
      await vi.advanceTimersByTimeAsync(3000);
      c.to(0); // ... and fails within 3 s
    }
    expect(holds).toEqual([20_000, 40_000, 60_000, 60_000]);
    h.close();
  });

  it('a layer that held 30 s is held 10 s again when it fails', async () => {
    const c = new FakeConsumer();
    const { h } = holdDown(c, { bps: 900_000 });
    const holds: number[] = [];
    h.on('hold', (_ceiling, ms) => holds.push(ms));
    c.to(1);
    c.to(0);
    await vi.advanceTimersByTimeAsync(10_000);
    c.to(1);
    await vi.advanceTimersByTimeAsync(31_000); // it holds
    c.to(0);
    expect(holds).toEqual([10_000, 10_000]);
    h.close();
  });

  it('ends a hold at once when the estimate shows twice the held layer for 3 s (the link got better)', async () => {
    const c = new FakeConsumer();
    const estimate = { bps: 1_200_000 }; // under 2 × 650 kbit/s
    const { h } = holdDown(c, estimate);
    const released: boolean[] = [];
    h.on('release', (recovered) => released.push(recovered));
    c.to(1);
    c.to(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.ceiling).toBe(0);
    estimate.bps = 1_400_000;
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.ceiling).toBe(0); // two readings: not yet
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.ceiling).toBeNull();
    expect(released).toEqual([true]);
    h.close();
  });

  it('the top layer (2.5 Mbit/s) comes back at 1.2 times its bitrate, not at twice it', async () => {
    const c = new FakeConsumer();
    const estimate = { bps: 2_900_000 };
    const { h } = holdDown(c, estimate);
    c.to(2);
    c.to(1);
    await vi.advanceTimersByTimeAsync(4000);
    expect(h.ceiling).toBe(1);
    estimate.bps = 3_100_000;
    await vi.advanceTimersByTimeAsync(3000);
    expect(h.ceiling).toBeNull();
    h.close();
  });

  it('a drop from the top holds below the top only; climbs, a new consumer and its own ceiling are no failures', async () => {
    const c = new FakeConsumer();
    const { h, applied } = holdDown(c, { bps: 900_000 });
    c.to(0);
    c.to(2);
    c.to(1); // failed at 2
    expect(h.ceiling).toBe(1);
    c.to(0); // failed at 1 too
    expect(h.ceiling).toBe(0);
    expect(applied).toEqual([1, 0]);
    // the viewer's next consumer (back to live) starts from nothing: its first layer is no drop
    const next = new FakeConsumer();
    h.follow(next);
    next.to(0);
    expect(h.holds).toBe(2);
    c.to(2);
    c.to(0); // the old consumer is not followed any more
    expect(h.holds).toBe(2);
    h.close();
  });

  it('does nothing while the viewer chose a layer (off), and ends its hold when turned off', async () => {
    const c = new FakeConsumer();
    const { h, applied } = holdDown(c, { bps: 900_000 });
    c.to(1);
    c.to(0);
    expect(h.ceiling).toBe(0);
    h.enabled = false;
    expect(h.ceiling).toBeNull();
    expect(applied).toEqual([0]); // the viewer applies its own choice
    c.to(1);
    c.to(0);
    expect(h.holds).toBe(1);
    h.close();
  });
});
