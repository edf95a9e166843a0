/**
 * Room membership of sockets and the pushes to a room's sockets.
 *
 * Backpressure policy: a push goes to each member with `send`; when a
 * socket's outgoing buffer is over the limit the frame is dropped and the
 * socket owes a `chat.resync` for that room, sent once it drains (the client
 * refetches history). A socket that stays over the limit for
 * `SLOW_SOCKET_GRACE_MS` is closed with 4009. Other members are never held up.
 */
import { CLOSE_CODES, encodeFrame, type ServerFrame } from '../protocol.ts';
import type { Socket } from './sockets.ts';

const SLOW_SOCKET_GRACE_MS = 10_000;

export class Rooms {
  readonly #members = new Map<string, Set<Socket>>();

  constructor(private readonly send: (s: Socket, frame: ServerFrame) => void) {}

  /** Adds a socket to a room's pushes; false when it was in already. */
  add(s: Socket, room: string): boolean {
    if (s.data.chat.rooms.has(room)) return false;
    s.data.chat.rooms.add(room);
    let members = this.#members.get(room);
    if (!members) this.#members.set(room, (members = new Set()));
    members.add(s);
    return true;
  }

  /** Removes a socket from a room; false when it was not in. */
  remove(s: Socket, room: string): boolean {
    if (!s.data.chat.rooms.delete(room)) return false;
    s.data.chat.resync.delete(room);
    const members = this.#members.get(room);
    members?.delete(s);
    if (members?.size === 0) this.#members.delete(room);
    return true;
  }

  /** Removes a socket from every room; returns the rooms it left. */
  removeAll(s: Socket): string[] {
    const left = [...s.data.chat.rooms];
    for (const room of left) this.remove(s, room);
    return left;
  }

  /** Sends a frame to every socket in a room on this node (see the backpressure policy above). */
  push(room: string, frame: ServerFrame): void {
    const members = this.#members.get(room);
    if (!members?.size) return;
    const bytes = encodeFrame(frame);
    const now = Date.now();
    for (const s of members) {
      if (s.closed) continue;
      const result = s.send(bytes);
      const c = s.data.chat;
      if (result === 'dropped') {
        c.resync.add(room);
        c.overSince ??= now;
        if (now - c.overSince > SLOW_SOCKET_GRACE_MS) s.end(CLOSE_CODES.tooSlow, 'too slow');
      } else if (result === 'sent') c.overSince = null;
    }
  }

  /** The socket drained: it gets the resyncs it is owed. */
  drained(s: Socket): void {
    const c = s.data.chat;
    c.overSince = null;
    for (const room of c.resync) this.send(s, { t: 'chat.resync', room });
    c.resync.clear();
  }
}
