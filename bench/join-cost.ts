/**
 * What a joining web player costs the server: `node --import tsx bench/join-cost.ts [joins] [per second]`.
 * One whipcast process per configuration (pinned to CPU 0, the bots to CPU 1), one OBS-like publisher (720p,
 * 2.5 Mbit/s, keyframe 2 s), then `joins` socket bots at `per second`. The server's CPU (Node main and its
 * mediasoup worker, from /proc) over the join phase (first join to 7 s after the last first frame), less what the
 * server spent before anyone joined and what the same viewers cost once settled, is the burst: CPU-ms per join.
 * Configurations: instant start off (the baseline: a viewer waits for the publisher's next keyframe), on without a
 * bound on catch-ups at once, on with the default bound.
 */
import { ObsPublisher, SocketClient, SocketViewer, startWhipcastProcess } from '@whipcast/testkit';
import { children, pin, renice, sample } from './proc.ts';
import { prepareChannel } from './server.ts';
import { percentile } from './stats.ts';

const joins = Number(process.argv[2] ?? 50);
const perSecond = Number(process.argv[3] ?? 25);
const CONFIGS: { name: string; env: Record<string, string> }[] = [
  { name: 'instant start off', env: { INSTANT_START: 'false' } },
  { name: 'instant start, no bound', env: { CATCHUP_MAX_CONCURRENT: '100000' } },
  { name: 'instant start, default bound', env: {} },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cost {
  name: string;
  /** Server CPU before anyone joined and once the viewers settled, % of a core (main, worker). */
  idle: [number, number];
  steady: [number, number];
  /** CPU-ms per join beyond idle and steady (main, worker). */
  burst: [number, number];
  ttffMs: { p50: number; p95: number };
}

async function measure(name: string, env: Record<string, string>): Promise<Cost> {
  const server = await startWhipcastProcess({
    WHIP_RATE_LIMIT_PER_MINUTE: '100000',
    REGISTER_RATE_PER_HOUR: '100000',
    WS_MAX_TRANSPORTS_PER_ADDRESS: '100000',
    ...env,
  });
  try {
    const pids = [server.pid!, ...children(server.pid!, /mediasoup/)];
    for (const p of pids) {
      pin(p, '0');
      renice(p, 0);
    }
    const cpu = () => pids.map((p) => sample(p)?.cpuSeconds ?? 0);
    const rate = async (seconds: number): Promise<[number, number]> => {
      const a = cpu();
      const t = performance.now();
      await sleep(seconds * 1000);
      const b = cpu();
      const s = (performance.now() - t) / 1000;
      return [(b[0]! - a[0]!) / s, (b[1]! - a[1]!) / s];
    };
    const ch = await prepareChannel(server.url);
    const video = { kbps: 2500, width: 1280, height: 720, keyframeInterval: 2, seconds: 4, profile: 'baseline' as const };
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: ch.key, video });
    await pub.connected();
    await sleep(6000); // past the channel's start (its recording's first poster)
    const idle = await rate(5);
    const bots: { socket: SocketClient; viewer: SocketViewer }[] = [];
    const ttff: number[] = [];
    const a0 = cpu();
    const t0 = performance.now();
    const joined: Promise<void>[] = [];
    for (let i = 0; i < joins; i++) {
      joined.push(
        (async () => {
          const started = performance.now();
          const socket = await SocketClient.connect(server.url);
          const viewer = new SocketViewer(socket, ch.streamId);
          bots.push({ socket, viewer });
          await viewer.start();
          while (viewer.receiver.video.timeToFirstFrameMs === null && performance.now() - started < 15_000) await sleep(20);
          if (viewer.receiver.video.timeToFirstFrameMs !== null) ttff.push(performance.now() - started);
        })(),
      );
      await sleep(1000 / perSecond);
    }
    await Promise.all(joined);
    await sleep(7000); // every catch-up has switched to live (≤ 2 keyframe intervals + 1 s)
    const a1 = cpu();
    const phase = (performance.now() - t0) / 1000;
    const steady = await rate(6);
    // each viewer costs the steady rate from its join on: on average for the phase less half the ramp
    const viewerSeconds = joins * (phase - joins / perSecond / 2);
    const burst = [0, 1].map(
      (k) => (1000 * (a1[k]! - a0[k]! - idle[k]! * phase - ((steady[k]! - idle[k]!) * viewerSeconds) / joins)) / joins,
    ) as [number, number];
    for (const b of bots) {
      b.viewer.close();
      b.socket.close();
    }
    pub.drop();
    return {
      name,
      idle: [idle[0] * 100, idle[1] * 100],
      steady: [steady[0] * 100, steady[1] * 100],
      burst,
      ttffMs: { p50: percentile(ttff, 50), p95: percentile(ttff, 95) },
    };
  } finally {
    await server.stop();
  }
}

pin(process.pid, '1');
const rows: Cost[] = [];
for (const c of CONFIGS) rows.push(await measure(c.name, c.env));
const f = (x: number) => x.toFixed(1);
console.log(`${joins} socket joins at ${perSecond}/s, 720p 2.5 Mbit/s, keyframe 2 s; CPU of Node main + its mediasoup worker`);
console.log(
  'configuration                  idle % main/worker  settled % main/worker  burst CPU-ms per join main/worker/total  TTFF p50/p95 ms',
);
for (const r of rows)
  console.log(
    `${r.name.padEnd(30)} ${`${f(r.idle[0])} / ${f(r.idle[1])}`.padStart(19)}  ${`${f(r.steady[0])} / ${f(r.steady[1])}`.padStart(21)}  ${`${f(r.burst[0])} / ${f(r.burst[1])} / ${f(r.burst[0] + r.burst[1])}`.padStart(38)}  ${`${Math.round(r.ttffMs.p50)} / ${Math.round(r.ttffMs.p95)}`.padStart(15)}`,
  );
const off = rows[0]!;
for (const r of rows.slice(1))
  console.log(
    `${r.name}: burst ${f(r.burst[0] + r.burst[1] - off.burst[0] - off.burst[1])} CPU-ms per join more than with instant start off`,
  );
process.exit(0);
