/**
 * The `rtc.*` and `dvr.*` requests: mediasoup-client viewers over the socket.
 * A socket holds its `SocketViewer` objects (at most `MAX_TRANSPORTS_PER_SOCKET`,
 * and `maxTransportsPerAddress` over all sockets of one address, both reserved
 * before the SFU is asked) and calls them directly; a viewer the server ends
 * (its worker was lost, its channel closed) is dropped and its client told
 * (`rtc.closed`). Viewers watching the past get `dvr.position` once a second.
 *
 * The web player watches with one request, `rtc.watch` (transport, DTLS, consumers, started by the server);
 * the step-by-step requests (`rtc.transport`, `rtc.connect`, `rtc.consume`, `rtc.resume`) remain for other
 * clients, for a channel that goes live later, and for a browser that cannot name its certificate beforehand.
 */
import { SfuError, type RtpCapabilities, type SocketViewer } from '@whipcast/sfu';
import { DomainError } from '../errors.ts';
import type { MediaLayer, SocketMedia } from '../media.ts';
import type { Results, ServerFrame } from '../protocol.ts';
import type { Channels } from '../channels.ts';
import type { Handlers, Socket } from './sockets.ts';

/** Receive transports one socket may hold at once. */
export const MAX_TRANSPORTS_PER_SOCKET = 4;
const POSITION_INTERVAL_MS = 1000;

export type RtcRequest =
  | 'rtc.watch'
  | 'rtc.capabilities'
  | 'rtc.transport'
  | 'rtc.connect'
  | 'rtc.consume'
  | 'rtc.resume'
  | 'rtc.pause'
  | 'rtc.restartIce'
  | 'rtc.layers'
  | 'rtc.preferLayer'
  | 'rtc.close'
  | 'dvr.seek'
  | 'dvr.live'
  | 'dvr.pause'
  | 'dvr.resume';

export interface RtcHandlersOptions {
  media: MediaLayer | undefined;
  channels: Pick<Channels, 'get'>;
  /** Media transports all sockets of one address may hold at once. */
  maxTransportsPerAddress: number;
  send(s: Socket, frame: ServerFrame): void;
}

export interface RtcHandlers {
  handlers: Handlers<RtcRequest>;
  /** A socket closed: its viewers close. */
  closeAll(s: Socket): void;
  close(): void;
}

export function createRtcHandlers(opts: RtcHandlersOptions): RtcHandlers {
  const { media, send } = opts;
  /** Every socket's viewers, with the socket (for the position pushes). */
  const held = new Map<SocketViewer, Socket>();
  /** address → transports held or being created by its sockets. */
  const perAddress = new Map<string, number>();

  function viewers(): SocketMedia {
    if (!media?.socketViewers) throw new DomainError('unavailable', 'Media is not available on this server');
    return media.socketViewers;
  }

  function reserve(s: Socket): void {
    const r = s.data.rtc;
    if (r.viewers.size + r.pending >= MAX_TRANSPORTS_PER_SOCKET)
      throw new DomainError('rate_limited', `At most ${MAX_TRANSPORTS_PER_SOCKET} media transports on one socket`);
    const n = perAddress.get(s.data.address) ?? 0;
    if (n >= opts.maxTransportsPerAddress)
      throw new DomainError('rate_limited', 'Too many media transports from this address; close some first', 5000);
    r.pending++;
    perAddress.set(s.data.address, n + 1);
  }

  function unreserve(address: string): void {
    const n = (perAddress.get(address) ?? 1) - 1;
    if (n > 0) perAddress.set(address, n);
    else perAddress.delete(address);
  }

  /** The socket holds the viewer until it closes (whoever closes it). */
  function hold(s: Socket, viewer: SocketViewer): void {
    s.data.rtc.viewers.set(viewer.id, viewer);
    held.set(viewer, s);
    viewer.on('switch', () => send(s, { t: 'dvr.switch', transportId: viewer.id }));
    viewer.on('recover', (consumers) => send(s, { t: 'dvr.recover', transportId: viewer.id, consumers }));
    viewer.once('close', (reason, byServer) => {
      s.data.rtc.viewers.delete(viewer.id);
      held.delete(viewer);
      unreserve(s.data.address);
      if (byServer) send(s, { t: 'rtc.closed', transportId: viewer.id, reason });
    });
  }

  async function assertChannel(channelId: string): Promise<void> {
    if (!(await opts.channels.get(channelId))) throw new DomainError('not_found', 'No such channel');
  }

  /** A new viewer of the channel, held by the socket (within the caps). */
  async function newViewer(s: Socket, channelId: string): Promise<SocketViewer> {
    const media = viewers();
    reserve(s);
    let viewer: SocketViewer | undefined;
    try {
      viewer = await media.createViewer(channelId);
    } finally {
      s.data.rtc.pending--;
      if (!viewer) unreserve(s.data.address);
    }
    hold(s, viewer);
    if (s.closed) viewer.close();
    return viewer;
  }

  /** Consumers of the channel for the device (none, and what it cannot play, when it can play none of it). */
  async function consume(viewer: SocketViewer, rtpCapabilities: RtpCapabilities): Promise<Results['rtc.consume']> {
    const unplayable = viewer.unplayable(rtpCapabilities);
    // nothing it can decode: no consumers (and not counted as watching); the player tells the viewer why
    if (unplayable.length > 0 && unplayable.length === viewer.channel.programTracks().length) return { consumers: [], unplayable };
    const consumers = await viewer.consume(rtpCapabilities);
    return { consumers, unplayable, transcoded: viewer.transcoded(rtpCapabilities) };
  }

  function own(s: Socket, transportId: string): SocketViewer {
    const v = s.data.rtc.viewers.get(transportId);
    if (!v) throw new DomainError('not_found', 'No such transport on this socket');
    return v;
  }

  function ownerOf(s: Socket, consumerId: string): SocketViewer {
    for (const v of s.data.rtc.viewers.values()) if (v.hasConsumer(consumerId)) return v;
    throw new DomainError('not_found', 'No such consumer on this socket');
  }

  // DVR position pushes, once a second, for viewers not watching live.
  const positionTimer = setInterval(() => {
    for (const [viewer, s] of held) {
      const p = viewer.position();
      if (p) send(s, { t: 'dvr.position', transportId: viewer.id, ...p });
    }
  }, POSITION_INTERVAL_MS);
  positionTimer.unref();

  const handlers: Handlers<RtcRequest> = {
    async 'rtc.watch'(s, f) {
      const media = viewers();
      await Promise.all([assertChannel(f.streamId), media.ensure(f.streamId)]);
      const viewer = await newViewer(s, f.streamId);
      try {
        // the DTLS parameters and the consumers are independent: asked of the worker together
        const [, watched] = await Promise.all([
          f.dtlsParameters ? viewer.connect(f.dtlsParameters) : null,
          viewer.channel.live
            ? consume(viewer, f.rtpCapabilities).catch((err: unknown) => {
                // it went offline just now: as if it were offline (the player waits for `stream.live`)
                if (err instanceof SfuError && err.code === 'stream_offline') return null;
                throw err;
              })
            : null,
        ]);
        if (!watched) return { transport: viewer.view, live: false, consumers: [], unplayable: [] };
        // started here, not by `rtc.resume`: media flows as soon as the client's DTLS is up
        if (watched.consumers.length) void viewer.start().catch(() => {}); // closed meanwhile
        return { transport: viewer.view, live: true, ...watched };
      } catch (err) {
        viewer.close();
        throw err;
      }
    },
    async 'rtc.capabilities'(_s, f) {
      await assertChannel(f.streamId);
      return viewers().capabilities(f.streamId);
    },
    async 'rtc.transport'(s, f) {
      viewers();
      await assertChannel(f.streamId);
      return (await newViewer(s, f.streamId)).view;
    },
    async 'rtc.connect'(s, f) {
      await own(s, f.transportId).connect(f.dtlsParameters);
      return {};
    },
    async 'rtc.consume'(s, f) {
      const viewer = own(s, f.transportId);
      await viewers().ensure(viewer.channel.id);
      return consume(viewer, f.rtpCapabilities);
    },
    async 'rtc.resume'(s, f) {
      await ownerOf(s, f.consumerId).resumeConsumer(f.consumerId);
      return {};
    },
    async 'rtc.pause'(s, f) {
      await ownerOf(s, f.consumerId).pauseConsumer(f.consumerId);
      return {};
    },
    async 'rtc.restartIce'(s, f) {
      return { iceParameters: await own(s, f.transportId).restartIce() };
    },
    'rtc.layers'(s, f) {
      return own(s, f.transportId).layers();
    },
    async 'rtc.preferLayer'(s, f) {
      return own(s, f.transportId).preferLayer(f.spatialLayer);
    },
    'rtc.close'(s, f) {
      own(s, f.transportId).close();
      return {};
    },
    async 'dvr.seek'(s, f) {
      const viewer = own(s, f.transportId);
      // the schema lets exactly one through; this only narrows the type
      const target = f.offsetMs !== undefined ? { offsetMs: f.offsetMs } : f.deltaMs !== undefined ? { deltaMs: f.deltaMs } : null;
      if (!target) throw new DomainError('bad_frame', 'Give exactly one of offsetMs and deltaMs');
      return viewer.seek(target);
    },
    async 'dvr.live'(s, f) {
      const viewer = own(s, f.transportId);
      await viewers().ensure(viewer.channel.id);
      return { consumers: await viewer.live() };
    },
    'dvr.pause'(s, f) {
      own(s, f.transportId).pause();
      return {};
    },
    async 'dvr.resume'(s, f) {
      return own(s, f.transportId).resume();
    },
  };

  return {
    handlers,
    closeAll(s) {
      for (const viewer of [...s.data.rtc.viewers.values()]) viewer.close();
    },
    close() {
      clearInterval(positionTimer);
    },
  };
}
