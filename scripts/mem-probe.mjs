// @ts-check
/**
 * Memory breakdown of a running Node process, for footprint work: loaded with `--import`, it writes
 * process.memoryUsage(), the V8 heap spaces (v8.getHeapSpaceStatistics()) and the process's CPU
 * seconds to `$MEM_PROBE_DIR/mem-<pid>.json` every 2 s (the last write is the state before exit).
 * Not part of the server; e.g. under the footprint load:
 *
 *   node --import tsx scripts/footprint.ts --viewers 10 --idle-seconds 80 --samples 5 -- DATABASE_IDLE_SECONDS=2 \
 *     NODE_OPTIONS="--import ./scripts/mem-probe.mjs" MEM_PROBE_DIR=/tmp/probe
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

const dir = process.env.MEM_PROBE_DIR ?? '/tmp';
mkdirSync(dir, { recursive: true });
/** Garbage collections since start by kind (minor = scavenge, major = mark-compact): count and total pause, ms. */
const gc = { minor: { count: 0, ms: 0 }, major: { count: 0, ms: 0 }, other: { count: 0, ms: 0 } };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = /** @type {{ kind?: number } | undefined} */ (e.detail)?.kind;
    const k = kind === constants.NODE_PERFORMANCE_GC_MINOR ? gc.minor : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? gc.major : gc.other;
    k.count++;
    k.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
/** @param {number} n bytes */
const mb = (n) => Number((n / 1048576).toFixed(1));

function write() {
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().map((s) => [s.space_name, { sizeMb: mb(s.space_size), usedMb: mb(s.space_used_size) }]),
  );
  const report = {
    script: process.argv[1] ?? null,
    uptimeSeconds: Number(process.uptime().toFixed(1)),
    cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    rssMb: mb(m.rss),
    heapTotalMb: mb(m.heapTotal),
    heapUsedMb: mb(m.heapUsed),
    externalMb: mb(m.external),
    arrayBuffersMb: mb(m.arrayBuffers),
    gc: Object.fromEntries(Object.entries(gc).map(([k, v]) => [k, { count: v.count, ms: Number(v.ms.toFixed(1)) }])),
    spaces,
  };
  writeFileSync(join(dir, `mem-${process.pid}.json`), JSON.stringify(report, null, 1));
}
setInterval(write, 2000).unref();
process.on('exit', write);
