/**
 * The memory allocator of the mediasoup workers. With glibc's malloc a worker keeps the memory its viewers took after
 * they leave (freed small blocks scattered through the heap cannot be given back), so its RSS only ever grows to the
 * largest audience it had. jemalloc, preloaded, gives freed pages back to the system within about a second.
 */
import { existsSync } from 'node:fs';

/** `auto`: jemalloc when the library is installed (Debian: `libjemalloc2`), else the system's malloc. */
export type WorkerAllocatorSetting = 'auto' | 'jemalloc' | 'system';

export interface WorkerAllocator {
  name: 'jemalloc' | 'system';
  /** Environment added to each worker process. */
  env: Record<string, string>;
}

/**
 * Freed pages go back to the system after ~1 s (dirty) and at once after that (muzzy); the background thread does the
 * returning so an idle worker returns memory too, not only one that is allocating.
 */
const JEMALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0';

const MULTIARCH: Partial<Record<NodeJS.Architecture, string>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

/** Where Debian, Ubuntu, Alpine and Fedora put jemalloc's shared library. */
export function jemallocCandidates(arch: NodeJS.Architecture = process.arch): string[] {
  const triplet = MULTIARCH[arch];
  return [
    ...(triplet ? [`/usr/lib/${triplet}/libjemalloc.so.2`] : []),
    '/usr/lib64/libjemalloc.so.2',
    '/usr/lib/libjemalloc.so.2',
    '/usr/local/lib/libjemalloc.so.2',
  ];
}

export function resolveWorkerAllocator(setting: WorkerAllocatorSetting, exists: (path: string) => boolean = existsSync): WorkerAllocator {
  if (setting === 'system') return { name: 'system', env: {} };
  const lib = jemallocCandidates().find(exists);
  if (lib) return { name: 'jemalloc', env: { LD_PRELOAD: lib, MALLOC_CONF: JEMALLOC_CONF } };
  if (setting === 'jemalloc') {
    throw new Error(
      `WORKER_ALLOCATOR=jemalloc but jemalloc is not installed (looked for ${jemallocCandidates().join(', ')}); install libjemalloc2 or set WORKER_ALLOCATOR=system`,
    );
  }
  return { name: 'system', env: {} };
}

/**
 * Runs `spawn` with `env` added to this process's environment and puts it back before returning. mediasoup gives no
 * per-worker environment, but its worker inherits ours and is spawned synchronously inside `createWorker`.
 */
export function withEnv<T>(env: Record<string, string>, spawn: () => T): T {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return spawn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
