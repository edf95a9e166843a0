/** What the server keeps per /ws socket, one part per concern. */
import type { User } from '@whipcast/db';
import type { SocketViewer } from '@whipcast/sfu';
import type { ClientFrame } from '../protocol.ts';

export interface SocketState {
  id: number;
  /** The client's address (per-address limits). */
  address: string;
  /** The signed-in user, or null (anonymous). */
  user: User | null;
  limits: LimitState;
  chat: ChatState;
  rtc: RtcState;
}

/** Socket lifecycle and limits (`sockets.ts`). */
export interface LimitState {
  /** Counted against its address (opened and not yet closed). */
  counted: boolean;
  /** Token bucket for the frame rate. */
  tokens: number;
  lastRefill: number;
  /** Bad or refused frames so far (too many close the socket). */
  badFrames: number;
  /** Requests being handled now. */
  inFlight: number;
  /** An `auth` is being handled: nothing else starts until it is done. */
  authInFlight: boolean;
  /** Requests waiting for a free in-flight slot. */
  queue: ClientFrame[];
}

/** Rooms this socket joined (`rooms.ts`). */
export interface ChatState {
  /** Joined: gets the room's pushes. */
  rooms: Set<string>;
  /** Being joined (counted against the cap before the database is asked). */
  joining: Set<string>;
  /** Rooms whose pushes were dropped: owe a resync. */
  resync: Set<string>;
  /** Since when the socket has been over the backpressure limit. */
  overSince: number | null;
}

/** Viewer WebRTC (`rtc-handlers.ts`). */
export interface RtcState {
  /** The socket's viewers (one receive transport each), by transport id. */
  viewers: Map<string, SocketViewer>;
  /** Transports being created (reserved before the SFU is asked, so pipelined requests cannot exceed the caps). */
  pending: number;
}

export function initialState(id: number, address: string, messagesPerSecond: number): SocketState {
  return {
    id,
    address,
    user: null,
    limits: {
      counted: false,
      tokens: messagesPerSecond * 2,
      lastRefill: Date.now(),
      badFrames: 0,
      inFlight: 0,
      authInFlight: false,
      queue: [],
    },
    chat: { rooms: new Set(), joining: new Set(), resync: new Set(), overSince: null },
    rtc: { viewers: new Map(), pending: 0 },
  };
}
