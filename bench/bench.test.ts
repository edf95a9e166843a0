/** Smoke test of the benchmark: a tiny run against whipcast (child process) and the baseline gives sane figures. */
import { describe, expect, it } from 'vitest';
import { startBaseline } from './baseline.ts';
import { children } from './proc.ts';
import { html, table, type BenchReport } from './report.ts';
import { prepareChannel, startServer } from './server.ts';
import { capacity, runSfuBench, type SfuBenchOptions } from './sfu-bench.ts';

const opts: SfuBenchOptions = {
  steps: [2],
  seconds: 2,
  rampPerSecond: 10,
  kbps: 600,
  width: 320,
  height: 180,
  keyframeInterval: 1,
  latencyTargetMs: 400,
  progress: () => {},
};

describe('bench (smoke)', () => {
  it('measures whipcast and the bare-mediasoup baseline side by side', { timeout: 120_000 }, async () => {
    const server = await startServer();
    let whipcast;
    try {
      const ch = await prepareChannel(server.url);
      whipcast = await runSfuBench(
        {
          name: 'whipcast',
          url: server.url,
          streamId: ch.streamId,
          key: ch.key,
          mainPid: server.pid,
          workerPids: () => children(server.pid!, /mediasoup/),
        },
        opts,
      );
    } finally {
      await server.stop();
    }
    const base = await startBaseline();
    let baseline;
    try {
      baseline = await runSfuBench(
        { name: 'baseline', url: base.url, streamId: 'x', mainPid: null, workerPids: () => [base.workerPid] },
        opts,
      );
    } finally {
      await base.stop();
    }
    for (const r of [whipcast[0]!, baseline[0]!]) {
      expect(r.joined).toBe(2);
      expect(r.joinFailures).toBe(0);
      expect(r.kbpsPerViewer).toBeGreaterThan(300);
      expect(r.lossPct).toBeLessThan(5);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.p95).toBeLessThan(1000);
      expect(r.cpu.workers).toBeGreaterThan(0);
    }
    expect(whipcast[0]!.cpu.main).toBeGreaterThan(0);
    const report: BenchReport = {
      command: 'test',
      date: new Date().toISOString(),
      machine: { cores: 2, node: process.version },
      options: {},
      whipcast,
      baseline,
      capacity: { whipcast: capacity(whipcast, 400), baseline: capacity(baseline, 400) },
      notes: [],
    };
    expect(table(report)).toMatch(/ratios against the baseline run/);
    expect(html(report)).toMatch(/<svg/);
  });
});
