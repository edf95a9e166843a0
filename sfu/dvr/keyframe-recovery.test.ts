import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyframeRecovery } from './keyframe-recovery.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function make(intervalMs = 10_000) {
  const recover = vi.fn(() => Promise.resolve());
  const r = new KeyframeRecovery({ intervalMs, answerWithinMs: 500, recover, now: () => Date.now() });
  return { r, recover };
}

describe('KeyframeRecovery', () => {
  it('recovers when no keyframe answers a request within the grace time', async () => {
    const { r, recover } = make();
    r.onRequest();
    await vi.advanceTimersByTimeAsync(499);
    expect(recover).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(recover).toHaveBeenCalledTimes(1);
  });

  it('does nothing when a keyframe comes in time (the publisher honours requests)', async () => {
    const { r, recover } = make();
    r.onRequest();
    await vi.advanceTimersByTimeAsync(200);
    r.onKeyframe();
    await vi.advanceTimersByTimeAsync(2000);
    expect(recover).not.toHaveBeenCalled();
  });

  it('a storm of requests makes one recovery per interval', async () => {
    const { r, recover } = make(10_000);
    for (let t = 0; t < 25_000; t += 50) {
      r.onRequest();
      await vi.advanceTimersByTimeAsync(50);
    }
    // at 0.5 s, then at the first request 10 s after each start (+0.5 s grace)
    expect(recover).toHaveBeenCalledTimes(3);
  });

  it('one at a time: no new recovery while one is still starting', async () => {
    let finish = () => {};
    const recover = vi.fn(() => new Promise<void>((res) => (finish = res)));
    const r = new KeyframeRecovery({ intervalMs: 1, answerWithinMs: 10, recover });
    r.onRequest();
    await vi.advanceTimersByTimeAsync(20);
    r.onRequest();
    await vi.advanceTimersByTimeAsync(20);
    expect(recover).toHaveBeenCalledTimes(1);
    finish();
    await vi.advanceTimersByTimeAsync(0);
    r.onRequest();
    await vi.advanceTimersByTimeAsync(20);
    expect(recover).toHaveBeenCalledTimes(2);
  });

  it('interval 0 is off; close cancels a pending request', async () => {
    const off = make(0);
    off.r.onRequest();
    await vi.advanceTimersByTimeAsync(1000);
    expect(off.recover).not.toHaveBeenCalled();
    const { r, recover } = make();
    r.onRequest();
    r.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(recover).not.toHaveBeenCalled();
  });
});
