/**
 * Scheduling priority for timing-critical tests. On the shared 2-core machine (and in CI, two test files at a
 * time) a test that judges what a viewer sees (freezes, stalls) measured the other file's load instead: its own
 * process — the server's JavaScript and the userspace UDP relay standing in for the viewer's link — ran up to 1.3 s
 * late (the relay held the viewer's packets that long), and Chromium's WebRTC threads waited for the CPU too.
 *
 * A child starts with the nice value of the thread that forked it, so raising the test process's priority before
 * it starts the server covers the mediasoup worker. Chromium does not keep it: it sets each of its threads' nice
 * value itself (renderer threads 0, display-critical ones -8, background ones 10), so a watcher gives every thread
 * of every process below this one that runs at a lower priority the raised one, once a second.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Fields of /proc/<pid>/stat after the command name: state is [0], ppid [1], nice [16]. */
function statFields(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // gone meanwhile
  }
}

/** The processes below `root` (children, their children, ...). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const ppid = Number(statFields(`/proc/${pid}/stat`)?.[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(pid);
  }
  const out: number[] = [];
  for (let i = 0, todo = [root]; i < todo.length; i++) {
    for (const c of children.get(todo[i]!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** Gives every thread of the processes below this one that runs at a nice value above `nice` that value. */
function raiseDescendants(nice: number): void {
  for (const pid of descendants(process.pid)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const current = Number(statFields(`/proc/${pid}/task/${tid}/stat`)?.[16]);
      if (!(current > nice)) continue;
      try {
        setPriority(Number(tid), nice);
      } catch {
        // gone meanwhile
      }
    }
  }
}

/**
 * Sets this process's nice value (its main thread, and so every process it spawns from now on) to `nice`
 * (negative: more CPU under contention; needs root, as in CI and on the shared machine), and keeps every thread
 * of the processes below it (the server's mediasoup worker, Chromium) at `nice` or better, once a second. Returns a
 * function that stops the watcher and sets this process back. Without the permission it warns and does nothing.
 */
export function raisePriority(nice: number): () => void {
  const before = getPriority();
  try {
    setPriority(nice);
  } catch (err) {
    console.warn(
      `cannot raise the test's scheduling priority to nice ${nice} (${(err as Error).message}): timings may follow the machine's load`,
    );
    return () => {};
  }
  const timer = setInterval(() => raiseDescendants(nice), 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    try {
      setPriority(before);
    } catch {
      // lowering back needs no permission; nothing to do if the process is going away
    }
  };
}
