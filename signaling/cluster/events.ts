/**
 * What whipcast nodes tell each other over the cluster bus. One node alone
 * uses the same events on an in-process bus, so there is one code path.
 */
import type { ServerFrame } from '../protocol.ts';

/** Room pushes every node forwards to its own sockets in that room. */
export type RoomFrame = Extract<ServerFrame, { t: 'chat.message' | 'chat.deleted' | 'chat.moderation' | 'chat.slowmode' }>;

export type ClusterEvent =
  /** A chat push for a room's sockets, wherever they are connected. */
  | { t: 'room'; room: string; frame: RoomFrame }
  /** A channel's status changed in the database (written by its origin, or by whoever noticed the origin was lost). */
  | { t: 'status'; streamId: string; live: boolean; reason?: string }
  /** The sender's own presence in a room (its viewers and chatters); totals are summed per node. Sent by older nodes. */
  | { t: 'presence'; room: string; viewers: number; chatters: number }
  /** The sender's own presence in every room whose counts changed since its last announcement. */
  | { t: 'presences'; rooms: PresenceEntry[] }
  /** The channel's ingest is (now) on `node`, or its tracks changed there: relays must be re-made from it. */
  | { t: 'origin'; streamId: string; node: string }
  /** End the channel's WHIP publisher, on whichever node it is (stream key rotated). */
  | { t: 'kick'; streamId: string; reason: string }
  /** A node started: the others send it their presence. */
  | { t: 'hello' }
  /** A node left or its heartbeat expired: drop its presence, stop relaying to it. */
  | { t: 'nodeLost'; node: string };

/** One room's counts on the sending node: [room, viewers, chatters]. */
export type PresenceEntry = [room: string, viewers: number, chatters: number];

/** True for a well-formed presence entry (what another node sent is checked before it counts). */
export function isPresenceEntry(e: unknown): e is PresenceEntry {
  return (
    Array.isArray(e) &&
    e.length === 3 &&
    typeof e[0] === 'string' &&
    Number.isInteger(e[1]) &&
    (e[1] as number) >= 0 &&
    Number.isInteger(e[2]) &&
    (e[2] as number) >= 0
  );
}

/** An event as delivered: with the id of the node that sent it. */
export type ClusterMessage = ClusterEvent & { from: string };

const TYPES = new Set<ClusterEvent['t']>(['room', 'status', 'presence', 'presences', 'origin', 'kick', 'hello', 'nodeLost']);

/** Parses a bus payload; null when it is not a whipcast cluster message. */
export function parseClusterMessage(payload: string): ClusterMessage | null {
  try {
    const m = JSON.parse(payload) as Partial<ClusterMessage> | null;
    if (!m || typeof m !== 'object' || typeof m.from !== 'string' || !TYPES.has(m.t as ClusterEvent['t'])) return null;
    return m as ClusterMessage;
  } catch {
    return null;
  }
}
