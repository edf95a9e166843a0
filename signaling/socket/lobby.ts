/**
 * Presence and the lobby: viewer and chatter counts per room, summed over the
 * cluster's nodes (`presence.ts`), pushed to the room's sockets; channel
 * status changes (`stream.live`, `stream.offline`, `rtc.reconsume`) pushed to
 * the room; and the lobby (`lobby.join`): sockets that follow every channel's
 * status and viewer count.
 */
import type { ClusterBus } from '../cluster/bus.ts';
import { isPresenceEntry } from '../cluster/events.ts';
import { PresenceAnnouncer } from '../cluster/presence-announcer.ts';
import type { MediaLayer } from '../media.ts';
import { encodeFrame, type ServerFrame } from '../protocol.ts';
import type { Presence, PresenceCounts } from './presence.ts';
import type { Handlers, Socket } from './sockets.ts';

const PRESENCE_REANNOUNCE_MS = 30_000;

export interface LobbyOptions {
  /** This node's counts, summed with the other nodes'. */
  presence: Presence;
  /** Carries presence to (and from) the other nodes. */
  bus: ClusterBus;
  /** This node's id on the bus. */
  nodeId: string;
  media: MediaLayer | undefined;
  /** Pushes a frame to a room's sockets on this node. */
  pushToRoom(room: string, frame: ServerFrame): void;
}

export interface Lobby {
  handlers: Handlers<'lobby.join' | 'lobby.leave'>;
  /** A socket closed. */
  leave(s: Socket): void;
  close(): void;
}

export function createLobby(opts: LobbyOptions): Lobby {
  const { bus, media, pushToRoom } = opts;
  const followers = new Set<Socket>();
  const liveRooms = new Set<string>();

  function pushToLobby(room: string): void {
    if (!followers.size) return;
    const bytes = encodeFrame({ t: 'lobby.update', room, live: liveRooms.has(room), viewers: presence.get(room).viewers });
    for (const s of followers) if (!s.closed) s.send(bytes);
  }

  const { presence } = opts;
  const onTotals = (room: string, counts: PresenceCounts) => {
    pushToRoom(room, { t: 'presence', room, ...counts });
    pushToLobby(room);
  };
  const announcer = new PresenceAnnouncer(bus);
  const onLocal = (room: string, own: PresenceCounts) => announcer.set(room, own.viewers, own.chatters);
  presence.on('totals', onTotals);
  presence.on('local', onLocal);

  /** This node's own counts in every room it has anyone in, to the other nodes. */
  function announcePresence(): void {
    announcer.announce(presence.localRooms().map(([room, own]) => [room, own.viewers, own.chatters]));
  }
  const unsubscribe = bus.subscribe((m) => {
    const remote = m.from !== opts.nodeId;
    if (m.t === 'presences' && remote && Array.isArray(m.rooms)) {
      for (const e of m.rooms as unknown[]) if (isPresenceEntry(e)) presence.setRemote(m.from, e[0], { viewers: e[1], chatters: e[2] });
    } else if (m.t === 'presence' && remote) presence.setRemote(m.from, m.room, { viewers: m.viewers, chatters: m.chatters });
    else if (m.t === 'hello' && remote) announcePresence();
    else if (m.t === 'nodeLost') presence.dropNode(m.node);
  });
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
  media?.events?.on('viewers', onViewers);
  media?.events?.on('live', onLive);
  media?.events?.on('offline', onOffline);
  media?.events?.on('reconsume', onReconsume);

  return {
    handlers: {
      'lobby.join'(s) {
        followers.add(s);
        return {};
      },
      'lobby.leave'(s) {
        followers.delete(s);
        return {};
      },
    },
    leave(s) {
      followers.delete(s);
    },
    close() {
      unsubscribe();
      clearInterval(announceTimer);
      announcer.close();
      presence.off('totals', onTotals);
      presence.off('local', onLocal);
      media?.events?.off('viewers', onViewers);
      media?.events?.off('live', onLive);
      media?.events?.off('offline', onOffline);
      media?.events?.off('reconsume', onReconsume);
    },
  };
}
