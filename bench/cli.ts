/**
 * `npm run bench -- [options]`: whipcast's SFU benchmark against a bare
 * mediasoup baseline, run side by side. See docs/benchmarks.md.
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBaseline } from './baseline.ts';
import { children } from './proc.ts';
import { capacity, table, writeReport, type BenchReport } from './report.ts';
import { prepareChannel, startServer } from './server.ts';
import { runSfuBench, type SfuBenchOptions } from './sfu-bench.ts';

const HELP = `whipcast benchmark

usage: npm run bench -- [options]

  --steps <n,n,…>       viewers per step (default 5,10,20)
  --seconds <s>         measured seconds per step (default 8)
  --ramp <n>            viewer joins per second (default 10)
  --kbps <n>            publisher video bitrate (default 1500)
  --size <WxH>          publisher resolution (default 640x360)
  --keyframe <s>        publisher keyframe interval (default 1)
  --target-ms <ms>      p95 latency target for the capacity figure (default 400)
  --url <url>           benchmark a running whipcast instead of starting one
                        (needs --stream-key and --stream-id; CPU is then not sampled)
  --stream-key <key>    --stream-id <id>
  --no-baseline         skip the bare-mediasoup baseline run
  --out <dir>           where bench.json, bench.html, bench.png go (default bench-results)
  -h, --help

Everything runs on loopback. The bots (libdatachannel) share the machine with
the server: their CPU is reported so the figures can be read accordingly.`;

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '5,10,20' },
    seconds: { type: 'string', default: '8' },
    ramp: { type: 'string', default: '10' },
    kbps: { type: 'string', default: '1500' },
    size: { type: 'string', default: '640x360' },
    keyframe: { type: 'string', default: '1' },
    'target-ms': { type: 'string', default: '400' },
    url: { type: 'string' },
    'stream-key': { type: 'string' },
    'stream-id': { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const [width, height] = values.size!.split('x').map(Number) as [number, number];
let lastLen = 0;
const progress = (text: string) => {
  if (!process.stderr.isTTY) return;
  const line = `\r[bench] ${text}`;
  process.stderr.write(line.padEnd(lastLen));
  lastLen = line.length;
};
const opts: SfuBenchOptions = {
  steps: values
    .steps!.split(',')
    .map(Number)
    .filter((n) => n > 0),
  seconds: Number(values.seconds),
  rampPerSecond: Number(values.ramp),
  kbps: Number(values.kbps),
  width,
  height,
  keyframeInterval: Number(values.keyframe),
  latencyTargetMs: Number(values['target-ms']),
  progress,
};

// The server and its worker get priority over the bots: the bots are the measuring instrument.
try {
  (await import('node:os')).setPriority(process.pid, 5);
} catch {}

const report: BenchReport = {
  command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  machine: { cores: availableParallelism(), node: process.version },
  options: { ...opts, progress: undefined },
  whipcast: [],
  baseline: [],
  capacity: { whipcast: 0, baseline: 0 },
  notes: [
    'Bots and server share this machine; "bots CPU" is the bench process (bots + baseline glue), at nice 5.',
    'Worker CPU is read from /proc for the mediasoup worker processes; main is the whipcast Node process.',
    "Latency = capture stamp in each frame (SEI) to reassembly at the bot, same clock: it includes the bots' own queueing.",
    'TTFF = WHEP POST to the first complete keyframe with SPS/PPS at the bot.',
  ],
};

console.error(
  `[bench] steps ${opts.steps.join(', ')} · ${opts.seconds} s each · ${opts.kbps} kbps ${values.size} · keyframe ${opts.keyframeInterval} s`,
);
if (values.url) {
  if (!values['stream-key'] || !values['stream-id']) throw new Error('--url needs --stream-key and --stream-id');
  report.whipcast = await runSfuBench(
    { name: 'whipcast', url: values.url, streamId: values['stream-id'], key: values['stream-key'], mainPid: null, workerPids: () => [] },
    opts,
  );
} else {
  const server = await startServer();
  try {
    const ch = await prepareChannel(server.url);
    report.whipcast = await runSfuBench(
      {
        name: 'whipcast',
        url: server.url,
        streamId: ch.streamId,
        key: ch.key,
        mainPid: server.pid,
        workerPids: () => (server.pid ? children(server.pid, /mediasoup/) : []),
      },
      opts,
    );
  } finally {
    await server.stop();
  }
}
if (!values['no-baseline']) {
  const base = await startBaseline();
  try {
    report.baseline = await runSfuBench(
      { name: 'baseline', url: base.url, streamId: 'baseline', mainPid: null, workerPids: () => [base.workerPid] },
      opts,
    );
  } finally {
    await base.stop();
  }
}
report.capacity = { whipcast: capacity(report.whipcast, opts.latencyTargetMs), baseline: capacity(report.baseline, opts.latencyTargetMs) };
if (process.stderr.isTTY) process.stderr.write('\n');
const dir = resolve(values.out!);
await mkdir(dir, { recursive: true });
const files = await writeReport(dir, report);
console.log(table(report));
console.log(`\nwrote ${files.json}, ${files.html}${files.png ? `, ${files.png}` : ''}`);
process.exit(0);
