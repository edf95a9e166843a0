/** A /ws client for tests and bots: typed requests, recorded pushes. */
import { decode, encode } from '@msgpack/msgpack';
import type { ClientFrame, Results, ServerFrame } from '@whipcast/signaling/protocol';
import WebSocket from 'ws';

type Request = ClientFrame extends infer F ? (F extends { t: infer T; id: number } ? { t: T } & Omit<F, 't' | 'id'> : never) : never;

export class SocketError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(`${code}: ${message}`);
  }
}

export class SocketClient {
  readonly pushes: ServerFrame[] = [];
  readonly errors: Extract<ServerFrame, { t: 'error' }>[] = [];
  closeCode: number | null = null;
  #nextId = 1;
  #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  #listeners = new Set<(f: ServerFrame) => void>();

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      const frame = decode(data) as ServerFrame;
      if (frame.t === 'ok' || (frame.t === 'error' && frame.id !== null && this.#pending.has(frame.id))) {
        const p = this.#pending.get(frame.id!);
        this.#pending.delete(frame.id!);
        if (frame.t === 'ok') p?.resolve(frame.r);
        else p?.reject(new SocketError(frame.code, frame.message, frame.retryAfterMs));
        return;
      }
      if (frame.t === 'error') this.errors.push(frame);
      else this.pushes.push(frame);
      for (const l of this.#listeners) l(frame);
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const p of this.#pending.values()) p.reject(new Error(`socket closed (${code})`));
      this.#pending.clear();
    });
  }

  static connect(baseUrl: string): Promise<SocketClient> {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/ws');
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new SocketClient(ws)));
      ws.once('error', reject);
    });
  }

  request<T extends Request['t']>(req: Extract<Request, { t: T }>, timeoutMs = 10_000): Promise<Results[T]> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no answer to ${req.t} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r as Results[T])),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(encode({ ...req, id }));
    });
  }

  /** Sends raw bytes (fuzzing). */
  sendRaw(bytes: Uint8Array | string): void {
    this.ws.send(bytes);
  }

  /** Resolves with the first push (already received or future) matching. */
  waitFor<T extends ServerFrame['t']>(
    t: T,
    match: (f: Extract<ServerFrame, { t: T }>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Extract<ServerFrame, { t: T }>> {
    const hit = this.pushes.find((f) => f.t === t && match(f as Extract<ServerFrame, { t: T }>));
    if (hit) return Promise.resolve(hit as Extract<ServerFrame, { t: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(l);
        reject(new Error(`no ${t} push within ${timeoutMs} ms`));
      }, timeoutMs);
      const l = (f: ServerFrame) => {
        if (f.t === t && match(f as Extract<ServerFrame, { t: T }>)) {
          clearTimeout(timer);
          this.#listeners.delete(l);
          resolve(f as Extract<ServerFrame, { t: T }>);
        }
      };
      this.#listeners.add(l);
    });
  }

  close(): void {
    this.ws.close();
  }
}
