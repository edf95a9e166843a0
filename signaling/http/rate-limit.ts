/**
 * Fixed-window counters: at most `limit` hits per key per window. Small and
 * in-process on purpose (a node rate-limits what reaches it).
 */
import { isIPv6 } from 'node:net';

export interface RateLimiter {
  /** Counts a hit; returns 0 when allowed, else the seconds until the window resets. */
  hit(key: string): number;
  /** Takes back one hit of the current window (e.g. a sign-in that turned out right). */
  forgive(key: string): void;
}

export function createRateLimiter(limit: number, windowMs: number, now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  let lastSweep = now();
  return {
    hit(key) {
      const t = now();
      if (t - lastSweep > windowMs) {
        for (const [k, w] of windows) if (t - w.start >= windowMs) windows.delete(k);
        lastSweep = t;
      }
      let w = windows.get(key);
      if (!w || t - w.start >= windowMs) {
        w = { start: t, count: 0 };
        windows.set(key, w);
      }
      w.count++;
      return w.count > limit ? Math.max(1, Math.ceil((w.start + windowMs - t) / 1000)) : 0;
    },
    forgive(key) {
      const w = windows.get(key);
      if (w && w.count > 0) w.count--;
    },
  };
}

/**
 * The rate-limit bucket of a client address: IPv4 as is, IPv6 by its /64
 * (one host usually owns a whole /64, so per-address limits would be free to dodge).
 */
export function addressBucket(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
