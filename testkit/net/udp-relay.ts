/**
 * A userspace UDP relay that puts an impaired link between a peer and one
 * server address (this kernel has no netem). The peer is told to send to the
 * relay instead of the server (its ICE candidates are rewritten, see
 * `rewriteCandidates` and `impairPage`); the relay forwards each peer's
 * datagrams from a socket of its own (the server sees one address per peer, as
 * behind a NAT) and sends the answers back, each direction through its own
 * `LinkScheduler`. Other peers talking to the server directly are unaffected.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { LinkScheduler, type LinkCounters, type LinkImpairment } from './link.ts';

export interface UdpRelayOptions {
  /** The server's address the relay stands in front of. */
  target: { address: string; port: number };
  /** Address the relay listens on (default 127.0.0.1); port 0 = any free one. */
  listen?: { address?: string; port?: number };
  /** Impairment of what the peer receives (server → peer). */
  toPeer?: LinkImpairment;
  /** Impairment of what the server receives (peer → server). */
  toServer?: LinkImpairment;
  /** Random source for loss and jitter (tests may seed it). */
  random?: () => number;
}

export type RelayDirection = 'toPeer' | 'toServer';

interface Delivery {
  at: number;
  data: Buffer;
  send: (data: Buffer) => void;
}

/** Datagrams due within this of now go out in the same timer run. */
const SLACK_MS = 0.5;

/** Delivers datagrams at their scheduled times with one timer. */
class DeliveryQueue {
  #items: Delivery[] = [];
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  sent = 0;
  sentBytes = 0;

  push(d: Delivery): void {
    // Insert sorted by time (stable: equal times keep arrival order).
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#items[mid]!.at <= d.at) lo = mid + 1;
      else hi = mid;
    }
    this.#items.splice(lo, 0, d);
    this.#arm();
  }

  #arm(): void {
    const next = this.#items[0];
    if (!next) return;
    if (this.#timer && next.at >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = next.at;
    this.#timer = setTimeout(() => this.#run(), Math.max(0, next.at - performance.now()));
  }

  #run(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = performance.now();
    while (this.#items.length && this.#items[0]!.at <= now + SLACK_MS) this.#deliver(this.#items.shift()!);
    this.#arm();
  }

  #deliver(d: Delivery): void {
    this.sent++;
    this.sentBytes += d.data.length;
    d.send(d.data);
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#items = [];
  }
}

export interface RelayCounters extends LinkCounters {
  /** Datagrams actually sent out of the relay in this direction. */
  sent: number;
  sentBytes: number;
}

export class UdpRelay extends EventEmitter<{ close: [] }> {
  readonly target: { address: string; port: number };
  #listen: Socket;
  /** One upstream socket per peer address (peer key "ip:port"). */
  #upstream = new Map<string, Socket>();
  #links: Record<RelayDirection, LinkScheduler>;
  #queues: Record<RelayDirection, DeliveryQueue> = { toPeer: new DeliveryQueue(), toServer: new DeliveryQueue() };
  #closed = false;
  #address: { address: string; port: number };

  private constructor(opts: UdpRelayOptions, listen: Socket) {
    super();
    const a = listen.address();
    this.#address = { address: a.address, port: a.port };
    this.target = opts.target;
    this.#listen = listen;
    const random = opts.random ?? Math.random;
    this.#links = { toPeer: new LinkScheduler(opts.toPeer, random), toServer: new LinkScheduler(opts.toServer, random) };
    listen.on('message', (msg, from) => this.#fromPeer(msg, from));
    listen.on('error', () => {}); // e.g. ICMP port unreachable from a peer that went away
  }

  /** Opens the relay's listening socket. */
  static async create(opts: UdpRelayOptions): Promise<UdpRelay> {
    const address = opts.listen?.address ?? '127.0.0.1';
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.listen?.port ?? 0, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpRelay(opts, socket);
  }

  /** Where peers send to (announce this instead of `target`). */
  get address(): { address: string; port: number } {
    return { ...this.#address };
  }

  /** Changes a direction's impairment from now on (e.g. lifts a cap mid-test). */
  setImpairment(direction: RelayDirection, impairment: LinkImpairment): void {
    this.#links[direction].set(impairment);
  }

  /** Counters per direction. */
  counters(): Record<RelayDirection, RelayCounters> {
    const one = (d: RelayDirection): RelayCounters => ({
      ...this.#links[d].counters,
      sent: this.#queues[d].sent,
      sentBytes: this.#queues[d].sentBytes,
    });
    return { toPeer: one('toPeer'), toServer: one('toServer') };
  }

  #fromPeer(msg: Buffer, from: RemoteInfo): void {
    if (this.#closed) return;
    const key = `${from.address}:${from.port}`;
    let up = this.#upstream.get(key);
    if (!up) {
      up = createSocket(this.target.address.includes(':') ? 'udp6' : 'udp4');
      up.on('error', () => {});
      up.on('message', (reply) => this.#schedule('toPeer', reply, (d) => this.#listen.send(d, from.port, from.address)));
      up.bind(0, this.target.address.includes(':') ? '::1' : isLoopback(this.target.address) ? '127.0.0.1' : undefined);
      this.#upstream.set(key, up);
    }
    const socket = up;
    this.#schedule('toServer', msg, (d) => socket.send(d, this.target.port, this.target.address));
  }

  #schedule(direction: RelayDirection, data: Buffer, send: (d: Buffer) => void): void {
    if (this.#closed) return;
    const now = performance.now();
    const at = this.#links[direction].admit(data.length, now);
    if (at === null) return;
    const safeSend = (d: Buffer): void => {
      if (!this.#closed) send(d);
    };
    if (at <= now) {
      this.#queues[direction].sent++;
      this.#queues[direction].sentBytes += data.length;
      safeSend(data);
    } else this.#queues[direction].push({ at, data, send: safeSend });
  }

  /** Stops relaying and closes every socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of Object.values(this.#queues)) q.clear();
    this.#listen.close();
    for (const s of this.#upstream.values()) s.close();
    this.#upstream.clear();
    this.emit('close');
  }
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}
