/**
 * Where a channel's viewers sit: its audience spread over the workers. A
 * channel's viewers fill a router up to a limit, then the next router opens
 * on the least-loaded worker and the program is piped to it
 * (`pipeToRouter`). Viewers are grouped by delivery scheme (socket viewers,
 * or a WHEP payload-type scheme); the first socket router is the channel's
 * own router.
 */
import type { types } from 'mediasoup';
import type { SfuLogger } from './logger.ts';
import { PipeWarmUp } from './pipe-warm-up.ts';
import type { AudiencePlacement } from './types.ts';
import type { PooledWorker, WorkerPool } from './workers.ts';

export interface AudienceOptions {
  /** The pool the audience spreads over. */
  pool: WorkerPool;
  /** The channel's id (router appData, logs). */
  channelId: string;
  /** The channel's own worker and router (ingest, program). */
  slot: PooledWorker;
  router: types.Router;
  /** Viewers per router before the audience opens another one. */
  maxViewers: number;
  logger: SfuLogger;
}

/** The delivery scheme of socket viewers (mediasoup-client): the channel's own router first. */
export const SOCKET_SCHEME = 'socket';

/** One router of a channel's audience. */
class AudienceRouter {
  /** Viewers seated here (counted when seated, before the router is ready). */
  viewers = 0;
  /** Channel producer id → its pipe producer in this router, and that pipe's warm-up. */
  readonly piped = new Map<string, Promise<{ producer: types.Producer; warmUp: PipeWarmUp }>>();

  constructor(
    readonly slot: PooledWorker,
    readonly ready: Promise<types.Router>,
    /** The channel's own router: never closed for being empty. */
    readonly origin: boolean,
    /** The list of its scheme (it leaves it when its router closes or empties). */
    readonly list: AudienceRouter[],
  ) {}

  /** Leaves its list (no-op when already out). */
  drop(): void {
    const i = this.list.indexOf(this);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** Leaves its list and closes its router once it exists (the channel's own router closes with the channel). */
  close(): void {
    this.drop();
    if (!this.origin)
      void this.ready.then(
        (r) => r.close(),
        () => {},
      );
  }
}

/** One viewer's place in the audience, given back with `release()`. */
export class Seat {
  readonly #shard: AudienceRouter;
  readonly #audience: Audience;
  #released = false;

  /** @internal Made by `Audience.seat()`. */
  constructor(shard: AudienceRouter, audience: Audience) {
    this.#shard = shard;
    this.#audience = audience;
  }

  /** The worker the viewer was placed on. */
  get worker(): PooledWorker {
    return this.#shard.slot;
  }

  /** The router the viewer's transport and consumers live on. */
  router(): Promise<types.Router> {
    return this.#shard.ready;
  }

  /** The producer the viewer consumes for a channel producer: itself on the channel's router, else its pipe into the viewer's router. */
  async source(producer: types.Producer): Promise<types.Producer> {
    return (await this.#piped(producer))?.producer ?? producer;
  }

  /** The warm-up of the pipe a channel producer reaches the viewer's router by; null on the channel's own router (no pipe). */
  async warmUp(producer: types.Producer): Promise<PipeWarmUp | null> {
    return (await this.#piped(producer))?.warmUp ?? null;
  }

  async #piped(producer: types.Producer): Promise<{ producer: types.Producer; warmUp: PipeWarmUp } | null> {
    if (this.#shard.origin) return null;
    const router = await this.#shard.ready;
    const { piped } = this.#shard;
    let pipe = piped.get(producer.id);
    if (!pipe) {
      pipe = this.#audience.pipe(producer, router).then((p) => {
        const warmUp = new PipeWarmUp(p); // watched from the pipe's first packet on
        p.observer.once('close', () => piped.delete(producer.id));
        return { producer: p, warmUp };
      });
      piped.set(producer.id, pipe);
      pipe.catch(() => piped.delete(producer.id));
    }
    return pipe;
  }

  /** Gives the place back; an emptied router (not the channel's own) closes. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#shard.viewers--;
    this.#shard.slot.load--;
    if (this.#shard.viewers === 0 && !this.#shard.origin) this.#shard.close();
  }
}

export class Audience {
  /** Routers by delivery scheme. */
  readonly #schemes = new Map<string, AudienceRouter[]>();
  #closed = false;

  constructor(private readonly opts: AudienceOptions) {
    const socket: AudienceRouter[] = [];
    socket.push(new AudienceRouter(opts.slot, Promise.resolve(opts.router), true, socket));
    this.#schemes.set(SOCKET_SCHEME, socket);
  }

  /**
   * Seats a viewer on a router of a delivery scheme: the first with room, else
   * a new router on the least-loaded worker. Synchronous, so concurrent joins
   * count against the limit at once.
   */
  seat(scheme: string, codecs: types.RouterRtpCodecCapability[]): Seat {
    const { opts } = this;
    let shards = this.#schemes.get(scheme);
    if (!shards) this.#schemes.set(scheme, (shards = []));
    let shard = shards.find((x) => x.viewers < opts.maxViewers && !x.slot.worker.closed);
    if (!shard) {
      // the channel's own worker first (no pipe needed for its program), then the least loaded
      const slot = shards.length === 0 && !opts.slot.worker.closed ? opts.slot : opts.pool.leastLoaded();
      const ready = (async () => {
        const router = await slot.worker.createRouter({ mediaCodecs: codecs, appData: { channelId: opts.channelId, scheme } });
        if (opts.router.closed || this.#closed) router.close();
        else opts.router.observer.once('close', () => router.close());
        return router;
      })();
      const created = new AudienceRouter(slot, ready, false, shards);
      slot.load++; // the router, given back when it closes or could not be made
      const gone = () => {
        created.drop();
        slot.load--;
      };
      ready.then((r) => (r.closed ? gone() : r.observer.once('close', gone)), gone);
      shards.push(created);
      shard = created;
      if (shards.length > 1)
        opts.logger.info(
          { channelId: opts.channelId, scheme, worker: slot.index, routers: shards.length },
          'audience spread to another router',
        );
    }
    shard.viewers++;
    shard.slot.load++;
    return new Seat(shard, this);
  }

  /** @internal Pipes a channel producer into an audience router. */
  async pipe(producer: types.Producer, router: types.Router): Promise<types.Producer> {
    // the pipe is a UDP socket pair on loopback: a burst of the program (Node main catching up) must not overflow
    // the receiving end, which the worker drains only between its other work (no NACK on this pipe)
    const r = await this.opts.router.pipeToRouter({
      producerId: producer.id,
      router,
      keepId: false,
      listenInfo: { protocol: 'udp', ip: '127.0.0.1', ...this.opts.pool.udpBuffers },
    });
    return r.pipeProducer!;
  }

  /** Per worker: audience routers and viewers. */
  placement(): AudiencePlacement[] {
    const by = new Map<number, AudiencePlacement>();
    for (const shards of this.#schemes.values())
      for (const shard of shards) {
        const i = shard.slot.index;
        const p = by.get(i) ?? { worker: i, channel: shard.slot === this.opts.slot, routers: 0, viewers: 0 };
        p.routers++;
        p.viewers += shard.viewers;
        by.set(i, p);
      }
    return [...by.values()].sort((x, y) => x.worker - y.worker);
  }

  /** Closes every audience router but the channel's own (closed by the channel). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const shards of this.#schemes.values()) for (const shard of [...shards]) shard.close();
  }
}
