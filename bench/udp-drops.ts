/**
 * Whose UDP socket dropped datagrams: the kernel counts drops (a full receive
 * buffer) per socket in /proc/net/udp{,6}; the socket's inode names its owner
 * through /proc/<pid>/fd. The machine-wide RcvbufErrors cannot tell the server
 * from the bots; this can.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Drops so far of every UDP socket of this network namespace, by inode. */
export type UdpDropSample = Map<number, number>;

/** Reads /proc/net/udp and udp6: each socket's drop count, by inode. */
export function sampleUdpDrops(): UdpDropSample {
  const out: UdpDropSample = new Map();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
      if (f.length < 13) continue;
      const inode = Number(f[9]);
      const drops = Number(f[12]);
      if (Number.isFinite(inode) && Number.isFinite(drops)) out.set(inode, drops);
    }
  }
  return out;
}

/** Inodes of the sockets a process holds open. */
export function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {}
  }
  return out;
}

/**
 * Drops between two samples, summed per owner (a group of pids, read at call time: call it
 * before the owners close their sockets); sockets of no listed owner count as `other`.
 * A socket that did not exist at `before` counts from zero.
 */
export function udpDropsByOwner<K extends string>(
  before: UdpDropSample,
  after: UdpDropSample,
  owners: Record<K, number[]>,
): Record<K | 'other', number> {
  const ownerOf = new Map<number, K>();
  for (const [name, pids] of Object.entries(owners) as [K, number[]][])
    for (const pid of pids) for (const inode of socketInodes(pid)) ownerOf.set(inode, name);
  const out = Object.fromEntries([...Object.keys(owners), 'other'].map((k) => [k, 0])) as Record<K | 'other', number>;
  for (const [inode, drops] of after) {
    const d = drops - (before.get(inode) ?? 0);
    if (d > 0) out[ownerOf.get(inode) ?? 'other'] += d;
  }
  return out;
}
