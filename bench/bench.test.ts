/** Smoke test of the benchmarks: a tiny run of each mode against whipcast (child process) and its baseline gives sane figures. */
import { describe, expect, it } from 'vitest';
import { startBaseline } from './baseline.ts';
import { chatBaseline, chatWhipcast, type ChatBenchOptions } from './chat-bench.ts';
import { createScratchPostgres } from '@whipcast/db/testing';
import { runDvrBench } from './dvr-bench.ts';
import { runRelayBench } from './relay-bench.ts';
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
const chatOpts: ChatBenchOptions = { sockets: 10, messagesPerSecond: 10, seconds: 1, progress: () => {} };

describe('bench (smoke)', () => {
  it('measures whipcast and its baselines side by side: SFU, chat, DVR, relay between nodes', { timeout: 180_000 }, async () => {
    const server = await startServer({ CHAT_RATE_PER_10S: '1000', WS_MESSAGES_PER_SECOND: '10000' });
    let whipcast;
    let chat;
    let dvr;
    try {
      const ch = await prepareChannel(server.url);
      whipcast = await runSfuBench(
        {
          name: 'whipcast',
          url: server.url,
          streamId: ch.streamId,
          key: ch.key,
          via: 'socket',
          mainPids: server.pid ? [server.pid] : [],
          workerPids: () => children(server.pid!, /mediasoup/),
        },
        opts,
      );
      chat = await chatWhipcast(server.url, ch.streamId, ch.token, chatOpts);
      dvr = await runDvrBench(server.url, ch.streamId, ch.key, {
        viewers: 1,
        offsetsMs: [3000],
        keyframeInterval: 1,
        video: { kbps: 600, width: 320, height: 180 },
        progress: () => {},
      });
    } finally {
      await server.stop();
    }
    const base = await startBaseline();
    let baseline;
    try {
      baseline = await runSfuBench(
        { name: 'baseline', url: base.url, streamId: 'x', mainPids: [], workerPids: () => [base.workerPid] },
        opts,
      );
    } finally {
      await base.stop();
    }
    const rawChat = await chatBaseline(chatOpts);
    const scratch = await createScratchPostgres();
    let relay;
    try {
      relay = await runRelayBench({ ...opts, via: 'socket', databaseUrl: scratch.url });
    } finally {
      await scratch.drop();
    }

    for (const r of [whipcast[0]!, baseline[0]!, relay.origin[0]!, relay.edge[0]!]) {
      expect(r.joined).toBe(2);
      expect(r.joinErrors).toEqual([]);
      expect(r.kbpsPerViewer).toBeGreaterThan(300);
      expect(r.lossPct).toBeLessThan(5);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.p95).toBeLessThan(1000);
      expect(r.cpu.workers).toBeGreaterThan(0);
    }
    expect(whipcast[0]!.cpu.main).toBeGreaterThan(0);
    for (const c of [chat, rawChat]) {
      expect(c.sent).toBeGreaterThanOrEqual(9);
      expect(c.deliveryPct).toBe(100);
      expect(c.latencyMs.p95).toBeLessThan(1000);
    }
    expect(dvr.failures).toBe(0);
    expect(dvr.seeks[0]!.toFirstFrameMs.p50).toBeLessThan(3000);
    expect(dvr.seeks[0]!.landedBehindTargetMs.max).toBeLessThanOrEqual(1000 + 500); // at most one GOP (+ stamp slack)
    expect(dvr.backToLiveMs.p50).toBeLessThan(3000);

    const report: BenchReport = {
      command: 'test',
      date: new Date().toISOString(),
      machine: { cores: 2, node: process.version },
      options: {},
      whipcast,
      baseline,
      capacity: { whipcast: capacity(whipcast, 400), baseline: capacity(baseline, 400) },
      chat: [chat, rawChat],
      dvr,
      relay,
      notes: [],
    };
    const text = table(report);
    expect(text).toMatch(/ratios against the baseline run/);
    expect(text).toMatch(/of raw uWS publish/);
    expect(text).toMatch(/seek −3 s/);
    expect(text).toMatch(/N=2: via an edge p95 latency [+−][\d.]+ ms/);
    expect(html(report)).toMatch(/<svg/);
  });
});
