/**
 * Per-room presence (viewers with media, chatters with the room joined),
 * pushed when it changes, coalesced to at most one push per room per
 * `intervalMs` however many sockets join or leave in between.
 */
export interface PresenceCounts {
  viewers: number;
  chatters: number;
}

export class Presence {
  readonly #counts = new Map<string, PresenceCounts>();
  readonly #dirty = new Set<string>();
  readonly #lastPush = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly push: (room: string, counts: PresenceCounts) => void,
    private readonly intervalMs = 250,
  ) {}

  get(room: string): PresenceCounts {
    return this.#counts.get(room) ?? { viewers: 0, chatters: 0 };
  }

  setViewers(room: string, viewers: number): void {
    this.#update(room, { ...this.get(room), viewers });
  }

  addChatter(room: string, delta: 1 | -1): void {
    const c = this.get(room);
    this.#update(room, { ...c, chatters: Math.max(0, c.chatters + delta) });
  }

  #update(room: string, next: PresenceCounts): void {
    const prev = this.get(room);
    if (prev.viewers === next.viewers && prev.chatters === next.chatters) return;
    if (next.viewers === 0 && next.chatters === 0) this.#counts.delete(room);
    else this.#counts.set(room, next);
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
      this.push(room, this.get(room));
    }
    if (this.#lastPush.size > 10_000) for (const [r, t] of this.#lastPush) if (now - t > this.intervalMs) this.#lastPush.delete(r);
    if (this.#dirty.size) this.#schedule();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
