/** Writes the results: JSON, an HTML report with SVG plots, a PNG of it (headless Chromium), and a table on stdout. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchChromium } from '@whipcast/testkit';
import { busTable, type BusResult } from './bus-bench.ts';
import { c2pTable, type C2pResult } from './c2p-bench.ts';
import type { ChatResult } from './chat-bench.ts';
import type { DvrResult } from './dvr-bench.ts';
import { dvrScaleTable, type DvrScaleResult } from './dvr-scale-bench.ts';
import type { RelayResult } from './relay-bench.ts';
import { recordingTable, type RecordingBenchResult } from './recording-bench.ts';
import { soakTable, type SoakPartResult } from './soak-bench.ts';
import { columns, f, pct, stepCells } from './table.ts';
import { BOTS_SATURATED, capacity, type Capacity, type MemoryResult, type StepResult } from './sfu-bench.ts';

export interface BenchReport {
  command: string;
  date: string;
  machine: { cores: number; node: string };
  options: Record<string, unknown>;
  whipcast: StepResult[];
  baseline: StepResult[];
  capacity: { whipcast: Capacity; baseline: Capacity };
  /** RSS per added viewer and what is left after they all leave (sfu mode). */
  memory?: { whipcast: MemoryResult | null; baseline: MemoryResult | null };
  /** whipcast's chat, then the raw uWS baseline (when run). */
  chat: ChatResult[];
  dvr: DvrResult | null;
  /** DVR viewers at scale: the same steps live, time-shifted, and mixed. */
  dvrScale?: DvrScaleResult | null;
  /** Several nodes: viewers on the origin, then on an edge relaying from it. */
  relay?: RelayResult | null;
  /** Many channels and viewers for a long time: one node, then two. */
  soak?: SoakPartResult[];
  /** What recording costs per channel: the same load with "Save past broadcasts" off and on. */
  recording?: RecordingBenchResult | null;
  /** Click to picture: whipcast's channel page beside a bare WebRTC page. */
  c2p?: C2pResult | null;
  /** The cluster bus (Postgres LISTEN/NOTIFY) at several node counts and rates. */
  bus?: BusResult | null;
  notes: string[];
}

function chatTable(r: BenchReport): string[] {
  if (!r.chat.length) return [];
  const rows = [['chat', 'sockets', 'sent', 'delivered %', 'deliveries/s', 'p50 ms', 'p95 ms', 'p99 ms']];
  for (const c of r.chat)
    rows.push([
      c.target,
      String(c.sockets),
      String(c.sent),
      f(c.deliveryPct, 1),
      f(c.deliveriesPerSecond),
      f(c.latencyMs.p50, 1),
      f(c.latencyMs.p95, 1),
      f(c.latencyMs.p99, 1),
    ]);
  const [w, b] = r.chat;
  const ratio = w && b ? [`chat p95 latency ×${f(w.latencyMs.p95 / Math.max(0.5, b.latencyMs.p95), 1)} of raw uWS publish`] : [];
  return ['', ...columns(rows), ...ratio];
}

function dvrTable(r: BenchReport): string[] {
  const d = r.dvr;
  if (!d) return [];
  const rows = [['dvr step', 'to first frame p50 ms', 'p95 ms', 'landed behind target p50 ms', 'max ms']];
  rows.push(['live join (baseline)', f(d.liveTtffMs.p50), f(d.liveTtffMs.p95), '', '']);
  for (const s of d.seeks)
    rows.push([
      `seek −${s.offsetMs / 1000} s`,
      f(s.toFirstFrameMs.p50),
      f(s.toFirstFrameMs.p95),
      f(s.landedBehindTargetMs.p50),
      f(s.landedBehindTargetMs.max),
    ]);
  rows.push(['back to live', f(d.backToLiveMs.p50), f(d.backToLiveMs.p95), '', '']);
  return ['', ...columns(rows), `dvr: ${d.viewers} socket viewers, ${d.failures} failed`];
}

function relayTable(r: BenchReport): string[] {
  const d = r.relay;
  if (!d) return [];
  const rows = [['relay', 'viewers', 'fail', 'server CPU', 'kbps/viewer', 'loss %', 'p50 ms', 'p95 ms', 'TTFF p50', 'TTFF p95']];
  for (const [name, results] of [
    ['on the origin', d.origin],
    ['on an edge', d.edge],
  ] as const)
    for (const s of results)
      rows.push([
        name,
        String(s.viewers),
        String(s.joinFailures),
        `${f((s.cpu.main + s.cpu.workers) * 100)}%`,
        f(s.kbpsPerViewer),
        f(s.lossPct, 2),
        f(s.latencyMs.p50, 1),
        f(s.latencyMs.p95, 1),
        f(s.ttffMs.p50),
        f(s.ttffMs.p95),
      ]);
  const ratios = d.edge
    .map((e) => {
      const o = d.origin.find((x) => x.viewers === e.viewers);
      if (!o) return '';
      const cpu = (e.cpu.main + e.cpu.workers) / Math.max(1e-6, o.cpu.main + o.cpu.workers);
      const delta = (x: number, d = 0) => `${x >= 0 ? '+' : '−'}${f(Math.abs(x), d)}`;
      return `  N=${e.viewers}: via an edge p95 latency ${delta(e.latencyMs.p95 - o.latencyMs.p95, 1)} ms, TTFF p50 ${delta(e.ttffMs.p50 - o.ttffMs.p50)} ms, server CPU (both nodes) ×${f(cpu, 2)} of the origin alone`;
    })
    .filter(Boolean);
  return [
    '',
    ...columns(rows),
    'relay: the edge pulls the channel from the origin over a PipeTransport; ratios against viewers on the origin:',
    ...ratios,
  ];
}

export function table(r: BenchReport): string {
  return [
    ...sfuTable(r),
    ...chatTable(r),
    ...dvrTable(r),
    ...dvrScaleTable(r.dvrScale, BOTS_SATURATED),
    ...relayTable(r),
    ...busTable(r.bus),
    ...soakTable(r.soak ?? [], BOTS_SATURATED),
    ...recordingTable(r.recording),
    ...c2pTable(r.c2p),
  ]
    .join('\n')
    .replace(/^\n/, '');
}

function sfuTable(r: BenchReport): string[] {
  if (!r.whipcast.length) return [];
  const rows = [
    [
      'target',
      'viewers',
      'fail',
      'main CPU',
      'worker CPU',
      'bots CPU',
      'bots/viewer',
      'kbps/viewer',
      'loss %',
      'frozen',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'TTFF p50',
      'TTFF p95',
    ],
  ];
  // simulcast: a column of viewers per layer, shown only once bots report the layer they are on
  const withLayers = [...r.whipcast, ...r.baseline].some((s) => s.layers && Object.keys(s.layers).length);
  if (withLayers) rows[0]!.push('layers (viewers)');
  for (const [name, results] of [
    ['whipcast', r.whipcast],
    ['baseline', r.baseline],
  ] as const) {
    for (const s of results) {
      rows.push([
        ...stepCells(name, s, BOTS_SATURATED),
        pct(s.cpu.bench / Math.max(1, s.joined), 2),
        f(s.kbpsPerViewer),
        f(s.lossPct, 2),
        s.freezes ? `${s.freezes.viewers}/${s.joined}` : '–',
        f(s.latencyMs.p50, 1),
        f(s.latencyMs.p95, 1),
        f(s.latencyMs.p99, 1),
        f(s.ttffMs.p50),
        f(s.ttffMs.p95),
        ...(withLayers ? [layerText(s.layers)] : []),
      ]);
    }
  }
  const ratios = r.whipcast
    .map((w) => {
      const b = r.baseline.find((x) => x.viewers === w.viewers);
      if (!b) return '';
      const cpu = (w.cpu.main + w.cpu.workers) / Math.max(1e-6, b.cpu.workers + b.cpu.main);
      const sat = w.botsCoreShare > BOTS_SATURATED || b.botsCoreShare > BOTS_SATURATED ? ' (bots saturated: not a server figure)' : '';
      return `  N=${w.viewers}: server CPU ×${f(cpu, 2)} of baseline, p95 latency ${f(w.latencyMs.p95 - b.latencyMs.p95, 1)} ms more${sat}`;
    })
    .filter(Boolean);
  const sampled = r.whipcast.at(-1);
  return [
    ...columns(rows),
    '',
    `bots CPU = share of the cores the bots may use (SAT above ${pct(BOTS_SATURATED)}); bots/viewer = their CPU per viewer, of one core.` +
      (sampled
        ? ` Latency and TTFF from ${sampled.sampledBots} of ${sampled.joined} bots (1 in ${String(r.options['sampleEvery'] ?? 1)} reassembles frames); loss, kbps and freezes from all (${sampled.nativeBots} of them native counting bots).`
        : ''),
    'frozen = viewers with a gap of more than 1 s between frames in the measured seconds.',
    ...(withLayers
      ? [
          `layers = viewers per simulcast layer at the end of the measured seconds, named by the picture height in the SPS each bot last received (${String(r.options['simulcast'])} layers sent, as OBS 32.1; the bots send transport-wide congestion control feedback as a browser does, and the server picks each one's layer).`,
        ]
      : []),
    `capacity (<1% loss, p95 under target, no join failures; largest step tried: ${Math.max(...r.whipcast.map((s) => s.viewers))}):`,
    `  whipcast: ${r.capacity.whipcast.text}`,
    ...(r.baseline.length ? [`  baseline: ${r.capacity.baseline.text}`] : []),
    'ratios against the baseline run:',
    ...ratios,
    ...memoryLines(r),
    ...groupLines(r),
  ];
}

/** `720p:4 240p:2`: viewers per layer. */
const layerText = (layers: Record<string, number> | undefined): string =>
  Object.entries(layers ?? {})
    .map(([layer, n]) => `${layer}:${n}`)
    .join(' ') || '–';

/** Impaired and unimpaired bots side by side, per step. */
function groupLines(r: BenchReport): string[] {
  const rows = [
    ['target', 'viewers', 'bots', 'n', 'kbps/viewer', 'link drop %', 'loss %', 'frozen', 'frozen time', 'p50 ms', 'p95 ms', 'TTFF p50'],
  ];
  const withLayers = [...r.whipcast, ...r.baseline].some((s) => s.groups?.some((g) => g.layers));
  if (withLayers) rows[0]!.push('layers (viewers)');
  for (const [name, results] of [
    ['whipcast', r.whipcast],
    ['baseline', r.baseline],
  ] as const)
    for (const s of results)
      for (const g of s.groups ?? [])
        rows.push([
          name,
          String(s.viewers),
          g.name,
          String(g.viewers),
          f(g.kbpsPerViewer),
          g.linkDropPct === null ? '' : f(g.linkDropPct, 2),
          f(g.lossPct, 2),
          `${g.freezes.viewers}/${g.viewers}`,
          `${f(g.freezes.frozenPct, 1)}%`,
          f(g.latencyMs.p50, 1),
          f(g.latencyMs.p95, 1),
          f(g.ttffMs.p50),
          ...(withLayers ? [layerText(g.layers)] : []),
        ]);
  if (rows.length === 1) return [];
  return ['', 'impaired links (latency and TTFF from the sampled bots of each group):', ...columns(rows)];
}

function memoryLines(r: BenchReport): string[] {
  const out: string[] = [];
  for (const [name, m] of [
    ['whipcast', r.memory?.whipcast],
    ['baseline', r.memory?.baseline],
  ] as const) {
    if (!m) continue;
    const parts = (k: 'main' | 'workers') =>
      `${k === 'main' ? 'Node' : 'workers'} ${f(m.idleMb[k])} → ${f(m.peakMb[k])} MB, ${f(m.perViewerMb[k], 2)} MB/viewer` +
      (m.notReturnedMb && m.drainedMb
        ? `, ${f(m.drainedMb[k])} MB ${m.drainSeconds} s after all left (${f(m.notReturnedMb[k], 1)} MB not returned)`
        : '');
    const keys = name === 'baseline' ? (['workers'] as const) : (['main', 'workers'] as const);
    const left = m.viewersLeft === null ? '' : ` (the server still counted ${m.viewersLeft} viewers then)`;
    out.push(`  ${name}: 0 → ${m.peakViewers} viewers: ${keys.map(parts).join('; ')}${left}`);
  }
  return out.length ? ['memory (RSS, publisher live throughout):', ...out] : [];
}

function plot(title: string, series: { name: string; color: string; points: [number, number][] }[], yLabel: string): string {
  const W = 520;
  const H = 260;
  const P = 44;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys) * 1.1;
  const X = (x: number) => P + (x / xMax) * (W - 2 * P);
  const Y = (y: number) => H - P - (y / yMax) * (H - 2 * P);
  const lines = series
    .map((s) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1]));
      return `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${X(p[0])},${Y(p[1])}`).join(' ')}"/>${pts
        .map((p) => `<circle cx="${X(p[0])}" cy="${Y(p[1])}" r="3" fill="${s.color}"/>`)
        .join('')}`;
    })
    .join('');
  const legend = series.map((s, i) => `<text x="${P + i * 140}" y="16" fill="${s.color}" font-size="12">■ ${s.name}</text>`).join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => `<text x="4" y="${Y(t * yMax) + 4}" font-size="10">${f(t * yMax, yMax < 10 ? 1 : 0)}</text>`)
    .join('');
  const xticks = [...new Set(xs)].map((x) => `<text x="${X(x) - 6}" y="${H - P + 16}" font-size="10">${x}</text>`).join('');
  return `<figure><svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${title}">
<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#888"/><line x1="${P}" y1="${P / 2}" x2="${P}" y2="${H - P}" stroke="#888"/>
${ticks}${xticks}${lines}${legend}<text x="${W / 2 - 30}" y="${H - 6}" font-size="11">viewers</text><text x="${P + 4}" y="${P / 2 + 12}" font-size="11">${yLabel}</text></svg><figcaption>${title}</figcaption></figure>`;
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function html(r: BenchReport): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>whipcast benchmark ${r.date}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1150px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}figure{display:inline-block;margin:0 1rem 1rem 0}pre{background:#f4f4f4;padding:.5rem}</style>
<h1>whipcast benchmarks</h1>
<p>${r.date} · ${r.machine.cores} cores · Node ${r.machine.node}</p>
<pre>${r.command}</pre>
${r.whipcast.length ? `<p><b>Capacity</b>: whipcast ${esc(r.capacity.whipcast.text)}; baseline ${r.baseline.length ? esc(r.capacity.baseline.text) : 'not run'}</p>${plots(r)}` : ''}
<h2>Results</h2><pre>${esc(table(r))}</pre>
<h2>Notes</h2><ul>${r.notes.map((n) => `<li>${n}</li>`).join('')}</ul>
</html>`;
}

function plots(r: BenchReport): string {
  const pts = (rs: StepResult[], pick: (s: StepResult) => number) => rs.map((s) => [s.viewers, pick(s)] as [number, number]);
  return `${plot(
    'Glass-to-glass latency p95 (ms)',
    [
      { name: 'whipcast', color: '#c0392b', points: pts(r.whipcast, (s) => s.latencyMs.p95) },
      { name: 'baseline', color: '#2471a3', points: pts(r.baseline, (s) => s.latencyMs.p95) },
    ],
    'ms',
  )}
${plot(
  'Server CPU (fraction of one core: main + workers)',
  [
    { name: 'whipcast', color: '#c0392b', points: pts(r.whipcast, (s) => s.cpu.main + s.cpu.workers) },
    { name: 'baseline', color: '#2471a3', points: pts(r.baseline, (s) => s.cpu.main + s.cpu.workers) },
    { name: 'bots (whipcast run)', color: '#7f8c8d', points: pts(r.whipcast, (s) => s.cpu.bench) },
  ],
  'cores',
)}`;
}

export async function writeReport(dir: string, r: BenchReport): Promise<{ json: string; html: string; png: string | null }> {
  const json = join(dir, 'bench.json');
  const page = join(dir, 'bench.html');
  await writeFile(json, JSON.stringify(r, null, 2));
  await writeFile(page, html(r));
  let png: string | null = join(dir, 'bench.png');
  try {
    const browser = await launchChromium();
    const tab = await browser.context.newPage();
    await tab.setViewportSize({ width: 1200, height: 900 });
    await tab.goto(`file://${page}`);
    await tab.screenshot({ path: png, fullPage: true });
    await browser.close();
  } catch {
    png = null; // no Chromium: JSON and HTML are still written
  }
  return { json, html: page, png };
}

export { capacity };
