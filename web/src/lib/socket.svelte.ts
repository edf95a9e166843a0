/**
 * The app's one WebSocket (/ws): typed requests, push listeners, automatic
 * reconnect with backoff. After a reconnect it re-sends auth and tells
 * listeners (`onReconnect`) so pages rejoin their rooms.
 *
 * Every frame is decoded and checked with the protocol's own schemas
 * (`$shared/protocol.ts`, the server's definition); a frame that does not
 * match is dropped and logged. When the server speaks another protocol
 * version (it was updated since this page loaded), the socket stops and
 * `outdated` asks the user to reload.
 *
 * The app shell opens it at start (`open()`), before any page asks for
 * anything: by the time a player mounts, the server has said hello and sent
 * the router capabilities its device loads (`routerRtpCapabilities()`).
 */
import {
  encodeRequest,
  parseResult,
  parseServerFrame,
  PROTOCOL_VERSION,
  type ClientFrameType,
  type ClientRequest,
  type Push,
  type Results,
} from '$shared/protocol.ts';
import { markOnce } from './marks.ts';

/** What a mediasoup-client Device loads, as the server's hello carries it. */
export type RouterRtpCapabilities = NonNullable<Extract<Push, { t: 'hello' }>['routerRtpCapabilities']>;

const OUTDATED_MESSAGE = 'whipcast was updated on the server: reload the page to continue.';

export class SocketRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

interface Pending {
  t: ClientFrameType;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
}

class AppSocket {
  connected = $state(false);
  /** The server runs a newer (or older) protocol than this page: it must be reloaded. */
  outdated = $state(false);
  #ws: WebSocket | null = null;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #queue: Uint8Array<ArrayBuffer>[] = [];
  #listeners = new Set<(f: Push) => void>();
  #reconnectListeners = new Set<() => void>();
  #backoff = 500;
  #token: string | null = null;
  #everConnected = false;
  /** This connection's server said hello with our protocol version: requests may go out. */
  #ready = false;
  /** The router capabilities of the last hello (null: the server has no media), undefined before one. */
  #capabilities: RouterRtpCapabilities | null | undefined = undefined;
  #capabilityWaiters: { resolve: (c: RouterRtpCapabilities) => void; reject: (e: Error) => void }[] = [];

  /** Connects now (the app shell calls it at start), so the server's hello is in before pages ask for anything. */
  open(): void {
    this.#connect();
  }

  /** The router capabilities a player's device loads: from the server's hello (waits for it). */
  routerRtpCapabilities(): Promise<RouterRtpCapabilities> {
    if (this.outdated) return Promise.reject(new SocketRequestError('outdated', OUTDATED_MESSAGE));
    this.#connect();
    if (this.#capabilities === null) return Promise.reject(new SocketRequestError('unavailable', 'Media is not available on this server'));
    if (this.#capabilities) return Promise.resolve(this.#capabilities);
    return new Promise((resolve, reject) => this.#capabilityWaiters.push({ resolve, reject }));
  }

  #connect(): void {
    if (typeof window === 'undefined' || this.#ws || this.outdated) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    this.#ready = false;
    ws.onopen = () => {
      this.connected = true;
      this.#backoff = 500;
    };
    ws.onmessage = (e) => {
      const parsed = parseServerFrame(new Uint8Array(e.data as ArrayBuffer));
      if (!parsed.ok) {
        console.warn(`whipcast: dropped a server frame that does not match the protocol (${parsed.message})`);
        return;
      }
      const frame = parsed.frame;
      if (frame.t === 'hello') {
        markOnce('whipcast:hello');
        return this.#hello(ws, frame);
      }
      if (frame.t === 'ok' || (frame.t === 'error' && frame.id !== null)) {
        const p = this.#pending.get(frame.id!);
        if (!p) return;
        this.#pending.delete(frame.id!);
        markOnce(`whipcast:${p.t}`);
        if (frame.t === 'error') return p.reject(new SocketRequestError(frame.code, frame.message, frame.retryAfterMs));
        const result = parseResult(p.t, frame.r);
        if (result.ok) p.resolve(result.result);
        else p.reject(new SocketRequestError('bad_frame', `The server's answer does not match the protocol: ${result.message}`));
        return;
      }
      if (frame.t === 'error') return;
      for (const l of this.#listeners) l(frame);
    };
    ws.onclose = () => {
      this.connected = false;
      this.#ready = false;
      this.#ws = null;
      this.#rejectAll(
        this.outdated ? new SocketRequestError('outdated', OUTDATED_MESSAGE) : new SocketRequestError('disconnected', 'Connection lost'),
      );
      if (this.outdated) return;
      setTimeout(() => this.#connect(), this.#backoff);
      this.#backoff = Math.min(this.#backoff * 2, 10_000);
    };
  }

  /** The server said hello: same protocol → sign in, flush the queue, tell pages we are back; else stop. */
  #hello(ws: WebSocket, frame: Extract<Push, { t: 'hello' }>): void {
    const waiters = this.#capabilityWaiters.splice(0);
    if (frame.version !== PROTOCOL_VERSION) {
      console.warn(`whipcast: the server speaks protocol ${frame.version}, this page ${PROTOCOL_VERSION}`);
      this.outdated = true;
      this.#queue.length = 0;
      ws.close(1000, 'protocol version mismatch');
      for (const w of waiters) w.reject(new SocketRequestError('outdated', OUTDATED_MESSAGE));
      return;
    }
    this.#capabilities = frame.routerRtpCapabilities ?? null;
    for (const w of waiters) {
      if (frame.routerRtpCapabilities) w.resolve(frame.routerRtpCapabilities);
      else w.reject(new SocketRequestError('unavailable', 'Media is not available on this server'));
    }
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    this.#ready = true;
    if (this.#token) ws.send(encodeRequest({ t: 'auth', token: this.#token }, this.#nextId++));
    for (const f of this.#queue.splice(0)) ws.send(f);
    if (reconnected) for (const l of this.#reconnectListeners) l();
  }

  #rejectAll(err: SocketRequestError): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  request<T extends ClientRequest['t']>(req: Extract<ClientRequest, { t: T }>): Promise<Results[T]> {
    if (this.outdated) return Promise.reject(new SocketRequestError('outdated', OUTDATED_MESSAGE));
    this.#connect();
    if (req.t === 'auth') this.#token = (req as Extract<ClientRequest, { t: 'auth' }>).token;
    const id = this.#nextId++;
    const bytes = encodeRequest(req, id);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { t: req.t, resolve: (r) => resolve(r as Results[T]), reject });
      // sent once the server said hello (and its version matched)
      if (this.#ready && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(bytes);
      else this.#queue.push(bytes);
    });
  }

  /** Listens to pushes; returns the unsubscribe function. */
  on(listener: (f: Push) => void): () => void {
    this.#connect();
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }
}

export const socket = new AppSocket();
