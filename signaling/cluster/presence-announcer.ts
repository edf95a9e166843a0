/**
 * This node's presence to the other nodes. Every room whose counts changed
 * since the last announcement goes in one bus event, at most once per
 * `intervalMs`: one NOTIFY per room and change would grow with rooms × nodes,
 * and Postgres delivers each to every node (see docs/scaling.md, bus load).
 */
import type { ClusterBus } from './bus.ts';
import type { PresenceEntry } from './events.ts';

/** Rooms per bus event: ~50 bytes each keeps a payload well under NOTIFY's 8000 bytes. */
export const ROOMS_PER_EVENT = 100;

export class PresenceAnnouncer {
  readonly #bus: ClusterBus;
  readonly #intervalMs: number;
  readonly #pending = new Map<string, PresenceEntry>();
  #last = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** @param intervalMs at most one announcement (of every changed room) this often. */
  constructor(bus: ClusterBus, intervalMs = 250) {
    this.#bus = bus;
    this.#intervalMs = intervalMs;
  }

  /** A room's own counts changed: announced with the others at the next announcement. */
  set(room: string, viewers: number, chatters: number): void {
    if (this.#closed) return;
    this.#pending.set(room, [room, viewers, chatters]);
    if (this.#timer) return;
    const wait = this.#last + this.#intervalMs - Date.now();
    if (wait <= 0) return this.#flush();
    this.#timer = setTimeout(() => this.#flush(), wait);
  }

  /** Announces these rooms now (a node said hello, or the periodic re-announcement), with whatever was pending. */
  announce(entries: Iterable<PresenceEntry>): void {
    if (this.#closed) return;
    for (const e of entries) this.#pending.set(e[0], e);
    this.#flush();
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#pending.size) return;
    this.#last = Date.now();
    const rooms = [...this.#pending.values()];
    this.#pending.clear();
    for (let i = 0; i < rooms.length; i += ROOMS_PER_EVENT)
      this.#bus.publish({ t: 'presences', rooms: rooms.slice(i, i + ROOMS_PER_EVENT) });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#pending.clear();
  }
}
