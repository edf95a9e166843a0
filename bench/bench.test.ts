/** Smoke test of the benchmarks: a tiny run of each mode against whipcast (child process) and its baseline gives sane figures. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBaseline, type Baseline } from './baseline.ts';
import { runC2pBench } from './c2p-bench.ts';
import { chatBaseline, chatWhipcast, type ChatBenchOptions } from './chat-bench.ts';
import { createScratchPostgres } from '@whipcast/db/testing';
import { runDvrBench } from './dvr-bench.ts';
import { dvrScaleTable, runDvrScaleBench } from './dvr-scale-bench.ts';
import { parseMixed } from './impair.ts';
import { runRelayBench } from './relay-bench.ts';
import { runRecordingBench } from './recording-bench.ts';
import { html, table, type BenchReport } from './report.ts';
import { prepareChannel, startServer, whipcastTarget, type BenchServer } from './server.ts';
import { runSoakPart } from './soak-bench.ts';
import { BOTS_SATURATED, capacity, runSfuBench, type SfuBenchOptions, type StepResult } from './sfu-bench.ts';

const opts: SfuBenchOptions = {
  steps: [2],
  seconds: 2,
  rampPerSecond: 10,
  kbps: 600,
  width: 320,
  height: 180,
  keyframeInterval: 1,
  latencyTargetMs: 400,
  // the bots have their first frames when the settle starts: the checks below need no longer
  settleSeconds: 0.5,
  // one bot reassembles frames, the other only counts; then both leave and memory is sampled again
  sampleEvery: 2,
  drainSeconds: 1,
  progress: () => {},
};
/** How far back the dvrscale smoke's bots seek: the CLI's smallest (two GOPs of the smoke's stream). */
const BACK_MS = 2000;
const MIXED = 'loss=10,delay=40,jitter=5,after=0';
const chatOpts: ChatBenchOptions = { sockets: 10, messagesPerSecond: 10, seconds: 1, progress: () => {} };

/** One whipcast process (as `npm run bench` starts it) and one bare-mediasoup baseline for the smokes that need no other: each on a channel of its own, one after another. */
let server: BenchServer;
let base: Baseline;
const baselineTarget = () => ({ name: 'baseline', url: base.url, streamId: 'x', mainPids: [], workerPids: () => [base.workerPid] });

beforeAll(async () => {
  [server, base] = await Promise.all([
    startServer({ CHAT_RATE_PER_10S: '1000', WS_MESSAGES_PER_SECOND: '10000', DVR_MAX_REPLAYS: '0' }),
    startBaseline(),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.stop(), base?.stop()]);
});

describe('bench (smoke)', () => {
  it('measures whipcast and its baselines side by side: SFU, chat, DVR, relay between nodes', { timeout: 180_000 }, async () => {
    const ch = await prepareChannel(server.url);
    const whipcastRun = await runSfuBench(whipcastTarget(server, ch, { via: 'socket' }), opts);
    const chat = await chatWhipcast(server.url, ch.streamId, ch.token, chatOpts);
    const dvr = await runDvrBench(server.url, ch.streamId, ch.key, {
      viewers: 1,
      offsetsMs: [2000],
      keyframeInterval: 1,
      video: { kbps: 600, width: 320, height: 180 },
      progress: () => {},
    });
    const baselineRun = await runSfuBench(baselineTarget(), opts);
    // a mixed run: one bot of two behind 10 % loss and 40 ± 5 ms once it has connected (through that link from the
    // first packet, 1 in 200 of these bots failed to connect and 4 took over 7.5 s: DTLS flights resent after 1, 2, 4,
    // 8 s), the other on a clean link
    const mixed = await runSfuBench(baselineTarget(), {
      ...opts,
      sampleEvery: 1,
      drainSeconds: 0,
      impaired: parseMixed(`1/2:${MIXED}`),
    });
    const rawChat = await chatBaseline(chatOpts);
    const scratch = await createScratchPostgres();
    let relay;
    try {
      relay = await runRelayBench({ ...opts, via: 'socket', databaseUrl: scratch.url });
    } finally {
      await scratch.drop();
    }

    const whipcast = whipcastRun.steps;
    const baseline = baselineRun.steps;
    for (const r of [whipcast[0]!, baseline[0]!, relay.origin[0]!, relay.edge[0]!]) {
      expect(r.joined).toBe(2);
      expect(r.sampledBots).toBe(1);
      // the counting bot is a native one (testkit NativeBots), and it counted like the sampled one: no freeze, bitrate
      expect(r.nativeBots).toBe(1);
      // every bot, the counting-only one included, received frames throughout
      expect(r.freezes).toEqual({ viewers: 0, count: 0, frozenPct: 0 });
      expect(r.botsCoreShare).toBeGreaterThan(0);
      expect(r.joinErrors).toEqual([]);
      expect(r.kbpsPerViewer).toBeGreaterThan(300);
      expect(r.lossPct).toBeLessThan(5);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.p95).toBeLessThan(1000);
      expect(r.cpu.workers).toBeGreaterThan(0);
    }
    expect(whipcast[0]!.cpu.main).toBeGreaterThan(0);
    for (const m of [whipcastRun.memory, baselineRun.memory]) {
      expect(m.peakViewers).toBe(2);
      expect(m.idleMb.workers).toBeGreaterThan(0);
      expect(m.drainedMb?.workers).toBeGreaterThan(0);
      expect(Number.isFinite(m.notReturnedMb!.workers)).toBe(true);
    }
    expect(whipcastRun.memory.idleMb.main).toBeGreaterThan(0);
    // a bot that failed to join is left out of the groups: say why first
    expect(mixed.steps[0]!.joinErrors, 'the mixed run: every bot joined and got a decodable frame').toEqual([]);
    const [impaired, clean] = mixed.steps[0]!.groups!;
    expect(impaired).toMatchObject({ name: `impaired (${MIXED})`, viewers: 1, sampledBots: 1 });
    expect(mixed.steps[0]!.nativeBots).toBe(0); // behind relays: libdatachannel peers
    expect(clean).toMatchObject({ name: 'unimpaired', viewers: 1, linkDropPct: null });
    expect(impaired!.linkDropPct).toBeGreaterThan(2); // the relay really drops…
    expect(impaired!.lossPct).toBeGreaterThan(0); // …and the bot sees it
    expect(impaired!.latencyMs.p50 - clean!.latencyMs.p50).toBeGreaterThan(25); // and the delay
    expect(clean!.lossPct).toBeLessThan(1);
    expect(whipcastRun.memory.viewersLeft).toBe(0); // both bots really left
    expect(baselineRun.memory.viewersLeft).toBeNull();
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
      memory: { whipcast: whipcastRun.memory, baseline: baselineRun.memory },
      chat: [chat, rawChat],
      dvr,
      relay,
      notes: [],
    };
    const text = table(report);
    expect(text).toMatch(/ratios against the baseline run/);
    expect(table({ ...report, whipcast: mixed.steps, baseline: [] })).toMatch(
      /impaired \(loss=10,delay=40,jitter=5,after=0\)\s+1\s+\d+\s+[\d.]+/,
    );
    expect(text).toMatch(/whipcast: 0 → 2 viewers: Node \d+ → \d+ MB, [-\d.]+ MB\/viewer, \d+ MB 1 s after all left/);
    expect(text).toMatch(/of raw uWS publish/);
    expect(text).toMatch(/seek −2 s/);
    expect(text).toMatch(/N=2: via an edge p95 latency [+−][\d.]+ ms/);
    expect(html(report)).toMatch(/<svg/);
  });

  it('soak mode: every viewer of every channel judged continuous, in the report', { timeout: 60_000 }, async () => {
    const part = await runSoakPart({
      nodes: 1,
      channels: 2,
      viewersPerChannel: 2,
      seconds: 3,
      kbps: 600,
      width: 320,
      height: 180,
      keyframeInterval: 1,
      via: 'whep',
      progress: () => {},
    });
    expect(part).toMatchObject({ name: 'one node', viewers: 4, joined: 4, ok: true, failures: [], botProcesses: 2 });
    expect(part.framesPerSecond.video).toBeGreaterThan(20);
    expect(part.worstGapMs.audio).toBeLessThan(1000);
    const report: BenchReport = {
      command: 'test',
      date: new Date().toISOString(),
      machine: { cores: 2, node: process.version },
      options: {},
      whipcast: [],
      baseline: [],
      capacity: { whipcast: capacity([], 400), baseline: capacity([], 400) },
      chat: [],
      dvr: null,
      soak: [part],
      notes: [],
    };
    expect(table(report)).toMatch(/one node\s+2\s+on\s+4\/4\s+\d+\s+every viewer continuous/);
    expect(table({ ...report, soak: [{ ...part, ok: false, failures: ['c1-v0@node: no video frame for 1500 ms'] }] })).toMatch(
      /1 FAILED[\s\S]*one node: c1-v0@node: no video frame for 1500 ms/,
    );
  });

  it(
    "dvrscale mode: the same steps live, seeked back (watching the past) and mixed, with the live viewers' latency",
    { timeout: 120_000 },
    async () => {
      const ch = await prepareChannel(server.url);
      const r = await runDvrScaleBench(whipcastTarget(server, ch, { via: 'socket' }), { ...opts, backMs: BACK_MS, residentLive: 1 });
      const [live] = r.live;
      const [dvr] = r.dvr;
      for (const s of [live!, dvr!]) {
        expect(s).toMatchObject({ viewers: 2, joined: 2, joinFailures: 0 });
        expect(s.freezes.viewers).toBe(0);
        expect(s.lossPct).toBeLessThan(5);
        expect(s.kbpsPerViewer).toBeGreaterThan(300);
      }
      expect(live!.timeShifted).toBeUndefined();
      expect(live!.latencyMs.p95).toBeLessThan(1000);
      // the dvr bots really watch the past: their frames were captured ≥ 2 s (the seek lands on the keyframe before) ago
      expect(dvr!.timeShifted).toBe(2);
      expect(dvr!.behindLiveMs!.min).toBeGreaterThan(BACK_MS - 200);
      expect(dvr!.behindLiveMs!.p50).toBeLessThan(BACK_MS + 1000 + 1000); // within a GOP (+ slack)
      // their latency: how late frames come against the replay's schedule (a frame's age less its seek's landing age)
      expect(dvr!.latencyMs.p50).toBeGreaterThan(0);
      expect(dvr!.latencyMs.p95).toBeLessThan(1000);
      expect(r.capacity.dvr.viewers).toBe(2);
      // mixed: a step without dvr viewers, then one with; the resident live bot is measured apart
      expect(r.mixed.map((s) => s.viewers)).toEqual([0, 2]);
      const [liveGroup, dvrGroup] = r.mixed[1]!.groups!;
      expect(liveGroup).toMatchObject({ name: 'live', viewers: 1, sampledBots: 1 });
      expect(dvrGroup).toMatchObject({ name: 'dvr −2 s', viewers: 2 });
      expect(liveGroup!.latencyMs.p95).toBeLessThan(1000);
      expect(r.mixed[1]!.behindLiveMs!.min).toBeGreaterThan(BACK_MS - 200);
      const text = dvrScaleTable(r, BOTS_SATURATED).join('\n');
      expect(text).toMatch(/dvr −2 s\s+2\s+0\s+\d+%/);
      expect(text).toMatch(/dvr scale capacity .* live ≥ 2 .* dvr ≥ 2 .* dvr \/ live 100%/);
      expect(text).toMatch(/the live viewers' p95 against the step without dvr viewers: 2: [-\d.]+ ms/);
    },
  );

  it(
    'recording mode: server CPU and disk writes with recording off and on, the cost per recorded channel',
    { timeout: 90_000 },
    async () => {
      const r = await runRecordingBench({
        channels: 1,
        seconds: 3,
        kbps: 600,
        width: 320,
        height: 180,
        keyframeInterval: 1,
        progress: () => {},
      });
      expect([r.off.recording, r.on.recording]).toEqual([false, true]);
      for (const run of [r.off, r.on]) {
        expect(run.cpu.workers).toBeGreaterThan(0);
        expect(run.cpu.main).toBeGreaterThan(0);
      }
      // 600 kbit/s + Opus ≈ 80 kB/s reach the disk only with recording on
      expect(r.on.filesKBps - r.off.filesKBps).toBeGreaterThan(50);
      expect(r.on.writeKBps - r.off.writeKBps).toBeGreaterThan(50);
      expect(r.perChannel.gbPerHour).toBeGreaterThan(0.15);
      // the session's end builds the download file: about the session again (≈ 6 s at 80 kB/s)
      expect(r.finish.recordings).toBe(1);
      expect(r.finish.writtenMb).toBeGreaterThan(0.2);
      const report: BenchReport = {
        command: 'test',
        date: new Date().toISOString(),
        machine: { cores: 2, node: process.version },
        options: {},
        whipcast: [],
        baseline: [],
        capacity: { whipcast: capacity([], 400), baseline: capacity([], 400) },
        chat: [],
        dvr: null,
        recording: r,
        notes: [],
      };
      const text = table(report);
      expect(text).toMatch(/^\s*off\s+1\s+\d+\s+[\d.]+%/m);
      expect(text).toMatch(/^\s*on\s+1\s+\d+\s+[\d.]+%/m);
      expect(text).toMatch(/per recorded channel: [+−][\d.]+% of a core, \+\d+ kB\/s written \([\d.]+ GB\/h of recording\)/);
      expect(text).toMatch(/end of 1 recorded session: download files built in [\d.]+ s/);
    },
  );

  it(
    'simulcast: the bots report their layer; a capped bot gets a lower one, a clean one the top (whipcast and baseline)',
    { timeout: 120_000 },
    async () => {
      // OBS's 3-layer ladder of 640x360 at 1200 kbit/s: 640x360 1200, 426x240 800, 212x120 400; one bot of two
      // behind 700 kbit/s, where only the lowest layer fits
      const sim: SfuBenchOptions = {
        ...opts,
        kbps: 1200,
        width: 640,
        height: 360,
        simulcast: 3,
        // the clean bot's estimate needs these seconds to climb past the lowest layer
        settleSeconds: 2,
        seconds: 4,
        sampleEvery: 1,
        drainSeconds: 0,
        impaired: parseMixed('1/2:kbps=700'),
      };
      const ch = await prepareChannel(server.url);
      const whipcastRun = await runSfuBench(whipcastTarget(server, ch, { via: 'socket' }), sim);
      const baselineRun = await runSfuBench(baselineTarget(), sim);
      for (const step of [whipcastRun.steps[0]!, baselineRun.steps[0]!]) {
        const [capped, clean] = step.groups!;
        console.log(
          `simulcast smoke: layers ${JSON.stringify(step.layers)}, capped ${capped!.kbpsPerViewer.toFixed(0)} kbit/s, clean ${clean!.kbpsPerViewer.toFixed(0)} kbit/s`,
        );
        // the capped bot on the lowest layer; the clean one above it (the estimate grows from mediasoup's 600 kbit/s
        // start, and the top layer may come a keyframe or two after the few seconds measured)
        expect(capped).toMatchObject({ name: 'impaired (kbps=700)', layers: { '120p': 1 } });
        expect(clean).toMatchObject({ name: 'unimpaired', viewers: 1 });
        expect(['360p', '240p']).toContain(Object.keys(clean!.layers ?? {})[0]);
        expect(capped!.kbpsPerViewer).toBeLessThan(700);
        expect(clean!.kbpsPerViewer).toBeGreaterThan(700);
      }
      const report: BenchReport = {
        command: 'test',
        date: new Date().toISOString(),
        machine: { cores: 2, node: process.version },
        options: { simulcast: 3 },
        whipcast: whipcastRun.steps,
        baseline: baselineRun.steps,
        capacity: { whipcast: capacity(whipcastRun.steps, 400), baseline: capacity(baselineRun.steps, 400) },
        chat: [],
        dvr: null,
        notes: [],
      };
      const text = table(report);
      expect(text).toMatch(/whipcast\s+2\s+.*\s(360|240)p:1 120p:1$/m);
      expect(text).toMatch(/impaired \(kbps=700\)\s+1\s+.*\s120p:1$/m);
      expect(text).toMatch(/layers = viewers per simulcast layer/);
    },
  );

  it(
    'c2p mode: click to picture of the channel page and of the bare WebRTC page, read off the picture, with the ratio',
    { timeout: 120_000 },
    async () => {
      const r = await runC2pBench({ samples: 2, video: { kbps: 600, width: 320, height: 180, keyframeInterval: 1 }, progress: () => {} });
      for (const page of [r.whipcast, r.baseline]) {
        expect(page.samples).toBe(2);
        expect(page.p50).toBeGreaterThan(0);
        expect(page.p95).toBeGreaterThanOrEqual(page.p50);
      }
      expect(r.ratioP50).toBeCloseTo(r.whipcast.p50 / r.baseline.p50);
      // the channel page watched with its one rtc.watch; the bare page got as far as DTLS
      const step = (s: typeof r.whipcast, name: string) => s.steps.find((x) => x.step === name)?.reached;
      expect(step(r.whipcast, 'whipcast:rtc.watch')).toBe(2);
      expect(step(r.baseline, 'dtlsConnected')).toBe(2);
      const report: BenchReport = {
        command: 'test',
        date: new Date().toISOString(),
        machine: { cores: 2, node: process.version },
        options: {},
        whipcast: [],
        baseline: [],
        capacity: { whipcast: capacity([], 400), baseline: capacity([], 400) },
        chat: [],
        dvr: null,
        c2p: r,
        notes: [],
      };
      const text = table(report);
      expect(text).toMatch(/whipcast channel page\s+2\s+\d+\s+\d+/);
      expect(text).toMatch(/bare WebRTC page \(baseline\)\s+2\s+\d+\s+\d+/);
      expect(text).toMatch(/click to picture p50 ×[\d.]+ of the bare page/);
    },
  );

  it('refuses a capacity figure when the bots were saturated at or before the knee', () => {
    const step = (viewers: number, bots: number, lossPct = 0): StepResult => ({
      viewers,
      joined: viewers,
      joinFailures: 0,
      joinErrors: [],
      cpu: { main: 0.1, workers: 0.3, bench: bots, natives: 0 },
      botsCoreShare: bots,
      sampledBots: 1,
      nativeBots: viewers - 1,
      rssMb: { main: 100, workers: 50 },
      kbpsPerViewer: 2600,
      lossPct,
      latencyMs: { p50: 5, p95: 20, p99: 30 },
      ttffMs: { p50: 100, p95: 200 },
      freezes: { viewers: 0, count: 0, frozenPct: 0 },
      publisherNacks: 0,
      publisherPlis: 0,
    });
    // a knee the server set: loss at 200 with the bots at half their core
    expect(capacity([step(100, 0.3), step(200, 0.5, 3)], 400)).toMatchObject({
      viewers: 100,
      kneeFound: true,
      botsSaturatedAt: null,
      text: '100',
    });
    // the same loss with the bots saturated: refused
    const refused = capacity([step(100, 0.3), step(200, 0.95, 3)], 400);
    expect(refused).toMatchObject({ viewers: 100, botsSaturatedAt: 200 });
    expect(refused.text).toMatch(/^capacity not measurable: bots saturated at 200 \(95% of their cores\)/);
    // saturated before any failure: refused too, even though every step held
    expect(capacity([step(100, 0.5), step(200, BOTS_SATURATED + 0.01)], 400).text).toMatch(/bots saturated at 200/);
    // saturation after a real knee does not matter
    expect(capacity([step(100, 0.3, 2), step(200, 0.99, 9)], 400)).toMatchObject({ viewers: 0, botsSaturatedAt: null, kneeFound: true });
    // no knee, bots fine: a lower bound
    expect(capacity([step(100, 0.3), step(200, 0.6)], 400).text).toBe('≥ 200 (no knee up to the largest step tried)');

    const report: BenchReport = {
      command: 'test',
      date: new Date().toISOString(),
      machine: { cores: 2, node: process.version },
      options: { sampleEvery: 10 },
      whipcast: [step(100, 0.3), step(200, 0.95, 3)],
      baseline: [step(100, 0.3), step(200, 0.9)],
      capacity: { whipcast: refused, baseline: capacity([step(100, 0.3), step(200, 0.9)], 400) },
      chat: [],
      dvr: null,
      notes: [],
    };
    const text = table(report);
    expect(text).toMatch(/ {2}whipcast: capacity not measurable: bots saturated at 200/);
    expect(text).not.toMatch(/layers/); // no simulcast layers yet, so no column
    expect(text).toMatch(/95% SAT/);
    expect(text).toMatch(/N=200: .* \(bots saturated: not a server figure\)/);
    expect(html(report)).toMatch(/<b>Capacity<\/b>: whipcast capacity not measurable: bots saturated at 200/);
  });
});
