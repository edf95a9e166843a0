/**
 * `npm run bench -- [options]`: whipcast's SFU, chat and DVR benchmarks, each
 * beside a baseline run (bare mediasoup, raw uWS publish, live join), and
 * recording beside the same channels not recorded. See docs/benchmarks.md.
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBaseline } from './baseline.ts';
import { runBusBench } from './bus-bench.ts';
import { runC2pBench } from './c2p-bench.ts';
import { chatBaseline, chatWhipcast, type ChatBenchOptions } from './chat-bench.ts';
import { runDvrBench } from './dvr-bench.ts';
import { runDvrScaleBench } from './dvr-scale-bench.ts';
import { runRecordingBench } from './recording-bench.ts';
import { runRelayBench } from './relay-bench.ts';
import { runSoakPart, type SoakPartOptions } from './soak-bench.ts';
import { children, pin, renice } from './proc.ts';
import { table, writeReport, type BenchReport } from './report.ts';
import { prepareChannel, startServer, whipcastTarget } from './server.ts';
import { parseImpairment, parseMixed } from './impair.ts';
import { BOTS_SATURATED, capacity, runSfuBench, type SfuBenchOptions } from './sfu-bench.ts';

const HELP = `whipcast benchmark

usage: npm run bench -- [options]

  --mode <m,m,…>        sfu, chat, dvr, dvrscale, relay, soak, recording, c2p, bus (default sfu,chat,dvr)

 sfu: one OBS-like publisher, N viewer bots per step
  --steps <n,n,…>       viewers per step (default 5,10,20)
  --seconds <s>         measured seconds per step (default 8)
  --ramp <n>            viewer joins per second (default 10)
  --kbps <n>            publisher video bitrate (default 2500)
  --size <WxH>          publisher resolution (default 1280x720)
  --keyframe <s>        publisher keyframe interval (default 2)
  --simulcast <n>       the publisher sends n simulcast layers as OBS 32.1 does (sizes and bitrates in
                        steps of 1/n of --size and --kbps; 3 at 720p: 2500 + 1666 + 833 kbps); the bots
                        send congestion control feedback like a browser and report the layer they get
                        (default 1)
  --target-ms <ms>      p95 latency target for the capacity figure (default 400)
  --via <whep|socket>   how whipcast's bots join (default whep; the baseline always uses WHEP)
  --sample <k>          1 bot in k reassembles frames (latency, TTFF); the rest only count
                        packets, loss and freezes, which costs the bots less (default 10; 1 = all)
  --bots <b>            what the counting bots are: native (receive-only peers in one C process,
                        counting RTP headers; the default) or datachannel (libdatachannel peers);
                        simulcast, --impair/--mixed and dvrscale runs always use libdatachannel
  --drain <s>           after the last step every viewer leaves; RSS is sampled again s later
                        (default 5; 0 = no drain)
  --impair <spec>       every bot watches through a bad link (a UDP relay per bot), e.g.
                        loss=5,delay=40,jitter=10,kbps=1000 (loss %, burst = mean loss burst in
                        packets, delay/jitter ms, kbps cap, queue = ms of the cap buffered,
                        after = s from the bot's connection until the link turns bad; unset: from
                        its first packet, so ICE and DTLS set-up suffer too)
  --mixed <n/d:spec>    n in d bots behind that link, the rest not, reported side by side
                        (e.g. 1/3:kbps=1000)

 chat: K sockets in one room, one sender at M messages/s
  --chat-sockets <k>    (default 200)
  --chat-rate <m>       messages per second (default 20)
  --chat-seconds <s>    (default 5)

 dvr: socket viewer bots seek back and return to live
  --dvr-viewers <n>     (default 6)
  --dvr-offsets <s,s,…> seconds behind live (default 5,20; the publisher runs that long first)

 dvrscale: the sfu steps of socket bots three times on one server: all live, all
 seeked back (each keeps watching the past at 1×), and mixed (live bots measured for
 latency while the time-shifted ones ramp up) (uses --steps, --seconds, --ramp, --sample, …)
  --dvr-back <s>        how far back the time-shifted bots seek (default 20)
  --dvr-live <m>        live bots in the mixed run (default 10; 0 = no mixed run)

 relay: two nodes on one Postgres; the sfu steps join the origin, then an edge
  --database-url <url>  an empty Postgres database (default: a throwaway cluster, needs Debian's postgresql)

 soak: many channels and viewers for a long time, on one node, then on two (one Postgres);
 every viewer must get an audio and a video frame at least every second, and lose < 1%
 (uses --kbps, --size, --keyframe, --via, --database-url)
  --soak-channels <n>   channels on one node (default 10; 0 = skip)
  --soak-viewers <n>    viewers of each channel (default 10)
  --soak-cluster-channels <n>  channels across two nodes, published on each in turn
                        (default 3; 0 = skip)
  --soak-cluster-viewers <n>   viewers of each of them on each node (default 5)
  --soak-seconds <s>    measured seconds of the one-node part (default 600)
  --soak-cluster-seconds <s>  measured seconds of the two-node part (default: --soak-seconds)
  --soak-bots <n>       viewer bots per bots process (default 25)
  --soak-recording on|off  channels record their sessions ("Save past broadcasts", on by default)

 recording: N channels published with "Save past broadcasts" off, then N with it on;
 server CPU and disk writes of each run, the cost per recorded channel, and the end of the
 recorded sessions (download files built) (uses --kbps, --size, --keyframe)
  --rec-channels <n>    channels in each run (default 4)
  --rec-seconds <s>     measured seconds of each run (default 30)

 c2p: click to picture in Chromium (navigation start → the stream's first picture), whipcast's
 channel page and a bare WebRTC page (the baseline) visited in turn, each in a fresh context;
 needs the web app built (npm run build -w web) (uses --kbps, --size, --keyframe)
  --c2p-samples <n>     visits of each page (default 12)

  bus: the cluster bus (Postgres LISTEN/NOTIFY) at cluster sizes: K simulated nodes, each a
 real postgresBus with its own pool, publish presence events at R/s in all; every node gets
 every other node's (uses --database-url; default a throwaway Debian Postgres, whose CPU is read)
  --bus-nodes <k,k,…>   node counts, one run each; 2 is the baseline (default 2,10,45)
  --bus-rates <r,r,…>   notifications per second in all, one step each (default 250,500,1000,2000,4000)
  --bus-seconds <s>     measured seconds per step (default 5)

 general
  --url <url>           benchmark a running whipcast instead of starting one
                        (needs --stream-key and --stream-id; CPU is then not sampled)
  --stream-key <key>    --stream-id <id>
  --no-baseline         skip the bare-mediasoup baseline run
  --cpu-prof <dir>      profile the whipcast server (sfu, chat, dvr, dvrscale): node --cpu-prof
                        writes a .cpuprofile there when it stops
  --node-args <args>    extra arguments to the whipcast server's node, space-separated, after the start
                        command's own (e.g. --node-args=--max-semi-space-size=16 for V8's default young
                        generation)
  --no-pin              do not pin the server (and its workers) to CPU 0 and the bots to the other CPUs
  --out <dir>           where bench.json, bench.html, bench.png go (default bench-results)
  -h, --help

Everything runs on loopback. The bots (libdatachannel) share the machine with
the server: their CPU is reported so the figures can be read accordingly.`;

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '5,10,20' },
    seconds: { type: 'string', default: '8' },
    ramp: { type: 'string', default: '10' },
    kbps: { type: 'string', default: '2500' },
    size: { type: 'string', default: '1280x720' },
    keyframe: { type: 'string', default: '2' },
    simulcast: { type: 'string', default: '1' },
    sample: { type: 'string', default: '10' },
    bots: { type: 'string', default: 'native' },
    drain: { type: 'string', default: '5' },
    impair: { type: 'string' },
    mixed: { type: 'string' },
    'target-ms': { type: 'string', default: '400' },
    mode: { type: 'string', default: 'sfu,chat,dvr' },
    via: { type: 'string', default: 'whep' },
    'chat-sockets': { type: 'string', default: '200' },
    'chat-rate': { type: 'string', default: '20' },
    'chat-seconds': { type: 'string', default: '5' },
    'dvr-viewers': { type: 'string', default: '6' },
    'dvr-offsets': { type: 'string', default: '5,20' },
    'dvr-back': { type: 'string', default: '20' },
    'dvr-live': { type: 'string', default: '10' },
    'soak-channels': { type: 'string', default: '10' },
    'soak-viewers': { type: 'string', default: '10' },
    'soak-cluster-channels': { type: 'string', default: '3' },
    'soak-cluster-viewers': { type: 'string', default: '5' },
    'soak-seconds': { type: 'string', default: '600' },
    'soak-cluster-seconds': { type: 'string' },
    'soak-bots': { type: 'string', default: '25' },
    'soak-recording': { type: 'string', default: 'on' },
    'rec-channels': { type: 'string', default: '4' },
    'rec-seconds': { type: 'string', default: '30' },
    'c2p-samples': { type: 'string', default: '12' },
    'bus-nodes': { type: 'string', default: '2,10,45' },
    'bus-rates': { type: 'string', default: '250,500,1000,2000,4000' },
    'bus-seconds': { type: 'string', default: '5' },
    url: { type: 'string' },
    'database-url': { type: 'string' },
    'stream-key': { type: 'string' },
    'stream-id': { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'node-args': { type: 'string' },
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
const startedAt = performance.now();
let estimatedSeconds = 60;
/** A progress bar (time against the run's estimated length) and what is happening, on a terminal. */
const progress = (text: string) => {
  if (!process.stderr.isTTY) return;
  const done = Math.min(0.99, (performance.now() - startedAt) / 1000 / estimatedSeconds);
  const bar = '█'.repeat(Math.round(done * 24)).padEnd(24, '░');
  const line = `\r[bench] ${bar} ${String(Math.round(done * 100)).padStart(2)}%  ${text}`;
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
  simulcast: Number(values.simulcast),
  latencyTargetMs: Number(values['target-ms']),
  sampleEvery: Number(values.sample),
  bots: values.bots === 'datachannel' ? 'datachannel' : 'native',
  drainSeconds: Number(values.drain),
  progress,
};
if (!(opts.sampleEvery! >= 1)) throw new Error('--sample is a whole number ≥ 1');
if (values.bots !== 'native' && values.bots !== 'datachannel') throw new Error('--bots is native or datachannel');
if (!(opts.drainSeconds! >= 0)) throw new Error('--drain is seconds ≥ 0');
if (!(Number.isInteger(opts.simulcast) && opts.simulcast! >= 1 && opts.simulcast! <= 4))
  throw new Error('--simulcast is 1 to 4 layers (OBS 32.1 sends up to 4)');
if (values.impair && values.mixed) throw new Error('--impair (every bot) or --mixed (a share), not both');
if (values.impair) opts.impaired = { num: 1, den: 1, impairment: parseImpairment(values.impair) };
if (values.mixed) opts.impaired = parseMixed(values.mixed);

const modes = new Set(values.mode!.split(','));
for (const m of modes)
  if (!['sfu', 'chat', 'dvr', 'dvrscale', 'relay', 'soak', 'recording', 'c2p', 'bus'].includes(m)) throw new Error(`unknown mode ${m}`);
if (values.via !== 'whep' && values.via !== 'socket') throw new Error('--via is whep or socket');
const via = values.via;
const chatOpts: ChatBenchOptions = {
  sockets: Number(values['chat-sockets']),
  messagesPerSecond: Number(values['chat-rate']),
  seconds: Number(values['chat-seconds']),
  progress,
};
const soakCounts = (
  [
    'soak-channels',
    'soak-viewers',
    'soak-cluster-channels',
    'soak-cluster-viewers',
    'soak-seconds',
    'soak-bots',
    'soak-cluster-seconds',
  ] as const
).map((k) => {
  const n = Number(values[k] ?? values['soak-seconds']);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} is a whole number ≥ 0`);
  return n;
});
const [soakChannels, soakViewers, soakClusterChannels, soakClusterViewers, soakSeconds, soakBots, soakClusterSeconds] = soakCounts as [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];
const recChannels = Number(values['rec-channels']);
const recSeconds = Number(values['rec-seconds']);
if (!(Number.isInteger(recChannels) && recChannels >= 1)) throw new Error('--rec-channels is a whole number ≥ 1');
if (!(recSeconds > 0)) throw new Error('--rec-seconds is seconds > 0');
const c2pSamples = Number(values['c2p-samples']);
if (!(Number.isInteger(c2pSamples) && c2pSamples >= 1)) throw new Error('--c2p-samples is a whole number ≥ 1');
const wholeList = (key: 'bus-nodes' | 'bus-rates', min: number) => {
  const xs = values[key]!.split(',').map(Number);
  if (!xs.every((x) => Number.isInteger(x) && x >= min)) throw new Error(`--${key} is a list of whole numbers ≥ ${min}`);
  return xs;
};
const busNodes = wholeList('bus-nodes', 2);
const busRates = wholeList('bus-rates', 1);
const busSeconds = Number(values['bus-seconds']);
if (!(busSeconds > 0)) throw new Error('--bus-seconds is seconds > 0');
const dvrOffsets = values['dvr-offsets']!.split(',').map((x) => Math.round(Number(x) * 1000));
const dvrBackMs = Math.round(Number(values['dvr-back']) * 1000);
const dvrLive = Number(values['dvr-live']);
if (!(dvrBackMs >= 2000)) throw new Error('--dvr-back is seconds ≥ 2');
if (!(Number.isInteger(dvrLive) && dvrLive >= 0)) throw new Error('--dvr-live is a whole number ≥ 0');
{
  const runs = values['no-baseline'] ? 1 : 2;
  let prev = 0;
  let sfuSeconds = 4;
  for (const n of opts.steps) {
    sfuSeconds += (n - prev) / opts.rampPerSecond + 2 + opts.seconds;
    prev = n;
  }
  const chatSeconds = chatOpts.sockets * 0.005 + chatOpts.seconds + 2;
  const dvrSeconds = Math.max(...dvrOffsets) / 1000 + 4 + Math.ceil(Number(values['dvr-viewers']) / 3) * (2 + dvrOffsets.length);
  estimatedSeconds =
    5 +
    (modes.has('relay') ? sfuSeconds * 2 + 10 : 0) +
    (modes.has('sfu') ? sfuSeconds * runs : 0) +
    (modes.has('chat') ? chatSeconds * runs : 0) +
    (modes.has('dvr') ? dvrSeconds : 0) +
    (modes.has('dvrscale') ? 3 * sfuSeconds + 2 * (dvrBackMs / 1000 + 4) + dvrLive / opts.rampPerSecond + opts.seconds + 2 : 0) +
    (modes.has('recording') ? 2 * (recSeconds + opts.keyframeInterval + 4 + recChannels) + 10 : 0) +
    (modes.has('c2p') ? 20 + c2pSamples * 2 * 1.5 : 0) +
    (modes.has('bus') ? 3 + busNodes.length * (2 + busRates.length * (busSeconds + 1)) : 0) +
    (modes.has('soak')
      ? (soakChannels ? soakSeconds + 15 + (soakChannels * soakViewers) / 10 : 0) +
        (soakClusterChannels ? soakClusterSeconds + 20 + (soakClusterChannels * soakClusterViewers * 2) / 10 : 0)
      : 0);
}

// The server and its workers get priority over the bots (the measuring instrument) and, with two
// or more cores, a core of their own: the bots stay off it.
try {
  (await import('node:os')).setPriority(process.pid, 5);
} catch {}
const cores = availableParallelism();
const pinning = !values['no-pin'] && cores >= 2 && pin(process.pid, `1-${cores - 1}`);
// the servers were started by this process and inherited its nice 5: they go back to 0, ahead of the bots
const pinServer = (pids: number[]) => {
  for (const p of pids) {
    if (pinning) pin(p, '0');
    renice(p, 0);
  }
};
// the bots' CPU is judged against the cores they may use: all but CPU 0 when pinned, else every core
opts.botCores = pinning ? cores - 1 : cores;

const report: BenchReport = {
  command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  machine: { cores: availableParallelism(), node: process.version },
  options: {
    ...opts,
    progress: undefined,
    via,
    modes: [...modes],
    impaired: opts.impaired ? `${opts.impaired.num}/${opts.impaired.den}:${opts.impaired.impairment.spec}` : undefined,
  },
  whipcast: [],
  baseline: [],
  capacity: { whipcast: capacity([], 0), baseline: capacity([], 0) },
  memory: { whipcast: null, baseline: null },
  chat: [],
  dvr: null,
  relay: null,
  recording: null,
  notes: [
    'Bots and server share this machine; "bots CPU" is the bench process (bots + baseline glue) and its native bots process, at nice 5, as a share of the cores the bots may use.',
    `No capacity is called when the bots used more than ${Math.round(BOTS_SATURATED * 100)}% of their cores at or before the knee: the instrument, not the server, may have set it.`,
    `1 bot in ${opts.sampleEvery} reassembles frames and reads capture stamps (latency, TTFF); every bot counts packets, sequence gaps (loss), bytes and frame ends (freezes).`,
    opts.bots === 'native' && opts.simulcast === 1 && !opts.impaired
      ? 'The sampled bots are libdatachannel peers; the counting ones are native (one C process: ICE, DTLS, RTP counted from the cleartext header, no decryption; testkit NativeBots).'
      : 'Every bot is a libdatachannel peer.',
    ...(opts.impaired
      ? [
          `Impaired bots (${opts.impaired.num} in ${opts.impaired.den}, ${opts.impaired.impairment.spec}): each watches through its own userspace UDP relay in this process (testkit UdpRelay), which the bots' CPU includes; "link drop" is what the relays dropped, "loss" what the bots still missed.`,
        ]
      : []),
    'Memory: RSS with the publisher live and no viewer, at the last step (per added viewer), and after every viewer left (WHEP DELETE or socket close) and the drain time passed.',
    ...(process.env.DATABASE_URL
      ? []
      : [
          'The embedded database is a separate Postgres server (≈ 40 MB idle over its processes, plus ≈ 16 MB per open pool connection): it is not counted in main or worker RSS.',
        ]),
    pinning
      ? `Pinned: server and mediasoup workers on CPU 0, bots on CPU${cores > 2 ? `s 1-${cores - 1}` : ' 1'}; server CPU above 100% of one core is impossible, so a saturated CPU 0 shows as loss and latency.`
      : 'Not pinned: server, workers and bots share every CPU.',
    'Worker CPU is read from /proc for the mediasoup worker processes; main is the whipcast Node process.',
    "Latency = capture stamp in each frame (SEI) to reassembly at the bot, same clock: it includes the bots' own queueing.",
    `TTFF = join request (${via === 'whep' ? 'WHEP POST' : 'socket rtc.capabilities'}) to the first complete keyframe with SPS/PPS at the bot.`,
    "Chat latency = send time in the message text to receipt at each of the K sockets (whipcast persists each message before broadcasting it). The raw uWS baseline runs inside the bench process, on the bots' CPU.",
    'DVR: seek = dvr.seek request to the first keyframe from the requested time; the live join of the same bots is its baseline.',
    'DVR scale: socket bots; "dvr" bots join live, seek back and keep watching the past at 1× (their capture stamps are that old: "behind live" instead of latency; their TTFF is join to the first frame after the seek); the mixed run\'s live bots all reassemble frames.',
    'Relay: origin and edge are two whipcast processes on this machine sharing a throwaway Postgres; the publisher goes to the origin; "server CPU" of the edge run is both nodes.',
    'Recording: one whipcast process, N OBS-like publishers in the bench process; the same N channels\' worth measured with "Save past broadcasts" off, then on; disk writes are /proc/<pid>/io write_bytes of the server and its workers.',
    "Click to picture (c2p): one whipcast process serving the built web app and, beside it, a bare page that only watches over WebRTC with the same protocol (socket, mediasoup-client device, one rtc.watch); Chromium opens each in a fresh context, in turn, and the picture time is when the first frame whose number reads off the picture was presented (requestVideoFrameCallback), from navigation start on the page's clock.",
    "Bus: K simulated nodes in the bench process, each a real postgresBus (its own pool of up to 4 connections, one of them listening), publish presence events round-robin at R per second in all; latency = publish to the handler of every other node (same clock); Postgres CPU = its server processes (not read for a --database-url server); no capacity is called where the bench's core passed 85 %.",
    'Soak: publishers run in one child process and viewer bots in others (--soak-bots each), each feeding a checker with every RTP packet\'s kind, sequence number and arrival time; "bots CPU" is all those processes, as a share of the cores the bots may use; "bots late" is the longest any of their event loops ran late (arrival times are taken there).',
  ],
};

const sfu = modes.has('sfu');
console.error(
  `[bench] ${[...modes].join(' + ')}${sfu ? ` · steps ${opts.steps.join(', ')} · ${opts.seconds} s each · ${opts.kbps} kbps ${values.size}${opts.simulcast! > 1 ? ` in ${opts.simulcast} simulcast layers` : ''} · keyframe ${opts.keyframeInterval} s · bots via ${via} (${opts.bots})` : ''}`,
);

const dvrRun = async (url: string, streamId: string, key: string) => {
  report.dvr = await runDvrBench(url, streamId, key, {
    viewers: Number(values['dvr-viewers']),
    offsetsMs: dvrOffsets,
    keyframeInterval: opts.keyframeInterval,
    video: { kbps: opts.kbps, width, height },
    progress,
  });
};

if (values.url) {
  if (!values['stream-key'] || !values['stream-id']) throw new Error('--url needs --stream-key and --stream-id');
  const streamId = values['stream-id'];
  if (sfu) {
    const run = await runSfuBench(
      { name: 'whipcast', url: values.url, streamId, key: values['stream-key'], via, mainPids: [], workerPids: () => [] },
      { ...opts, drainSeconds: 0 },
    );
    report.whipcast = run.steps;
  }
  if (modes.has('dvr')) await dvrRun(values.url, streamId, values['stream-key']);
  if (modes.has('chat')) console.error('[bench] chat mode needs a session token: run it against a server the bench starts');
} else if (sfu || modes.has('chat') || modes.has('dvr') || modes.has('dvrscale')) {
  const server = await startServer(
    {
      CHAT_RATE_PER_10S: '1000',
      WS_MESSAGES_PER_SECOND: '10000',
      // the dvrscale mode measures what DVR viewers cost unbounded, unless the caller sets the node's bound
      DVR_MAX_REPLAYS: process.env.DVR_MAX_REPLAYS ?? '0',
    },
    [
      ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`] : []),
      ...(values['node-args']?.split(/\s+/).filter(Boolean) ?? []),
    ],
  );
  if (server.pid) pinServer([server.pid, ...children(server.pid, /mediasoup/)]);
  try {
    const ch = await prepareChannel(server.url);
    if (sfu) {
      const run = await runSfuBench(whipcastTarget(server, ch, { via }), opts);
      report.whipcast = run.steps;
      report.memory!.whipcast = run.memory;
    }
    if (modes.has('chat')) report.chat.push(await chatWhipcast(server.url, ch.streamId, ch.token, chatOpts));
    if (modes.has('dvr')) await dvrRun(server.url, ch.streamId, ch.key);
    if (modes.has('dvrscale'))
      report.dvrScale = await runDvrScaleBench(whipcastTarget(server, ch, { via: 'socket' }), {
        ...opts,
        backMs: dvrBackMs,
        residentLive: dvrLive,
      });
  } finally {
    await server.stop();
  }
}
if (!values['no-baseline']) {
  if (sfu) {
    const base = await startBaseline();
    pinServer([base.workerPid]);
    try {
      const run = await runSfuBench(
        { name: 'baseline', url: base.url, streamId: 'baseline', mainPids: [], workerPids: () => [base.workerPid] },
        opts,
      );
      report.baseline = run.steps;
      report.memory!.baseline = run.memory;
    } finally {
      await base.stop();
    }
  }
  if (modes.has('chat') && report.chat.length) report.chat.push(await chatBaseline(chatOpts));
}
if (modes.has('relay')) {
  if (values.url) throw new Error('relay mode starts its own two nodes: drop --url');
  report.relay = await runRelayBench({ ...opts, via, databaseUrl: values['database-url'], onServers: pinServer });
}
if (modes.has('soak')) {
  if (!['on', 'off'].includes(values['soak-recording']!)) throw new Error('--soak-recording is on or off');
  if (values.url) throw new Error('soak mode starts its own nodes: drop --url');
  const soakOpts: Omit<SoakPartOptions, 'nodes' | 'channels' | 'viewersPerChannel'> = {
    seconds: soakSeconds,
    kbps: opts.kbps,
    width,
    height,
    keyframeInterval: opts.keyframeInterval,
    via,
    botsPerProcess: Math.max(1, soakBots),
    recording: values['soak-recording'] !== 'off',
    databaseUrl: values['database-url'],
    botCores: opts.botCores,
    onServers: pinServer,
    progress,
  };
  report.soak = [];
  if (soakChannels && soakViewers)
    report.soak.push(await runSoakPart({ ...soakOpts, nodes: 1, channels: soakChannels, viewersPerChannel: soakViewers }));
  if (soakClusterChannels && soakClusterViewers)
    report.soak.push(
      await runSoakPart({
        ...soakOpts,
        nodes: 2,
        channels: soakClusterChannels,
        viewersPerChannel: soakClusterViewers,
        seconds: soakClusterSeconds,
      }),
    );
}
if (modes.has('recording')) {
  if (values.url) throw new Error('recording mode starts its own server: drop --url');
  report.recording = await runRecordingBench({
    channels: recChannels,
    seconds: recSeconds,
    kbps: opts.kbps,
    width,
    height,
    keyframeInterval: opts.keyframeInterval,
    onServers: pinServer,
    progress,
  });
}
if (modes.has('c2p')) {
  if (values.url) throw new Error('c2p mode starts its own server (it serves the bare page beside the app): drop --url');
  report.c2p = await runC2pBench({
    samples: c2pSamples,
    video: { kbps: opts.kbps, width, height, keyframeInterval: opts.keyframeInterval },
    onServer: (s) => {
      if (s.pid) pinServer([s.pid, ...children(s.pid, /mediasoup/)]);
    },
    progress,
  });
}
if (modes.has('bus')) {
  if (values.url) throw new Error('bus mode uses a database, not a whipcast server: drop --url (--database-url picks the Postgres)');
  report.bus = await runBusBench(
    { nodes: busNodes, rates: busRates, seconds: busSeconds, databaseUrl: values['database-url'], botCores: opts.botCores!, progress },
    pinServer,
  );
}
report.capacity = { whipcast: capacity(report.whipcast, opts.latencyTargetMs), baseline: capacity(report.baseline, opts.latencyTargetMs) };
if (opts.impaired) {
  // bad links fail joins and lose packets by design: the capacity is read from a run without them
  const text = `not called with impaired bots (${opts.impaired.num} in ${opts.impaired.den}): run without --impair/--mixed for it`;
  report.capacity = {
    whipcast: { ...report.capacity.whipcast, viewers: 0, text },
    baseline: { ...report.capacity.baseline, viewers: 0, text },
  };
}
if (process.stderr.isTTY) process.stderr.write('\n');
const dir = resolve(values.out!);
await mkdir(dir, { recursive: true });
const files = await writeReport(dir, report);
console.log(table(report));
console.log(`\nwrote ${files.json}, ${files.html}${files.png ? `, ${files.png}` : ''}`);
process.exit(0);
