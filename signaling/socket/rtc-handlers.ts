/**
 * The `rtc.*` and `dvr.*` requests: mediasoup-client viewers over the socket.
 * A socket owns its receive transports (at most `MAX_TRANSPORTS_PER_SOCKET`,
 * and `maxTransportsPerAddress` over all sockets of one address, both reserved
 * before the SFU is asked); the consumers each transport was last given; and
 * gets `dvr.position` once a second while it watches the past.
 */
import { DomainError } from '../errors.ts';
import type { MediaLayer, ViewerRtc } from '../media.ts';
import type { ConsumerView, ServerFrame } from '../protocol.ts';
import type { Channels } from '../channels.ts';
import type { Handlers, Socket } from './sockets.ts';

/** Receive transports one socket may hold at once. */
export const MAX_TRANSPORTS_PER_SOCKET = 4;
const POSITION_INTERVAL_MS = 1000;

export type RtcRequest =
  | 'rtc.capabilities'
  | 'rtc.transport'
  | 'rtc.connect'
  | 'rtc.consume'
  | 'rtc.resume'
  | 'rtc.pause'
  | 'rtc.restartIce'
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
  /** A socket closed: its transports close. */
  closeAll(s: Socket): void;
  close(): void;
}

export function createRtcHandlers(opts: RtcHandlersOptions): RtcHandlers {
  const { media, send } = opts;
  /** transport id → the socket holding it. */
  const owners = new Map<string, Socket>();
  /** address → transports held or being created by its sockets. */
  const perAddress = new Map<string, number>();

  function rtc(): ViewerRtc {
    if (!media?.viewerRtc) throw new DomainError('unavailable', 'Media is not available on this server');
    return media.viewerRtc;
  }

  function reserve(s: Socket): void {
    const r = s.data.rtc;
    if (r.transports.size + r.pending >= MAX_TRANSPORTS_PER_SOCKET)
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

  /** Forgets a transport of a socket; true when it held it. */
  function release(s: Socket, transportId: string): boolean {
    if (!s.data.rtc.transports.delete(transportId)) return false;
    owners.delete(transportId);
    unreserve(s.data.address);
    return true;
  }

  async function assertChannel(streamId: string): Promise<void> {
    if (!(await opts.channels.get(streamId))) throw new DomainError('not_found', 'No such channel');
  }

  function own(s: Socket, transportId: string): Set<string> {
    const t = s.data.rtc.transports.get(transportId);
    if (!t) throw new DomainError('not_found', 'No such transport on this socket');
    return t.consumers;
  }

  /** Remembers the consumers a transport was given (they replace the previous ones). */
  function given(s: Socket, transportId: string, consumers: ConsumerView[]): ConsumerView[] {
    const t = s.data.rtc.transports.get(transportId);
    if (t) t.consumers = new Set(consumers.map((c) => c.id));
    return consumers;
  }

  function transportOf(s: Socket, consumerId: string): string {
    for (const [id, t] of s.data.rtc.transports) if (t.consumers.has(consumerId)) return id;
    throw new DomainError('not_found', 'No such consumer on this socket');
  }

  const onDvrSwitch = (transportId: string) => {
    const s = owners.get(transportId);
    if (s) send(s, { t: 'dvr.switch', transportId });
  };
  const onTransportClosed = (transportId: string, reason: string) => {
    const s = owners.get(transportId);
    if (s && release(s, transportId)) send(s, { t: 'rtc.closed', transportId, reason });
  };
  media?.events?.on('dvrSwitch', onDvrSwitch);
  media?.events?.on('transportClosed', onTransportClosed);
  // DVR position pushes, once a second, for viewers not watching live.
  const positionTimer = setInterval(() => {
    const viewerRtc = media?.viewerRtc;
    if (!viewerRtc) return;
    for (const [transportId, s] of owners) {
      const p = viewerRtc.dvrPosition(transportId);
      if (p) send(s, { t: 'dvr.position', transportId, ...p });
    }
  }, POSITION_INTERVAL_MS);
  positionTimer.unref();

  const handlers: Handlers<RtcRequest> = {
    async 'rtc.capabilities'(_s, f) {
      await assertChannel(f.streamId);
      return rtc().capabilities(f.streamId);
    },
    async 'rtc.transport'(s, f) {
      const viewerRtc = rtc();
      await assertChannel(f.streamId);
      reserve(s);
      let created = false;
      try {
        const t = await viewerRtc.createViewerTransport(f.streamId);
        if (s.closed) {
          viewerRtc.closeViewerTransport(t.id);
        } else {
          s.data.rtc.transports.set(t.id, { streamId: f.streamId, consumers: new Set() });
          owners.set(t.id, s);
          created = true;
        }
        return t;
      } finally {
        s.data.rtc.pending--;
        if (!created) unreserve(s.data.address);
      }
    },
    async 'rtc.connect'(s, f) {
      own(s, f.transportId);
      await rtc().connectViewerTransport(f.transportId, f.dtlsParameters);
      return {};
    },
    async 'rtc.consume'(s, f) {
      own(s, f.transportId);
      return { consumers: given(s, f.transportId, await rtc().consume(f.transportId, f.rtpCapabilities)) };
    },
    async 'rtc.resume'(s, f) {
      await rtc().resumeConsumer(transportOf(s, f.consumerId), f.consumerId);
      return {};
    },
    async 'rtc.pause'(s, f) {
      await rtc().pauseConsumer(transportOf(s, f.consumerId), f.consumerId);
      return {};
    },
    async 'rtc.restartIce'(s, f) {
      own(s, f.transportId);
      return { iceParameters: await rtc().restartViewerIce(f.transportId) };
    },
    'rtc.close'(s, f) {
      own(s, f.transportId);
      release(s, f.transportId);
      rtc().closeViewerTransport(f.transportId);
      return {};
    },
    async 'dvr.seek'(s, f) {
      own(s, f.transportId);
      // the schema lets exactly one through; this only narrows the type
      const target = f.offsetMs !== undefined ? { offsetMs: f.offsetMs } : f.deltaMs !== undefined ? { deltaMs: f.deltaMs } : null;
      if (!target) throw new DomainError('bad_frame', 'Give exactly one of offsetMs and deltaMs');
      const r = await rtc().dvrSeek(f.transportId, target);
      given(s, f.transportId, r.consumers);
      return r;
    },
    async 'dvr.live'(s, f) {
      own(s, f.transportId);
      return { consumers: given(s, f.transportId, await rtc().dvrLive(f.transportId)) };
    },
    'dvr.pause'(s, f) {
      own(s, f.transportId);
      rtc().dvrPause(f.transportId);
      return {};
    },
    'dvr.resume'(s, f) {
      own(s, f.transportId);
      rtc().dvrResume(f.transportId);
      return {};
    },
  };

  return {
    handlers,
    closeAll(s) {
      for (const transportId of [...s.data.rtc.transports.keys()]) {
        release(s, transportId);
        media?.viewerRtc?.closeViewerTransport(transportId);
      }
    },
    close() {
      clearInterval(positionTimer);
      media?.events?.off('dvrSwitch', onDvrSwitch);
      media?.events?.off('transportClosed', onTransportClosed);
    },
  };
}
