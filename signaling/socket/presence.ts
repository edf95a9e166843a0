/**
 * Per-room presence (viewers with media, chatters with the room joined),
 * summed over the nodes of a cluster: this node's own counts plus the last
 * counts each other node announced. `totals` is emitted when a room's total
 * changes, coalesced to at most once per room per `intervalMs` however many
 * sockets join or leave in between; `local` (this node's own counts, to
 * announce to the others) at the same pace.
 */
import { EventEmitter } from 'node:events';

export interface PresenceCounts {
  viewers: number;
  chatters: number;
}

const ZERO: PresenceCounts = { viewers: 0, chatters: 0 };

export interface PresenceEvents {
  /** A room's totals over every node changed. */
  totals: [room: string, totals: PresenceCounts];
  /** This node's own counts in a room changed. */
  local: [room: string, own: PresenceCounts];
}

export class Presence extends EventEmitter<PresenceEvents> {
  readonly #local = new Map<string, PresenceCounts>();
  /** node id → room → that node's counts. */
  readonly #remote = new Map<string, Map<string, PresenceCounts>>();
  readonly #dirty = new Set<string>();
  readonly #localDirty = new Set<string>();
  readonly #lastPush = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  /** @param intervalMs at most one `totals` (and `local`) per room this often. */
  constructor(private readonly intervalMs = 250) {
    super();
  }

  /** Totals over every node. */
  get(room: string): PresenceCounts {
    const own = this.#local.get(room) ?? ZERO;
    let { viewers, chatters } = own;
    for (const rooms of this.#remote.values()) {
      const c = rooms.get(room);
      if (c) {
        viewers += c.viewers;
        chatters += c.chatters;
      }
    }
    return { viewers, chatters };
  }

  /** This node's own counts in a room. */
  local(room: string): PresenceCounts {
    return this.#local.get(room) ?? ZERO;
  }

  /** Rooms where this node has anyone. */
  localRooms(): [string, PresenceCounts][] {
    return [...this.#local];
  }

  setViewers(room: string, viewers: number): void {
    this.#updateLocal(room, { ...this.local(room), viewers });
  }

  addChatter(room: string, delta: 1 | -1): void {
    const c = this.local(room);
    this.#updateLocal(room, { ...c, chatters: Math.max(0, c.chatters + delta) });
  }

  /** Another node's counts in a room. */
  setRemote(node: string, room: string, counts: PresenceCounts): void {
    let rooms = this.#remote.get(node);
    const prev = rooms?.get(room) ?? ZERO;
    if (prev.viewers === counts.viewers && prev.chatters === counts.chatters) return;
    if (!rooms) this.#remote.set(node, (rooms = new Map()));
    if (counts.viewers === 0 && counts.chatters === 0) rooms.delete(room);
    else rooms.set(room, { viewers: counts.viewers, chatters: counts.chatters });
    if (rooms.size === 0) this.#remote.delete(node);
    this.#markDirty(room);
  }

  /** A node is gone: its viewers and chatters no longer count. */
  dropNode(node: string): void {
    const rooms = this.#remote.get(node);
    if (!rooms) return;
    this.#remote.delete(node);
    for (const room of rooms.keys()) this.#markDirty(room);
  }

  #updateLocal(room: string, next: PresenceCounts): void {
    const prev = this.local(room);
    if (prev.viewers === next.viewers && prev.chatters === next.chatters) return;
    if (next.viewers === 0 && next.chatters === 0) this.#local.delete(room);
    else this.#local.set(room, next);
    this.#localDirty.add(room);
    this.#markDirty(room);
  }

  #markDirty(room: string): void {
    this.#dirty.add(room);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) return;
    const now = Date.now();
    let wait = this.intervalMs;
    for (const room of this.#dirty) wait = Math.min(wait, Math.max(0, (this.#lastPush.get(room) ?? 0) + this.intervalMs - now));
    this.#timer = setTimeout(() => this.#flush(), wait);
  }

  #flush(): void {
    this.#timer = null;
    const now = Date.now();
    for (const room of [...this.#dirty]) {
      if (now - (this.#lastPush.get(room) ?? 0) < this.intervalMs) continue;
      this.#dirty.delete(room);
      this.#lastPush.set(room, now);
      if (this.#localDirty.delete(room)) this.emit('local', room, this.local(room));
      this.emit('totals', room, this.get(room));
    }
    if (this.#lastPush.size > 10_000) for (const [r, t] of this.#lastPush) if (now - t > this.intervalMs) this.#lastPush.delete(r);
    if (this.#dirty.size) this.#schedule();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
