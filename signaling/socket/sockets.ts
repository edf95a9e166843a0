/**
 * The /ws socket's lifecycle and limits: upgrade (sockets per address), the
 * `hello` frame, decoding and validating frames, the per-socket frame rate,
 * bad-frame accounting, bounded in-flight requests (a socket cannot keep more
 * than `maxInFlight` requests busy at once: extra ones wait in a short queue,
 * beyond it they are refused), and answering each request with `ok` or
 * `error`. An `auth` runs alone (it waits for earlier requests, later ones wait
 * for it), so pipelined requests act as the user it signs in. What a request
 * does is up to the handlers it is given.
 */
import type { Logger } from 'pino';
import { describeFailure } from '../errors.ts';
import {
  CLOSE_CODES,
  encodeFrame,
  encodeOk,
  parseClientFrame,
  PROTOCOL_VERSION,
  type ClientFrame,
  type ClientFrameType,
  type ErrorCode,
  type Results,
  type ServerFrame,
} from '../protocol.ts';
import type { SocketHandle, UpgradeInfo, WebSocketOptions } from '../uws.ts';
import type { SocketState } from './state.ts';

export type Socket = SocketHandle<SocketState>;
export type FrameOf<T extends ClientFrameType> = Extract<ClientFrame, { t: T }>;
/** Does what a request asks; throws a `DomainError` (or `SfuError`/`SdpError`) to refuse it. */
export type Handler<T extends ClientFrameType> = (s: Socket, frame: FrameOf<T>) => Promise<Results[T]> | Results[T];
export type Handlers<T extends ClientFrameType = ClientFrameType> = { [K in T]: Handler<K> };

export interface SocketLimits {
  /** Largest frame, bytes; larger ones close the socket with 1009. */
  maxPayloadBytes: number;
  /** Outgoing bytes buffered before pushes to the socket are dropped. */
  maxBackpressureBytes: number;
  /** Frames a socket may send per second, sustained (burst twice that). */
  messagesPerSecond: number;
  /** Requests of one socket being handled at once; more wait in a queue of `MAX_QUEUED_REQUESTS`. */
  maxInFlight: number;
  /** Open sockets from one client address. */
  maxSocketsPerAddress: number;
}

export interface SocketEndpointOptions {
  handlers: Handlers;
  limits: SocketLimits;
  /** The socket's initial state (per concern), called on upgrade. */
  initialState(id: number, address: string): SocketState;
  /** A socket is gone: release what it held. */
  onClose(s: Socket): void;
  /** Its outgoing buffer drained below half the limit. */
  onDrain(s: Socket): void;
  logger: Logger;
  /** Counts a socket metric. */
  onFrame?(type: string, ok: boolean): void;
  /** Router capabilities sent in every `hello`, so a player can load its device before it asks for anything. */
  routerRtpCapabilities?: Extract<ServerFrame, { t: 'hello' }>['routerRtpCapabilities'];
}

export interface SocketEndpoint {
  websocket: WebSocketOptions<SocketState>;
  /** Sockets connected now. */
  size(): number;
  /** Closes every socket (server shutting down). */
  closeAll(): void;
}

const MAX_BAD_FRAMES = 50;
/** Requests of one socket waiting for a free in-flight slot; beyond this they are refused with `rate_limited`. */
export const MAX_QUEUED_REQUESTS = 32;

/** Sends a frame to one socket (nothing when it is closed). */
export function send(s: Socket, frame: ServerFrame): void {
  if (!s.closed) s.send(encodeFrame(frame));
}

export function createSocketEndpoint(opts: SocketEndpointOptions): SocketEndpoint {
  const { limits, handlers, logger } = opts;
  const sockets = new Set<Socket>();
  // the same for every socket: encoded once
  const hello = encodeFrame({
    t: 'hello',
    version: PROTOCOL_VERSION,
    maxPayload: limits.maxPayloadBytes,
    ...(opts.routerRtpCapabilities ? { routerRtpCapabilities: opts.routerRtpCapabilities } : {}),
  });
  const perAddress = new Map<string, number>();
  let nextId = 1;

  function refuse(s: Socket, id: number | null, code: ErrorCode, message: string, retryAfterMs?: number): void {
    opts.onFrame?.(code === 'rate_limited' ? 'rate_limited' : 'invalid', false);
    send(s, { t: 'error', id, code, message, ...(retryAfterMs ? { retryAfterMs } : {}) });
    if (++s.data.limits.badFrames > MAX_BAD_FRAMES) s.end(CLOSE_CODES.abuse, 'too many bad or refused frames');
  }

  /** Token bucket: false when the socket is over its frame rate. */
  function allowFrame(s: Socket): boolean {
    const now = Date.now();
    const l = s.data.limits;
    l.tokens = Math.min(limits.messagesPerSecond * 2, l.tokens + ((now - l.lastRefill) / 1000) * limits.messagesPerSecond);
    l.lastRefill = now;
    if (l.tokens < 1) return false;
    l.tokens -= 1;
    return true;
  }

  async function run<T extends ClientFrameType>(s: Socket, t: T, frame: FrameOf<T>): Promise<Results[T]> {
    const handler: Handler<T> = handlers[t];
    return handler(s, frame);
  }

  // `auth` changes who every later request acts as, so it runs alone: it waits for the requests before it and
  // the requests after it wait for it (a pipelined `auth` then `chat.join` must join signed in).
  function canStart(l: SocketState['limits'], frame: ClientFrame): boolean {
    if (l.authInFlight) return false;
    return frame.t === 'auth' ? l.inFlight === 0 : l.inFlight < limits.maxInFlight;
  }

  function startQueued(s: Socket): void {
    const l = s.data.limits;
    while (!s.closed && l.queue.length > 0 && canStart(l, l.queue[0]!)) start(s, l.queue.shift()!);
  }

  function start(s: Socket, frame: ClientFrame): void {
    const l = s.data.limits;
    l.inFlight++;
    if (frame.t === 'auth') l.authInFlight = true;
    run(s, frame.t, frame)
      .then(
        (r) => {
          opts.onFrame?.(frame.t, true);
          if (!s.closed) s.send(encodeOk(frame.id, r));
        },
        (err: unknown) => {
          const f = describeFailure(err);
          if (!f) logger.error({ err, type: frame.t }, 'socket request failed');
          opts.onFrame?.(frame.t, false);
          send(s, {
            t: 'error',
            id: frame.id,
            code: f?.socketCode ?? 'internal',
            message: f?.message ?? 'Internal error',
            ...(f?.retryAfterMs ? { retryAfterMs: f.retryAfterMs } : {}),
          });
        },
      )
      .finally(() => {
        l.inFlight--;
        if (frame.t === 'auth') l.authInFlight = false;
        startQueued(s);
      });
  }

  const websocket: WebSocketOptions<SocketState> = {
    path: '/ws',
    // Frames up to twice the limit reach `message` and are refused there with 1009 (a close frame the client sees);
    // beyond that uWS drops the connection without one, so no frame is buffered whole however large it claims to be.
    maxPayloadLength: limits.maxPayloadBytes * 2,
    maxBackpressure: limits.maxBackpressureBytes,
    idleTimeoutSeconds: 60,
    upgrade(info: UpgradeInfo) {
      if ((perAddress.get(info.remoteAddress) ?? 0) >= limits.maxSocketsPerAddress) return { refuse: 429 };
      return opts.initialState(nextId++, info.remoteAddress);
    },
    open(s) {
      // counted here (not on upgrade: an upgrade may never open), checked again for upgrades that raced
      const n = perAddress.get(s.data.address) ?? 0;
      if (n >= limits.maxSocketsPerAddress) {
        s.end(CLOSE_CODES.tooMany, 'too many sockets from this address');
        return;
      }
      perAddress.set(s.data.address, n + 1);
      s.data.limits.counted = true;
      sockets.add(s);
      s.send(hello);
    },
    message(s, data, isBinary) {
      if (!s.data.limits.counted) return;
      if (data.byteLength > limits.maxPayloadBytes) return s.end(CLOSE_CODES.tooLarge, 'frame too large');
      if (!isBinary) return refuse(s, null, 'bad_frame', 'Send binary MessagePack frames');
      if (!allowFrame(s)) return refuse(s, null, 'rate_limited', 'Too many frames; slow down', 1000);
      const parsed = parseClientFrame(data);
      if (!parsed.ok) return refuse(s, parsed.id, 'bad_frame', parsed.message);
      const l = s.data.limits;
      if (l.queue.length === 0 && canStart(l, parsed.frame)) start(s, parsed.frame);
      else if (l.queue.length < MAX_QUEUED_REQUESTS) l.queue.push(parsed.frame);
      else refuse(s, parsed.frame.id, 'rate_limited', 'Too many requests in flight on this socket; wait for answers', 250);
    },
    drain(s) {
      if (s.bufferedAmount() < limits.maxBackpressureBytes / 2) opts.onDrain(s);
    },
    close(s) {
      if (!s.data.limits.counted) return;
      s.data.limits.counted = false;
      s.data.limits.queue.length = 0;
      sockets.delete(s);
      const n = (perAddress.get(s.data.address) ?? 1) - 1;
      if (n > 0) perAddress.set(s.data.address, n);
      else perAddress.delete(s.data.address);
      opts.onClose(s);
    },
  };

  return {
    websocket,
    size: () => sockets.size,
    closeAll() {
      for (const s of [...sockets]) s.end(CLOSE_CODES.shuttingDown, 'server shutting down');
    },
  };
}
