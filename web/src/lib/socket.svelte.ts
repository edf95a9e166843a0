/**
 * The app's one WebSocket (/ws): typed requests, push listeners, automatic
 * reconnect with backoff. After a reconnect it re-sends auth and tells
 * listeners (`onReconnect`) so pages rejoin their rooms.
 */
import { decode, encode } from '@msgpack/msgpack';
import type { ClientFrame, Results, ServerFrame } from '$shared/protocol.ts';

type Request = ClientFrame extends infer F ? (F extends { t: infer T; id: number } ? { t: T } & Omit<F, 't' | 'id'> : never) : never;
type Push = Exclude<ServerFrame, { t: 'ok' } | { t: 'error' }>;

export class SocketRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

class AppSocket {
  connected = $state(false);
  #ws: WebSocket | null = null;
  #nextId = 1;
  #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  #queue: Uint8Array<ArrayBuffer>[] = [];
  #listeners = new Set<(f: Push) => void>();
  #reconnectListeners = new Set<() => void>();
  #backoff = 500;
  #token: string | null = null;
  #everConnected = false;

  #connect(): void {
    if (typeof window === 'undefined' || this.#ws) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      this.connected = true;
      this.#backoff = 500;
      const reconnected = this.#everConnected;
      this.#everConnected = true;
      if (this.#token) ws.send(encode({ t: 'auth', id: this.#nextId++, token: this.#token }));
      for (const f of this.#queue.splice(0)) ws.send(f);
      if (reconnected) for (const l of this.#reconnectListeners) l();
    };
    ws.onmessage = (e) => {
      const frame = decode(new Uint8Array(e.data as ArrayBuffer)) as ServerFrame;
      if (frame.t === 'ok' || (frame.t === 'error' && frame.id !== null)) {
        const p = this.#pending.get(frame.id!);
        if (!p) return;
        this.#pending.delete(frame.id!);
        if (frame.t === 'ok') p.resolve(frame.r);
        else p.reject(new SocketRequestError(frame.code, frame.message, frame.retryAfterMs));
        return;
      }
      if (frame.t === 'error') return;
      for (const l of this.#listeners) l(frame);
    };
    ws.onclose = () => {
      this.connected = false;
      this.#ws = null;
      for (const p of this.#pending.values()) p.reject(new SocketRequestError('disconnected', 'Connection lost'));
      this.#pending.clear();
      setTimeout(() => this.#connect(), this.#backoff);
      this.#backoff = Math.min(this.#backoff * 2, 10_000);
    };
  }

  request<T extends Request['t']>(req: Extract<Request, { t: T }>): Promise<Results[T]> {
    this.#connect();
    if (req.t === 'auth') this.#token = (req as { token: string | null }).token;
    const id = this.#nextId++;
    const bytes = encode({ ...req, id }) as Uint8Array<ArrayBuffer>;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: (r) => resolve(r as Results[T]), reject });
      if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(bytes);
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
