/**
 * The cluster bus (Postgres LISTEN/NOTIFY) at cluster sizes: K simulated nodes,
 * each a real `postgresBus` on its own connection pool, publish presence events
 * at R per second in all; every node receives every other node's events. For
 * each K and R: delivery, latency (publish → handler on another node) and the
 * Postgres server's CPU. The baseline is two nodes at the same rates (one
 * listener per notification), so the ratio shows what each added node costs.
 */
import { randomUUID } from 'node:crypto';
import { startThrowawayCluster } from '@whipcast/db/test-postgres';
import postgres from 'postgres';
import pino from 'pino';
import { postgresBus, type ClusterBus } from '@whipcast/signaling';
import { children, cpuShare, sample, type ProcSample } from './proc.ts';
import { percentile } from './stats.ts';
import { columns, f, pct } from './table.ts';

export interface BusBenchOptions {
  /** Node counts, one run each (the first is the baseline when it is 2). */
  nodes: number[];
  /** Notifications per second in all, one step each. */
  rates: number[];
  /** Measured seconds per step. */
  seconds: number;
  /** A Postgres to use; default a throwaway Debian cluster (its CPU is then sampled). */
  databaseUrl?: string | undefined;
  /** The bench's cores (for the instrument's CPU share). */
  botCores: number;
  progress(text: string): void;
}

export interface BusStep {
  nodes: number;
  rate: number;
  sent: number;
  /** Deliveries expected: each notification to every other node. */
  expected: number;
  delivered: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** The Postgres server's processes, share of one core; NaN when not sampled (an outside database). */
  postgresCpu: number;
  /** This process (the simulated nodes), share of its cores. */
  benchCpu: number;
}

export interface BusResult {
  steps: BusStep[];
  /** Per node count: the highest rate delivered ≥ 99.9 % with p95 < 100 ms, 0 when none; null when the bench saturated first. */
  capacity: { nodes: number; rate: number | null; text: string }[];
}

/** The bench's own core above this share: the simulated nodes, not Postgres, may have set the limit. */
const BENCH_SATURATED = 0.85;
const TARGET_P95_MS = 100;
const TARGET_DELIVERY = 0.999;

interface SimNode {
  sql: postgres.Sql;
  bus: ClusterBus;
}

function postgresCpu(postmasterPid: number | null): ProcSample[] {
  if (!postmasterPid) return [];
  return [postmasterPid, ...children(postmasterPid, /postgres/)].map(sample).filter((s): s is ProcSample => s !== null);
}

function cpuOf(before: ProcSample[], after: ProcSample[], seconds: number): number {
  let total = 0;
  for (const b of after) total += cpuShare(before.find((a) => a.pid === b.pid) ?? { ...b, cpuSeconds: 0 }, b, seconds);
  return total;
}

async function startNodes(url: string, count: number, onDelivery: (sentAt: number, step: string) => void): Promise<SimNode[]> {
  const logger = pino({ level: 'error' });
  const nodes: SimNode[] = [];
  for (let i = 0; i < count; i++) {
    // a node's pool: the listener holds one connection, notifications go through the others
    const sql = postgres(url, { max: 4, onnotice: () => {} });
    const bus = await postgresBus(sql, `bench-node-${i}`, logger);
    bus.subscribe((m) => {
      if (m.t === 'presence' && m.from !== `bench-node-${i}`) onDelivery(m.viewers, m.room);
    });
    // open the pool's connections now: a backend started during a measured step is not the bus's cost
    await Promise.all([0, 1, 2].map(() => sql`SELECT pg_sleep(0.05)`));
    nodes.push({ sql, bus });
  }
  return nodes;
}

async function runStep(
  nodes: SimNode[],
  rate: number,
  o: BusBenchOptions,
  postmasterPid: number | null,
  latencies: Map<string, number[]>,
): Promise<BusStep> {
  // the room name carries the step, so late deliveries of a previous step are not counted here
  const room = randomUUID();
  const mine: number[] = [];
  latencies.set(room, mine);
  const pg0 = postgresCpu(postmasterPid);
  const me0 = sample(process.pid);
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < o.seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sent < due; sent++) nodes[sent % nodes.length]!.bus.publish({ t: 'presence', room, viewers: performance.now(), chatters: sent });
    o.progress(`bus ${nodes.length} nodes, ${rate}/s: ${sent} sent`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const elapsed = (performance.now() - t0) / 1000;
  const pg1 = postgresCpu(postmasterPid);
  const me1 = sample(process.pid);
  const expected = sent * (nodes.length - 1);
  // stragglers: up to 3 s for the queue to drain
  for (let waited = 0; mine.length < expected && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  latencies.delete(room);
  return {
    nodes: nodes.length,
    rate,
    sent,
    expected,
    delivered: mine.length,
    latencyMs: { p50: percentile(mine, 50), p95: percentile(mine, 95), p99: percentile(mine, 99), max: percentile(mine, 100) },
    postgresCpu: postmasterPid ? cpuOf(pg0, pg1, elapsed) : NaN,
    benchCpu: cpuShare(me0, me1, elapsed) / o.botCores,
  };
}

export async function runBusBench(o: BusBenchOptions, onServer?: (pids: number[]) => void): Promise<BusResult> {
  const cluster = o.databaseUrl ? null : await startThrowawayCluster();
  const url = o.databaseUrl ?? cluster!.url;
  const postmasterPid = cluster?.postmasterPid ?? null;
  const steps: BusStep[] = [];
  const latencies = new Map<string, number[]>();
  const onDelivery = (sentAt: number, room: string) => latencies.get(room)?.push(performance.now() - sentAt);
  try {
    for (const count of o.nodes) {
      const nodes = await startNodes(url, count, onDelivery);
      // the server's processes (backends started for these nodes included) on the server's core
      if (postmasterPid) onServer?.([postmasterPid, ...children(postmasterPid, /postgres/)]);
      try {
        // one unmeasured second at the lowest rate: the backends' first notifications
        await runStep(nodes, o.rates[0]!, { ...o, seconds: 1 }, postmasterPid, latencies);
        for (const rate of o.rates) {
          const step = await runStep(nodes, rate, o, postmasterPid, latencies);
          steps.push(step);
          // past saturation the queue only grows: the higher rates would say nothing new
          if (step.delivered < step.expected * 0.99 || step.latencyMs.p95 > 1000) break;
        }
      } finally {
        for (const n of nodes) {
          await n.bus.close();
          await n.sql.end({ timeout: 1 });
        }
        // the server's queue of notifications no longer listened to drains before the next run
        if (count !== o.nodes.at(-1)) await new Promise((r) => setTimeout(r, 2000));
      }
    }
  } finally {
    cluster?.stop();
  }
  return {
    steps,
    capacity: o.nodes.map((n) =>
      busCapacity(
        steps.filter((s) => s.nodes === n),
        n,
      ),
    ),
  };
}

export function busCapacity(steps: BusStep[], nodes: number): BusResult['capacity'][number] {
  let best = 0;
  for (const s of steps) {
    // the bench's core full at or before the knee: the simulated nodes may have set it
    if (s.benchCpu > BENCH_SATURATED)
      return { nodes, rate: null, text: `${nodes} nodes: not called (the bench's core at ${pct(s.benchCpu)} at ${s.rate}/s)` };
    if (s.delivered < s.expected * TARGET_DELIVERY || !(s.latencyMs.p95 < TARGET_P95_MS)) break;
    best = s.rate;
  }
  return { nodes, rate: best, text: `${nodes} nodes: ${best} notifications/s (${f(best * (nodes - 1))} deliveries/s)` };
}

export function busTable(r: BusResult | null | undefined): string[] {
  if (!r?.steps.length) return [];
  const rows = [['bus', 'nodes', 'NOTIFY/s', 'deliveries/s', 'delivered %', 'p50 ms', 'p95 ms', 'p99 ms', 'Postgres CPU', 'bench CPU']];
  for (const s of r.steps)
    rows.push([
      'bus',
      String(s.nodes),
      String(s.rate),
      f(s.rate * (s.nodes - 1)),
      f((100 * s.delivered) / Math.max(1, s.expected), 2),
      f(s.latencyMs.p50, 1),
      f(s.latencyMs.p95, 1),
      f(s.latencyMs.p99, 1),
      Number.isNaN(s.postgresCpu) ? '–' : pct(s.postgresCpu),
      `${pct(s.benchCpu)}${s.benchCpu > BENCH_SATURATED ? ' SAT' : ''}`,
    ]);
  const base = r.steps.filter((s) => s.nodes === 2);
  const ratios: string[] = [];
  for (const s of r.steps) {
    const b = base.find((x) => x.rate === s.rate);
    if (!b || s.nodes === 2 || Number.isNaN(s.postgresCpu) || b.postgresCpu <= 0) continue;
    ratios.push(`${s.nodes} nodes at ${s.rate}/s ×${f(s.postgresCpu / b.postgresCpu, 1)}`);
  }
  return [
    '',
    ...columns(rows),
    `bus capacity (≥ ${TARGET_DELIVERY * 100} % delivered, p95 < ${TARGET_P95_MS} ms): ${r.capacity.map((c) => c.text).join('; ')}`,
    ...(ratios.length ? [`Postgres CPU against 2 nodes at the same rate: ${ratios.join(', ')}`] : []),
  ];
}
