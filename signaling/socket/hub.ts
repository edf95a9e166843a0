/**
 * The /ws socket, composed: one per browser tab, MessagePack frames
 * (`protocol.ts`). Multiplexes chat rooms, presence and viewer WebRTC
 * signaling over one connection. Each concern lives in its own module:
 *
 * - `sockets.ts` — lifecycle and limits: upgrade, frame rate, bad frames,
 *   in-flight requests, answering `ok`/`error`;
 * - `session-handlers.ts` — `ping`, `auth`;
 * - `rooms.ts` + `chat-handlers.ts` — room membership, pushes with
 *   backpressure, the `chat.*` requests;
 * - `rtc-handlers.ts` — the `rtc.*` and `dvr.*` requests;
 * - `lobby.ts` — presence over the cluster, channel status pushes, the lobby.
 */
import type { Logger } from 'pino';
import type { Accounts } from '../accounts.ts';
import type { Channels } from '../channels.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import type { MediaLayer } from '../media.ts';
import type { WebSocketOptions } from '../uws.ts';
import type { Chat } from './chat.ts';
import { createChatHandlers } from './chat-handlers.ts';
import { createLobby } from './lobby.ts';
import type { Presence } from './presence.ts';
import { Rooms } from './rooms.ts';
import { createRtcHandlers } from './rtc-handlers.ts';
import { sessionHandlers } from './session-handlers.ts';
import { createSocketEndpoint, send, type SocketLimits } from './sockets.ts';
import { initialState, type SocketState } from './state.ts';

export type { SocketState };

export interface HubOptions {
  accounts: Accounts;
  chat: Chat;
  channels: Pick<Channels, 'get'>;
  /** Viewer and chatter counts (made first: the channels' viewer counts read them too). */
  presence: Presence;
  media: MediaLayer | undefined;
  /** Carries room pushes and presence to (and from) the other nodes. */
  bus: ClusterBus;
  /** This node's id on the bus. */
  nodeId: string;
  logger: Logger;
  limits: SocketLimits & {
    /** Media transports all sockets of one address may hold at once. */
    maxTransportsPerAddress: number;
  };
  /** Counts a socket metric. */
  onFrame?(type: string, ok: boolean): void;
}

export interface Hub {
  websocket: WebSocketOptions<SocketState>;
  /** Sockets connected now. */
  size(): number;
  close(): void;
}

export function createHub(opts: HubOptions): Hub {
  const { limits } = opts;
  const rooms = new Rooms(send);
  const { presence } = opts;
  const lobby = createLobby({
    presence,
    bus: opts.bus,
    nodeId: opts.nodeId,
    media: opts.media,
    pushToRoom: (room, f) => rooms.push(room, f),
  });
  const chat = createChatHandlers({ chat: opts.chat, rooms, presence, bus: opts.bus });
  const rtc = createRtcHandlers({
    media: opts.media,
    channels: opts.channels,
    maxTransportsPerAddress: limits.maxTransportsPerAddress,
    send,
  });
  const endpoint = createSocketEndpoint({
    handlers: { ...sessionHandlers(opts.accounts), ...lobby.handlers, ...chat.handlers, ...rtc.handlers },
    limits,
    initialState: (id, address) => initialState(id, address, limits.messagesPerSecond),
    onClose(s) {
      lobby.leave(s);
      chat.leaveAll(s);
      rtc.closeAll(s);
    },
    onDrain: (s) => rooms.drained(s),
    logger: opts.logger,
    ...(opts.media?.socketViewers ? { routerRtpCapabilities: opts.media.socketViewers.routerRtpCapabilities } : {}),
    ...(opts.onFrame ? { onFrame: opts.onFrame } : {}),
  });

  return {
    websocket: endpoint.websocket,
    size: endpoint.size,
    close() {
      chat.close();
      rtc.close();
      lobby.close();
      endpoint.closeAll();
    },
  };
}
