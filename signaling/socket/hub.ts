/**
 * The /ws socket: one per browser tab, MessagePack frames (protocol.ts).
 * Multiplexes chat rooms, presence and viewer WebRTC signaling.
 *
 * Backpressure policy: room pushes go to each socket with `send`; when a
 * socket's outgoing buffer is over WS_MAX_BACKPRESSURE_BYTES the frame is
 * dropped and the socket gets `chat.resync` for that room once it drains
 * (the client refetches history). A socket that stays over the limit for
 * SLOW_SOCKET_GRACE_MS is closed with 4009. Requests are answered whatever
 * the room traffic, since they are sent only in reply to the socket's own frames.
 *
 * Room pushes (chat) and presence go through the cluster bus, so sockets on
 * every node of a cluster get them; a lone node's bus is in-process.
 */
import type { User } from '@whipcast/db';
import type { Logger } from 'pino';
import type { Accounts } from '../accounts.ts';
import { SfuError } from '@whipcast/sfu';
import type { MediaLayer } from '../media.ts';
import {
  CLOSE_CODES,
  encodeFrame,
  parseClientFrame,
  PROTOCOL_VERSION,
  type ClientFrame,
  type ErrorCode,
  type Results,
  type ServerFrame,
} from '../protocol.ts';
import type { SocketHandle, UpgradeInfo, WebSocketOptions } from '../uws.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import type { RoomFrame } from '../cluster/events.ts';
import { ChatError, type Chat } from './chat.ts';
import { Presence } from './presence.ts';

export interface SocketState {
  id: number;
  user: User | null;
  rooms: Set<string>;
  /** Rooms whose pushes were dropped: owe a resync. */
  resync: Set<string>;
  transports: Map<string, string>; // transportId → streamId
  /** Token bucket for the per-socket message rate. */
  tokens: number;
  lastRefill: number;
  badFrames: number;
  overSince: number | null;
}

export interface HubOptions {
  accounts: Accounts;
  chat: Chat;
  media: MediaLayer | undefined;
  /** Carries room pushes and presence to (and from) the other nodes. */
  bus: ClusterBus;
  /** This node's id on the bus. */
  nodeId: string;
  logger: Logger;
  maxPayloadBytes: number;
  maxBackpressureBytes: number;
  messagesPerSecond: number;
  /** Counts a socket metric. */
  onFrame?(type: string, ok: boolean): void;
}

const SLOW_SOCKET_GRACE_MS = 10_000;
const MAX_TRANSPORTS_PER_SOCKET = 4;
const MAX_ROOMS_PER_SOCKET = 20;
const MAX_BAD_FRAMES = 50;
const PRESENCE_REANNOUNCE_MS = 30_000;

export interface Hub {
  websocket: WebSocketOptions<SocketState>;
  presence: Presence;
  /** Sockets connected now. */
  size(): number;
  close(): void;
}

export function createHub(opts: HubOptions): Hub {
  const { chat, media, logger, bus } = opts;
  const sockets = new Set<SocketHandle<SocketState>>();
  const roomMembers = new Map<string, Set<SocketHandle<SocketState>>>();
  let nextId = 1;

  const sendTo = (s: SocketHandle<SocketState>, frame: ServerFrame): void => {
    if (s.closed) return;
    s.send(encodeFrame(frame));
  };

  function pushToRoom(room: string, frame: ServerFrame): void {
    const members = roomMembers.get(room);
    if (!members?.size) return;
    const bytes = encodeFrame(frame);
    const now = Date.now();
    for (const s of members) {
      if (s.closed) continue;
      const result = s.send(bytes);
      if (result === 'dropped') {
        s.data.resync.add(room);
        s.data.overSince ??= now;
        if (now - s.data.overSince > SLOW_SOCKET_GRACE_MS) s.end(CLOSE_CODES.tooSlow, 'too slow');
      } else if (result === 'sent') s.data.overSince = null;
    }
  }

  const lobby = new Set<SocketHandle<SocketState>>();
  const liveRooms = new Set<string>();
  const presence = new Presence(
    (room, counts) => {
      pushToRoom(room, { t: 'presence', room, ...counts });
      pushToLobby(room);
    },
    250,
    (room, own) => bus.publish({ t: 'presence', room, ...own }),
  );
  function pushToLobby(room: string): void {
    if (!lobby.size) return;
    const bytes = encodeFrame({ t: 'lobby.update', room, live: liveRooms.has(room), viewers: presence.get(room).viewers });
    for (const s of lobby) if (!s.closed) s.send(bytes);
  }
  /** A chat push to the room's sockets on every node. */
  const broadcast = (frame: RoomFrame) => bus.publish({ t: 'room', room: frame.room, frame });
  const unsubscribe = bus.subscribe((m) => {
    const remote = m.from !== opts.nodeId;
    switch (m.t) {
      case 'room':
        pushToRoom(m.room, m.frame);
        break;
      case 'presence':
        if (remote) presence.setRemote(m.from, m.room, { viewers: m.viewers, chatters: m.chatters });
        break;
      case 'hello':
        if (remote) announcePresence();
        break;
      case 'nodeLost':
        presence.dropNode(m.node);
        break;
    }
  });
  /** This node's own counts in every room it has anyone in, to the other nodes. */
  function announcePresence(): void {
    for (const [room, own] of presence.localRooms()) bus.publish({ t: 'presence', room, ...own });
  }
  // the other nodes answer with their presence
  bus.publish({ t: 'hello' });
  // and it is re-announced now and then, so counts heal after a notification lost in a reconnect
  const announceTimer = setInterval(announcePresence, PRESENCE_REANNOUNCE_MS);
  announceTimer.unref();
  const onViewers = (room: string, n: number) => presence.setViewers(room, n);
  const onLive = (room: string) => {
    liveRooms.add(room);
    pushToRoom(room, { t: 'stream.live', room });
    pushToLobby(room);
  };
  const onOffline = (room: string, reason: string) => {
    liveRooms.delete(room);
    pushToRoom(room, { t: 'stream.offline', room, reason });
    pushToLobby(room);
  };
  const onReconsume = (room: string) => pushToRoom(room, { t: 'rtc.reconsume', room });
  const transportOwner = new Map<string, SocketHandle<SocketState>>();
  const onDvrSwitch = (transportId: string) => {
    const s = transportOwner.get(transportId);
    if (s) sendTo(s, { t: 'dvr.switch', transportId });
  };
  media?.events?.on('dvrSwitch', onDvrSwitch);
  const onTransportClosed = (transportId: string, reason: string) => {
    const s = transportOwner.get(transportId);
    transportOwner.delete(transportId);
    if (s) sendTo(s, { t: 'rtc.closed', transportId, reason });
  };
  media?.events?.on('transportClosed', onTransportClosed);
  // DVR position pushes, once a second, for viewers not watching live.
  const positionTimer = setInterval(() => {
    if (!media?.viewerRtc) return;
    for (const [transportId, s] of transportOwner) {
      const p = media.viewerRtc.dvrPosition(transportId);
      if (p) sendTo(s, { t: 'dvr.position', transportId, ...p });
    }
  }, 1000);
  media?.events?.on('viewers', onViewers);
  media?.events?.on('live', onLive);
  media?.events?.on('offline', onOffline);
  media?.events?.on('reconsume', onReconsume);

  function leave(s: SocketHandle<SocketState>, room: string): void {
    if (!s.data.rooms.delete(room)) return;
    const members = roomMembers.get(room);
    members?.delete(s);
    if (members && members.size === 0) roomMembers.delete(room);
    presence.addChatter(room, -1);
  }

  function rtc() {
    if (!media?.viewerRtc) throw new ChatError('unavailable', 'Media is not available on this server');
    return media.viewerRtc;
  }

  function ownTransport(s: SocketHandle<SocketState>, transportId: string): string {
    const streamId = s.data.transports.get(transportId);
    if (!streamId) throw new ChatError('not_found', 'No such transport on this socket');
    return streamId;
  }

  async function handle(s: SocketHandle<SocketState>, f: ClientFrame): Promise<Results[ClientFrame['t']]> {
    const user = s.data.user;
    switch (f.t) {
      case 'ping':
        return { now: Date.now() };
      case 'auth': {
        if (f.token === null) {
          s.data.user = null;
          return { user: null };
        }
        const u = await opts.accounts.authenticate(f.token);
        if (!u) throw new ChatError('unauthorized', 'Invalid or expired session token');
        s.data.user = u;
        return { user: { id: u.id, username: u.username } };
      }
      case 'lobby.join':
        lobby.add(s);
        return {};
      case 'lobby.leave':
        lobby.delete(s);
        return {};
      case 'chat.join': {
        if (!s.data.rooms.has(f.room) && s.data.rooms.size >= MAX_ROOMS_PER_SOCKET)
          throw new ChatError('rate_limited', 'Too many rooms on one socket');
        const joined = await chat.join(f.room, user);
        if (!s.data.rooms.has(f.room)) {
          s.data.rooms.add(f.room);
          let members = roomMembers.get(f.room);
          if (!members) roomMembers.set(f.room, (members = new Set()));
          members.add(s);
          presence.addChatter(f.room, 1);
        }
        const counts = presence.get(f.room);
        return {
          room: f.room,
          live: joined.room.streamStatus === 'live',
          slowModeSeconds: joined.room.slowModeSeconds,
          maxMessageLength: chat.maxMessageLength,
          canSend: joined.canSend,
          isOwner: joined.isOwner,
          history: joined.history,
          viewers: counts.viewers,
          chatters: counts.chatters,
        };
      }
      case 'chat.leave':
        leave(s, f.room);
        return {};
      case 'chat.history':
        return { messages: await chat.history(f.room, user, f.before, f.limit) };
      case 'chat.send': {
        if (!s.data.rooms.has(f.room)) throw new ChatError('not_joined', 'Join the room first');
        const message = await chat.send(f.room, user, f.text);
        broadcast({ t: 'chat.message', room: f.room, message });
        return { message };
      }
      case 'chat.delete':
        await chat.delete(f.room, user, f.messageId);
        broadcast({ t: 'chat.deleted', room: f.room, messageId: f.messageId });
        return {};
      case 'chat.timeout': {
        const until = await chat.timeout(f.room, user, f.userId, f.seconds);
        broadcast({ t: 'chat.moderation', room: f.room, action: 'timeout', userId: f.userId, until: until.toISOString() });
        return { until: until.toISOString() };
      }
      case 'chat.ban':
        await chat.ban(f.room, user, f.userId);
        broadcast({ t: 'chat.moderation', room: f.room, action: 'ban', userId: f.userId, until: null });
        return {};
      case 'chat.unban':
        await chat.unban(f.room, user, f.userId);
        broadcast({ t: 'chat.moderation', room: f.room, action: 'unban', userId: f.userId, until: null });
        return {};
      case 'chat.slowmode':
        await chat.slowMode(f.room, user, f.seconds);
        broadcast({ t: 'chat.slowmode', room: f.room, seconds: f.seconds });
        return { seconds: f.seconds };
      case 'rtc.capabilities': {
        await chat.room(f.streamId);
        const c = await rtc().capabilities(f.streamId);
        return { routerRtpCapabilities: c.routerRtpCapabilities as Record<string, unknown>, live: c.live };
      }
      case 'rtc.transport': {
        await chat.room(f.streamId);
        if (s.data.transports.size >= MAX_TRANSPORTS_PER_SOCKET) throw new ChatError('rate_limited', 'Too many transports on one socket');
        const t = await rtc().createViewerTransport(f.streamId);
        s.data.transports.set(t.id, f.streamId);
        transportOwner.set(t.id, s);
        if (s.closed) rtc().closeViewerTransport(t.id);
        return t as unknown as Results['rtc.transport'];
      }
      case 'rtc.connect':
        ownTransport(s, f.transportId);
        await rtc().connectViewerTransport(f.transportId, f.dtlsParameters as never);
        return {};
      case 'rtc.consume': {
        ownTransport(s, f.transportId);
        const consumers = await rtc().consume(f.transportId, f.rtpCapabilities as never);
        return { consumers: consumers as unknown as Results['rtc.consume']['consumers'] };
      }
      case 'rtc.resume':
      case 'rtc.pause': {
        const owner = [...s.data.transports.keys()];
        let done = false;
        for (const transportId of owner) {
          try {
            await (f.t === 'rtc.resume' ? rtc().resumeConsumer(transportId, f.consumerId) : rtc().pauseConsumer(transportId, f.consumerId));
            done = true;
            break;
          } catch (e) {
            if (!(e instanceof SfuError && e.code === 'not_found')) throw e;
          }
        }
        if (!done) throw new ChatError('not_found', 'No such consumer on this socket');
        return {};
      }
      case 'rtc.restartIce':
        ownTransport(s, f.transportId);
        return { iceParameters: (await rtc().restartViewerIce(f.transportId)) as Record<string, unknown> };
      case 'rtc.close':
        ownTransport(s, f.transportId);
        rtc().closeViewerTransport(f.transportId);
        s.data.transports.delete(f.transportId);
        transportOwner.delete(f.transportId);
        return {};
      case 'dvr.seek': {
        ownTransport(s, f.transportId);
        if ((f.offsetMs === undefined) === (f.deltaMs === undefined))
          throw new ChatError('bad_frame', 'Give exactly one of offsetMs and deltaMs');
        const target = f.offsetMs !== undefined ? { offsetMs: f.offsetMs } : { deltaMs: f.deltaMs! };
        return (await rtc().dvrSeek(f.transportId, target)) as unknown as Results['dvr.seek'];
      }
      case 'dvr.live':
        ownTransport(s, f.transportId);
        return { consumers: (await rtc().dvrLive(f.transportId)) as unknown as Results['dvr.live']['consumers'] };
      case 'dvr.pause':
        ownTransport(s, f.transportId);
        rtc().dvrPause(f.transportId);
        return {};
      case 'dvr.resume':
        ownTransport(s, f.transportId);
        rtc().dvrResume(f.transportId);
        return {};
    }
  }

  function errorOf(err: unknown): { code: ErrorCode; message: string; retryAfterMs?: number } {
    if (err instanceof ChatError)
      return { code: err.code, message: err.message, ...(err.retryAfterMs ? { retryAfterMs: Math.ceil(err.retryAfterMs) } : {}) };
    if (err instanceof SfuError)
      return {
        code: err.code === 'stream_offline' ? 'stream_offline' : err.code === 'not_found' ? 'not_found' : 'unavailable',
        message: err.message,
      };
    if (err instanceof Error && err.name === 'SdpError') return { code: 'bad_frame', message: err.message };
    return { code: 'internal', message: 'Internal error' };
  }

  function allowMessage(s: SocketHandle<SocketState>): boolean {
    const now = Date.now();
    const d = s.data;
    d.tokens = Math.min(opts.messagesPerSecond * 2, d.tokens + ((now - d.lastRefill) / 1000) * opts.messagesPerSecond);
    d.lastRefill = now;
    if (d.tokens < 1) return false;
    d.tokens -= 1;
    return true;
  }

  function badFrame(s: SocketHandle<SocketState>, id: number | null, code: ErrorCode, message: string): void {
    opts.onFrame?.('invalid', false);
    sendTo(s, { t: 'error', id, code, message });
    if (++s.data.badFrames > MAX_BAD_FRAMES) s.end(CLOSE_CODES.abuse, 'too many bad frames');
  }

  const websocket: WebSocketOptions<SocketState> = {
    path: '/ws',
    maxPayloadLength: opts.maxPayloadBytes,
    maxBackpressure: opts.maxBackpressureBytes,
    idleTimeoutSeconds: 60,
    upgrade(_info: UpgradeInfo) {
      return {
        id: nextId++,
        user: null,
        rooms: new Set(),
        resync: new Set(),
        transports: new Map(),
        tokens: opts.messagesPerSecond * 2,
        lastRefill: Date.now(),
        badFrames: 0,
        overSince: null,
      };
    },
    open(s) {
      sockets.add(s);
      sendTo(s, { t: 'hello', version: PROTOCOL_VERSION, maxPayload: opts.maxPayloadBytes });
    },
    message(s, data, isBinary) {
      if (!isBinary) return badFrame(s, null, 'bad_frame', 'Send binary MessagePack frames');
      if (!allowMessage(s)) {
        opts.onFrame?.('rate_limited', false);
        sendTo(s, { t: 'error', id: null, code: 'rate_limited', message: 'Too many frames; slow down', retryAfterMs: 1000 });
        if (++s.data.badFrames > MAX_BAD_FRAMES) s.end(CLOSE_CODES.abuse, 'flooding');
        return;
      }
      const parsed = parseClientFrame(data);
      if (!parsed.ok) return badFrame(s, parsed.id, 'bad_frame', parsed.message);
      const frame = parsed.frame;
      handle(s, frame).then(
        (r) => {
          opts.onFrame?.(frame.t, true);
          sendTo(s, { t: 'ok', id: frame.id, r } as ServerFrame);
        },
        (err: unknown) => {
          const e = errorOf(err);
          if (e.code === 'internal') logger.error({ err, type: frame.t }, 'socket request failed');
          opts.onFrame?.(frame.t, false);
          sendTo(s, { t: 'error', id: frame.id, ...e });
        },
      );
    },
    drain(s) {
      if (s.bufferedAmount() < opts.maxBackpressureBytes / 2) {
        s.data.overSince = null;
        for (const room of s.data.resync) sendTo(s, { t: 'chat.resync', room });
        s.data.resync.clear();
      }
    },
    close(s) {
      sockets.delete(s);
      lobby.delete(s);
      for (const room of [...s.data.rooms]) leave(s, room);
      for (const transportId of s.data.transports.keys()) {
        media?.viewerRtc?.closeViewerTransport(transportId);
        transportOwner.delete(transportId);
      }
      s.data.transports.clear();
    },
  };

  return {
    websocket,
    presence,
    size: () => sockets.size,
    close() {
      unsubscribe();
      clearInterval(announceTimer);
      presence.close();
      clearInterval(positionTimer);
      media?.events?.off('dvrSwitch', onDvrSwitch);
      media?.events?.off('transportClosed', onTransportClosed);
      media?.events?.off('viewers', onViewers);
      media?.events?.off('live', onLive);
      media?.events?.off('offline', onOffline);
      media?.events?.off('reconsume', onReconsume);
      for (const s of [...sockets]) s.end(CLOSE_CODES.shuttingDown, 'server shutting down');
    },
  };
}
