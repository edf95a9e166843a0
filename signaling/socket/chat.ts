/**
 * Chat rooms (room id = stream id): permissions, slow mode, rate limits,
 * moderation. Messages are persisted before anyone is told about them.
 * Knows nothing about sockets: the hub turns results into frames.
 */
import type { ChatMessage, Database, Room, User } from '@whipcast/db';
import { DomainError } from '../errors.ts';
import type { ChatMessageView } from '../protocol.ts';

/** Why a chat request was refused. */
export class ChatError extends DomainError {
  override name = 'ChatError';
}

export interface ChatOptions {
  db: Database;
  maxMessageLength: number;
  historyLimit: number;
  /** Messages a user may send per 10 s in one room (the owner included). */
  ratePerTenSeconds: number;
  now?: () => number;
}

export const toView = (m: ChatMessage): ChatMessageView => ({
  id: m.id,
  room: m.roomId,
  userId: m.userId,
  username: m.username,
  text: m.body,
  at: m.createdAt.toISOString(),
});

export type Chat = ReturnType<typeof createChat>;

export function createChat(opts: ChatOptions) {
  const { db } = opts;
  const now = opts.now ?? Date.now;
  /** userId:room → send times in the last 10 s, and the last send (slow mode). */
  const recent = new Map<string, number[]>();

  async function room(id: string): Promise<Room> {
    const r = await db.rooms.get(id);
    if (!r) throw new ChatError('not_found', 'No such room');
    return r;
  }

  async function canRead(r: Room, user: User | null): Promise<void> {
    if (!r.isPublic && r.ownerId !== user?.id) throw new ChatError('forbidden', 'This room is private');
  }

  /** Throws unless the user may send in the room now (ban/timeout checked against the database). */
  async function assertCanSend(r: Room, user: User | null): Promise<User> {
    if (!user) throw new ChatError('unauthorized', 'Sign in to chat');
    await canRead(r, user);
    if (r.ownerId === user.id) return user;
    const ban = await db.rooms.activeBan(r.id, user.id);
    if (ban) {
      if (ban.expiresAt)
        throw new ChatError('timed_out', `You are timed out until ${ban.expiresAt.toISOString()}`, ban.expiresAt.getTime() - now());
      throw new ChatError('forbidden', 'You are banned from this room');
    }
    return user;
  }

  /** Moderation targets must exist (a ban of an unknown id would violate the users foreign key). */
  async function assertUser(id: string): Promise<void> {
    if (!(await db.users.findById(id))) throw new ChatError('not_found', 'No such user');
  }

  function assertOwner(r: Room, user: User | null): User {
    if (!user) throw new ChatError('unauthorized', 'Sign in first');
    if (r.ownerId !== user.id) throw new ChatError('forbidden', 'Only the channel owner can moderate');
    return user;
  }

  return {
    room,
    async join(id: string, user: User | null) {
      const r = await room(id);
      await canRead(r, user);
      const [history, canSend] = await Promise.all([
        db.chat.history(id, { limit: opts.historyLimit }),
        assertCanSend(r, user).then(
          () => true,
          () => false,
        ),
      ]);
      return { room: r, history: history.map(toView), canSend, isOwner: !!user && r.ownerId === user.id };
    },

    async history(id: string, user: User | null, before: number | undefined, limit: number | undefined) {
      const r = await room(id);
      await canRead(r, user);
      const rows = await db.chat.history(id, { limit: Math.min(limit ?? opts.historyLimit, opts.historyLimit), beforeId: before });
      return rows.map(toView);
    },

    async send(id: string, user: User | null, text: string): Promise<ChatMessageView> {
      const body = text.trim();
      if (!body) throw new ChatError('bad_frame', 'Empty message');
      if ([...body].length > opts.maxMessageLength)
        throw new ChatError('too_large', `Messages are at most ${opts.maxMessageLength} characters`);
      const r = await room(id);
      const sender = await assertCanSend(r, user);
      const key = `${sender.id}:${id}`;
      const t = now();
      const times = (recent.get(key) ?? []).filter((x) => t - x < 10_000);
      const isOwner = r.ownerId === sender.id;
      if (!isOwner && r.slowModeSeconds > 0 && times.length) {
        const wait = times[times.length - 1]! + r.slowModeSeconds * 1000 - t;
        if (wait > 0) throw new ChatError('slow_mode', `Slow mode: wait ${Math.ceil(wait / 1000)} s`, wait);
      }
      if (!isOwner && r.slowModeSeconds > 0 && !times.length) {
        // Slow mode windows can exceed the 10 s rate window: check the database.
        const last = await db.chat.lastMessageAt(id, sender.id);
        const wait = last ? last.getTime() + r.slowModeSeconds * 1000 - t : 0;
        if (wait > 0) throw new ChatError('slow_mode', `Slow mode: wait ${Math.ceil(wait / 1000)} s`, wait);
      }
      if (times.length >= opts.ratePerTenSeconds) {
        throw new ChatError('rate_limited', 'You are sending messages too fast', times[0]! + 10_000 - t);
      }
      times.push(t);
      recent.set(key, times);
      if (recent.size > 50_000) for (const [k, v] of recent) if (t - v[v.length - 1]! > 10_000) recent.delete(k);
      return toView(await db.chat.insert(id, sender.id, body));
    },

    async delete(id: string, user: User | null, messageId: number): Promise<void> {
      const r = await room(id);
      const owner = assertOwner(r, user);
      if (!(await db.chat.delete(id, messageId, owner.id))) throw new ChatError('not_found', 'No such message');
    },

    async timeout(id: string, user: User | null, target: string, seconds: number): Promise<Date> {
      const r = await room(id);
      const owner = assertOwner(r, user);
      if (target === owner.id) throw new ChatError('forbidden', 'You cannot time yourself out');
      await assertUser(target);
      const until = new Date(now() + seconds * 1000);
      await db.rooms.ban(id, target, { expiresAt: until, reason: 'timeout', by: owner.id });
      return until;
    },

    async ban(id: string, user: User | null, target: string): Promise<void> {
      const r = await room(id);
      const owner = assertOwner(r, user);
      if (target === owner.id) throw new ChatError('forbidden', 'You cannot ban yourself');
      await assertUser(target);
      await db.rooms.ban(id, target, { expiresAt: null, reason: 'ban', by: owner.id });
    },

    async unban(id: string, user: User | null, target: string): Promise<void> {
      const r = await room(id);
      assertOwner(r, user);
      await assertUser(target);
      await db.rooms.unban(id, target);
    },

    async slowMode(id: string, user: User | null, seconds: number): Promise<void> {
      const r = await room(id);
      assertOwner(r, user);
      await db.rooms.setSlowMode(id, seconds);
    },

    maxMessageLength: opts.maxMessageLength,
  };
}
