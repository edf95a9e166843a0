/**
 * DVR viewers at scale: the same steps of socket viewer bots three times on
 * one server — all watching live (the baseline), all seeked back (each bot
 * seeks `backMs` once joined and keeps watching the past at 1×), and mixed: a
 * few live bots measured for latency while the time-shifted ones ramp up.
 * Capacity follows the sfu mode's rules (< 1 % loss, p95 latency under the
 * target, no failed join, bots not saturated). A time-shifted bot's capture
 * stamps are `backMs` old: its latency is a frame's age less the age of the
 * keyframe its seek landed on (the server says it), i.e. how late the replay
 * delivers against its own schedule, and the ages show it watches the past.
 */
import { columns, f, pct, stepCells } from './table.ts';
import { capacity, runSfuBench, viewersOnServer, type Capacity, type SfuBenchOptions, type StepResult, type Target } from './sfu-bench.ts';

export interface DvrScaleOptions extends SfuBenchOptions {
  /** How far back each time-shifted bot seeks, ms. */
  backMs: number;
  /** Live bots measured for latency through the mixed run (0: no mixed run). */
  residentLive: number;
}

export interface DvrScaleResult {
  backMs: number;
  residentLive: number;
  /** Every bot live (the baseline). */
  live: StepResult[];
  /** Every bot seeked back. */
  dvr: StepResult[];
  /** `residentLive` live bots (group `live`) beside the steps' time-shifted bots; its first step has none of them. */
  mixed: StepResult[];
  capacity: { live: Capacity; dvr: Capacity };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to 60 s) until the server has let every viewer of the previous run go, so the next starts clean. */
async function drained(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && ((await viewersOnServer(url)) ?? 0) > 0) await sleep(500);
  await sleep(2000);
}

/** Runs the three runs on a socket target (one whipcast server) one after the other. */
export async function runDvrScaleBench(target: Target, o: DvrScaleOptions): Promise<DvrScaleResult> {
  const socket: Target = { ...target, via: 'socket' };
  // the publisher records this long before any bot seeks back (one GOP more: a seek lands on the keyframe before)
  const warmupMs = o.backMs + o.keyframeInterval * 1000 + 2000;
  // time-shifted bots are libdatachannel's (they seek): the live run's bots too, so the two cost the server alike
  const base: SfuBenchOptions = { ...o, drainSeconds: 2, bots: 'datachannel' };
  const live = await runSfuBench({ ...socket, name: 'live' }, base);
  await drained(target.url);
  const dvr = await runSfuBench({ ...socket, name: 'dvr' }, { ...base, timeShiftMs: o.backMs, warmupMs });
  let mixed: StepResult[] = [];
  if (o.residentLive > 0) {
    await drained(target.url);
    mixed = (
      await runSfuBench(
        { ...socket, name: 'mixed' },
        { ...base, steps: [0, ...o.steps], timeShiftMs: o.backMs, warmupMs, residentLive: o.residentLive },
      )
    ).steps;
  }
  return {
    backMs: o.backMs,
    residentLive: o.residentLive,
    live: live.steps,
    dvr: dvr.steps,
    mixed,
    capacity: { live: capacity(live.steps, o.latencyTargetMs), dvr: capacity(dvr.steps, o.latencyTargetMs) },
  };
}

/** The report's lines for the mode: both runs per step, the capacity ratio, the mixed run's live latency per step. */
export function dvrScaleTable(r: DvrScaleResult | null | undefined, saturated: number): string[] {
  if (!r) return [];
  const rows = [
    ['dvr scale', 'viewers', 'fail', 'main CPU', 'worker CPU', 'bots CPU', 'loss %', 'frozen', 'p95 ms', 'behind live p50 s', 'TTFF p50'],
  ];
  for (const [name, steps] of [
    ['live', r.live],
    [`dvr −${r.backMs / 1000} s`, r.dvr],
  ] as const)
    for (const s of steps)
      rows.push([
        ...stepCells(name, s, saturated),
        f(s.lossPct, 2),
        `${s.freezes.viewers}/${s.joined}`,
        f(s.latencyMs.p95, 1),
        f(s.behindLiveMs && s.behindLiveMs.p50 / 1000, 1),
        f(s.ttffMs.p50),
      ]);
  const ratio = r.capacity.live.viewers ? r.capacity.dvr.viewers / r.capacity.live.viewers : NaN;
  const measurable = r.capacity.live.kneeFound || r.capacity.dvr.kneeFound;
  const cpuRatios = r.dvr
    .map((d) => {
      const l = r.live.find((x) => x.viewers === d.viewers);
      const cost = (s: StepResult) => s.cpu.main + s.cpu.workers;
      return l ? `N=${d.viewers}: ×${f(cost(d) / Math.max(1e-6, cost(l)), 2)}` : '';
    })
    .filter(Boolean);
  const out = [
    '',
    ...columns(rows),
    `dvr scale capacity (<1% loss, p95 under target, no failed join): live ${r.capacity.live.text}; dvr ${r.capacity.dvr.text}` +
      (Number.isFinite(ratio) && r.capacity.live.botsSaturatedAt === null && r.capacity.dvr.botsSaturatedAt === null
        ? ` → dvr / live ${f(ratio * 100)}%${measurable ? '' : ' (no knee found: lower bounds)'}`
        : ''),
    `  server CPU (main + workers) of dvr viewers against as many live ones: ${cpuRatios.join(', ')}`,
  ];
  if (r.mixed.length) {
    const mrows = [
      [
        'mixed',
        'dvr viewers',
        'live viewers',
        'main CPU',
        'worker CPU',
        'live loss %',
        'live p50 ms',
        'live p95 ms',
        'dvr loss %',
        'dvr frozen',
      ],
    ];
    for (const s of r.mixed) {
      const [l, d] = s.groups ?? [];
      mrows.push([
        'mixed',
        String(s.viewers),
        String(l?.viewers ?? 0),
        pct(s.cpu.main),
        pct(s.cpu.workers),
        f(l?.lossPct, 2),
        f(l?.latencyMs.p50, 1),
        f(l?.latencyMs.p95, 1),
        f(d?.lossPct, 2),
        d ? `${d.freezes.viewers}/${d.viewers}` : '–',
      ]);
    }
    const first = r.mixed[0]?.groups?.[0]?.latencyMs.p95;
    const moved = r.mixed
      .slice(1)
      .map((s) => `${s.viewers}: ${f((s.groups?.[0]?.latencyMs.p95 ?? NaN) - (first ?? NaN), 1)} ms`)
      .join(', ');
    out.push('', ...columns(mrows), `  the live viewers' p95 against the step without dvr viewers: ${moved}`);
  }
  return out;
}
