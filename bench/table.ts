/** Text helpers shared by the report's tables. */
import type { StepResult } from './sfu-bench.ts';

/** A number with `d` decimals, or '–' when there is none. */
export const f = (n: number | undefined, d = 0): string => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : '–');

/** A share (0..1) as a percentage. */
export const pct = (x: number, d = 0): string => `${f(x * 100, d)}%`;

/** Rows padded into aligned columns; the first row is the header. */
export function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  '));
}

/** The first cells of every step row: name, viewers, failed joins, server CPU and the bots' CPU (SAT above `saturated`). */
export function stepCells(name: string, s: StepResult, saturated: number): string[] {
  return [
    name,
    String(s.viewers),
    String(s.joinFailures),
    pct(s.cpu.main),
    pct(s.cpu.workers),
    `${pct(s.botsCoreShare)}${s.botsCoreShare > saturated ? ' SAT' : ''}`,
  ];
}
