/**
 * Relays between nodes over PipeTransports. On the origin, a `Relay` pipes a
 * live channel's program tracks to another node (the edge); on the edge, the
 * other end is a `RelayIngest` (ingest.ts) feeding the channel there.
 */
import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { ProgramTrack } from './program.ts';
import type { PipeEndpoint, RelayOffer } from './types.ts';

/** Where this node's PipeTransports listen and what address other nodes reach them at. */
export interface PipeConfig {
  /** The local IP to listen on. */
  listenIp: string;
  /** The address other nodes reach it at (default: the listen IP). */
  announcedAddress?: string | undefined;
  /** Receive and send buffer sizes of the pipe's UDP socket (default: the kernel's). */
  udpBuffers?: { recvBufferSize?: number; sendBufferSize?: number };
}

/** A PipeTransport on a channel's router for a relay (SRTP, RTX). */
export function createPipe(router: types.Router, config: PipeConfig, appData: Record<string, unknown>): Promise<types.PipeTransport> {
  const announced = config.announcedAddress;
  return router.createPipeTransport({
    listenInfo: { protocol: 'udp', ip: config.listenIp, ...(announced ? { announcedAddress: announced } : {}), ...config.udpBuffers },
    enableSrtp: true,
    enableRtx: true,
    appData,
  });
}

/** The pipe end another node connects to. */
export function endpointOf(t: types.PipeTransport, config: PipeConfig): PipeEndpoint {
  return { ip: config.announcedAddress ?? t.tuple.localAddress, port: t.tuple.localPort, srtpParameters: t.srtpParameters };
}

export interface RelayEvents {
  /** The relay ended (closed here, or its channel or transport closed). */
  close: [];
}

/** Origin side: a channel piped to another node. Lasts until closed or until its channel closes. */
export class Relay extends EventEmitter<RelayEvents> {
  /** Emits `close` for outsiders (metrics, tests). */
  readonly observer = new EventEmitter<RelayEvents>();
  #closed = false;

  private constructor(
    /** The channel it carries. */
    readonly channelId: string,
    /** The node it goes to. */
    readonly peer: string,
    readonly transport: types.PipeTransport,
    /** What the edge needs: this end and the tracks' RTP parameters. */
    readonly offer: RelayOffer,
  ) {
    super();
    transport.observer.once('close', () => this.close());
  }

  /** @internal Made by `Channel.serveRelay()`: pipes the tracks to `remote`. */
  static async create(
    router: types.Router,
    config: PipeConfig,
    channelId: string,
    peer: string,
    remote: PipeEndpoint,
    program: ProgramTrack[],
  ): Promise<Relay> {
    const transport = await createPipe(router, config, { channelId, role: 'relay-out', peer });
    const tracks: RelayOffer['tracks'] = [];
    try {
      await transport.connect(remote);
      for (const track of program) {
        const consumer = await transport.consume({ producerId: track.producer.id });
        tracks.push({ kind: track.kind, rtpParameters: consumer.rtpParameters });
      }
    } catch (err) {
      transport.close();
      throw err;
    }
    return new Relay(channelId, peer, transport, { endpoint: endpointOf(transport, config), tracks });
  }

  /** The relay's id (its PipeTransport's). */
  get id(): string {
    return this.transport.id;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops sending. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.transport.close();
    this.emit('close');
    this.observer.emit('close');
  }
}
