import { describe, expect, it } from 'vitest';
import { HashQueue, HashQueueFullError } from './hash-queue.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('HashQueue', () => {
  it('runs at most `concurrency` jobs, queues up to the limit, refuses beyond it at once', async () => {
    const q = new HashQueue({ concurrency: 2, queueLimit: 3, perKeyLimit: 3 });
    const gates = Array.from({ length: 5 }, deferred);
    let running = 0;
    let peak = 0;
    const jobs = gates.map((g, i) =>
      q.run('a', async () => {
        running++;
        peak = Math.max(peak, running);
        await g.promise;
        running--;
        return i;
      }),
    );
    expect(q.size).toBe(5);
    await expect(q.run('b', async () => 'never')).rejects.toBeInstanceOf(HashQueueFullError);
    for (const g of gates) g.resolve();
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(q.size).toBe(0);
  });

  it('serves waiting keys round-robin and caps each key’s share', async () => {
    const q = new HashQueue({ concurrency: 1, queueLimit: 8, perKeyLimit: 4 });
    const order: string[] = [];
    const gate = deferred();
    const first = q.run('attacker', () => gate.promise);
    const flood = Array.from({ length: 4 }, (_, i) => q.run('attacker', async () => void order.push(`attacker${i}`)));
    await expect(q.run('attacker', async () => 'never')).rejects.toBeInstanceOf(HashQueueFullError);
    const user = q.run('user', async () => void order.push('user'));
    gate.resolve();
    await Promise.all([first, ...flood, user]);
    expect(order).toEqual(['attacker0', 'user', 'attacker1', 'attacker2', 'attacker3']);
  });

  it('frees the slot when a job throws', async () => {
    const q = new HashQueue({ concurrency: 1, queueLimit: 0 });
    await expect(q.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await q.run('a', async () => 7)).toBe(7);
  });
});
