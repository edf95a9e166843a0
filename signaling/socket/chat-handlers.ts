/**
 * The `chat.*` requests: join and leave rooms, history, send, moderation.
 * What is allowed lives in `chat.ts`; this turns it into answers and room
 * pushes. Pushes go through the cluster bus so sockets on every node get them
 * (a lone node's bus is in-process).
 */
import type { ClusterBus } from '../cluster/bus.ts';
import type { RoomFrame } from '../cluster/events.ts';
import { ChatError, type Chat } from './chat.ts';
import type { Presence } from './presence.ts';
import type { Rooms } from './rooms.ts';
import type { Handlers, Socket } from './sockets.ts';

/** Rooms one socket may be in at once. */
export const MAX_ROOMS_PER_SOCKET = 20;

export type ChatRequest =
  'chat.join' | 'chat.leave' | 'chat.history' | 'chat.send' | 'chat.delete' | 'chat.timeout' | 'chat.ban' | 'chat.unban' | 'chat.slowmode';

export interface ChatHandlersOptions {
  chat: Chat;
  rooms: Rooms;
  presence: Presence;
  bus: ClusterBus;
}

export interface ChatHandlers {
  handlers: Handlers<ChatRequest>;
  /** A socket closed: it leaves its rooms. */
  leaveAll(s: Socket): void;
  close(): void;
}

export function createChatHandlers(opts: ChatHandlersOptions): ChatHandlers {
  const { chat, rooms, presence, bus } = opts;
  /** A chat push to the room's sockets on every node. */
  const broadcast = (frame: RoomFrame) => bus.publish({ t: 'room', room: frame.room, frame });
  const unsubscribe = bus.subscribe((m) => {
    if (m.t === 'room') rooms.push(m.room, m.frame);
  });

  const leave = (s: Socket, room: string) => {
    if (rooms.remove(s, room)) presence.addChatter(room, -1);
  };

  const handlers: Handlers<ChatRequest> = {
    async 'chat.join'(s, f) {
      const c = s.data.chat;
      const isNew = !c.rooms.has(f.room) && !c.joining.has(f.room);
      // the room is reserved before the database is asked, so pipelined joins cannot pass the cap together
      if (isNew && c.rooms.size + c.joining.size >= MAX_ROOMS_PER_SOCKET)
        throw new ChatError('rate_limited', `At most ${MAX_ROOMS_PER_SOCKET} rooms on one socket`);
      if (isNew) c.joining.add(f.room);
      try {
        const joined = await chat.join(f.room, s.data.user);
        if (!s.closed && rooms.add(s, f.room)) presence.addChatter(f.room, 1);
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
      } finally {
        if (isNew) c.joining.delete(f.room);
      }
    },
    'chat.leave'(s, f) {
      leave(s, f.room);
      return {};
    },
    async 'chat.history'(s, f) {
      return { messages: await chat.history(f.room, s.data.user, f.before, f.limit) };
    },
    async 'chat.send'(s, f) {
      if (!s.data.chat.rooms.has(f.room)) throw new ChatError('not_joined', 'Join the room first');
      const message = await chat.send(f.room, s.data.user, f.text);
      broadcast({ t: 'chat.message', room: f.room, message });
      return { message };
    },
    async 'chat.delete'(s, f) {
      await chat.delete(f.room, s.data.user, f.messageId);
      broadcast({ t: 'chat.deleted', room: f.room, messageId: f.messageId });
      return {};
    },
    async 'chat.timeout'(s, f) {
      const until = (await chat.timeout(f.room, s.data.user, f.userId, f.seconds)).toISOString();
      broadcast({ t: 'chat.moderation', room: f.room, action: 'timeout', userId: f.userId, until });
      return { until };
    },
    async 'chat.ban'(s, f) {
      await chat.ban(f.room, s.data.user, f.userId);
      broadcast({ t: 'chat.moderation', room: f.room, action: 'ban', userId: f.userId, until: null });
      return {};
    },
    async 'chat.unban'(s, f) {
      await chat.unban(f.room, s.data.user, f.userId);
      broadcast({ t: 'chat.moderation', room: f.room, action: 'unban', userId: f.userId, until: null });
      return {};
    },
    async 'chat.slowmode'(s, f) {
      await chat.slowMode(f.room, s.data.user, f.seconds);
      broadcast({ t: 'chat.slowmode', room: f.room, seconds: f.seconds });
      return { seconds: f.seconds };
    },
  };

  return {
    handlers,
    leaveAll(s) {
      for (const room of rooms.removeAll(s)) presence.addChatter(room, -1);
    },
    close: unsubscribe,
  };
}
