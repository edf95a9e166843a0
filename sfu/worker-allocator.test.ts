import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { jemallocCandidates, resolveWorkerAllocator, withEnv } from './worker-allocator.ts';

describe('worker allocator', () => {
  it('auto preloads jemalloc where installed and falls back to the system malloc where not', () => {
    const lib = jemallocCandidates('x64')[0]!;
    expect(lib).toBe('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2');
    const found = resolveWorkerAllocator('auto', (p) => p === jemallocCandidates()[0]);
    expect(found.name).toBe('jemalloc');
    expect(found.env.LD_PRELOAD).toBe(jemallocCandidates()[0]);
    expect(found.env.MALLOC_CONF).toMatch(/dirty_decay_ms/);
    expect(resolveWorkerAllocator('auto', () => false)).toEqual({ name: 'system', env: {} });
    expect(resolveWorkerAllocator('system', () => true)).toEqual({ name: 'system', env: {} });
  });

  it('jemalloc asked for but not installed is a clear error', () => {
    expect(() => resolveWorkerAllocator('jemalloc', () => false)).toThrow(
      /WORKER_ALLOCATOR=jemalloc but jemalloc is not installed.*libjemalloc2/,
    );
  });

  it("a child spawned inside withEnv gets the variables; this process's environment is put back", () => {
    process.env.WHIPCAST_ALLOC_TEST_KEEP = 'mine';
    const out = withEnv({ WHIPCAST_ALLOC_TEST: 'child', WHIPCAST_ALLOC_TEST_KEEP: 'child' }, () =>
      spawnSync('sh', ['-c', 'echo $WHIPCAST_ALLOC_TEST $WHIPCAST_ALLOC_TEST_KEEP']).stdout.toString().trim(),
    );
    expect(out).toBe('child child');
    expect(process.env.WHIPCAST_ALLOC_TEST).toBeUndefined();
    expect(process.env.WHIPCAST_ALLOC_TEST_KEEP).toBe('mine');
    delete process.env.WHIPCAST_ALLOC_TEST_KEEP;
  });
});
