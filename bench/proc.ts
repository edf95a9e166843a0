/** CPU and memory of processes from /proc (Linux), for the server, its mediasoup workers and the bench itself. */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

const TICKS = 100; // USER_HZ on Linux
const PAGE = 4096;

export interface ProcSample {
  pid: number;
  cpuSeconds: number;
  rssBytes: number;
}

export function sample(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rss = Number(fields[21]);
    return { pid, cpuSeconds: (utime + stime) / TICKS, rssBytes: rss * PAGE };
  } catch {
    return null;
  }
}

/** Child processes of `pid` whose command name matches. */
export function children(pid: number, comm: RegExp): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && comm.test(name)) out.push(Number(d));
    } catch {}
  }
  return out;
}

/** CPU use between two samples, as a fraction of one core. */
export function cpuShare(a: ProcSample | null, b: ProcSample | null, seconds: number): number {
  if (!a || !b || seconds <= 0) return 0;
  return (b.cpuSeconds - a.cpuSeconds) / seconds;
}

/** Pins a process (all its threads) to CPUs, e.g. "0" or "1-3"; false when `taskset` is missing or refuses. */
export function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Sets the nice value of every thread of a process (a process's priority is per thread on Linux; they
 * inherit it when made). Raising priority needs root; false when refused.
 */
export function renice(pid: number, nice: number): boolean {
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) setPriority(Number(tid), nice);
    return true;
  } catch {
    return false;
  }
}

export interface IoSample {
  /** Bytes the process (all its threads) caused to be written to storage (`write_bytes`: counted when pages are dirtied). */
  writeBytes: number;
  /** Bytes passed to write(2) and the like, storage or not (`wchar`). */
  wchar: number;
}

/** I/O counters of a process from /proc/<pid>/io (needs the same user or root); null when unreadable. */
export function ioSample(pid: number): IoSample | null {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { writeBytes: get('write_bytes'), wchar: get('wchar') };
  } catch {
    return null;
  }
}
