/**
 * The only module that touches uWebSockets.js. It turns uWS's callback API
 * into WHATWG Request → Response for HTTP and a small socket handle for
 * WebSockets, so the rest of the server never sees uWS types.
 */
import { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import type * as UWS from '@trufflesuite/uws-js-unofficial';

/**
 * Native uWS builds exist for Node 16/18/20 only; on other versions the package
 * silently falls back to a broken JS implementation, so refuse to start.
 */
const NATIVE_ABIS = new Set(['93', '108', '115']);

function loadUws(): typeof UWS {
  if (!NATIVE_ABIS.has(process.versions.modules)) {
    throw new Error(`whipcast needs Node.js 20 (uWebSockets.js has no native build for Node ${process.versions.node}). See .nvmrc.`);
  }
  const lib = createRequire(import.meta.url)('@trufflesuite/uws-js-unofficial') as typeof UWS;
  lib._cfg('silent'); // no `uWebSockets: 20` header on every response
  return lib;
}

const uws = loadUws();

export interface HttpInfo {
  remoteAddress: string;
  /** The request path exactly as sent (percent-encoded, no query): what routing must use. */
  rawPath: string;
}

export type SendResult = 'sent' | 'queued' | 'dropped';

/** A connected WebSocket. Safe to call after close (calls become no-ops). */
export interface SocketHandle<T> {
  readonly data: T;
  readonly remoteAddress: string;
  readonly closed: boolean;
  /** Sends one binary frame. 'queued' = accepted into the backpressure buffer; 'dropped' = over the limit. */
  send(bytes: Uint8Array): SendResult;
  bufferedAmount(): number;
  /** Closes gracefully with a code and a short reason (≤ 123 bytes). */
  end(code: number, reason: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Batches several sends into one syscall. */
  cork(fn: () => void): void;
}

export interface UpgradeInfo {
  url: string;
  query: string;
  headers: Record<string, string>;
  remoteAddress: string;
}

export interface WebSocketOptions<T> {
  path: string;
  maxPayloadLength: number;
  /** Bytes of outgoing backpressure after which uWS drops frames for the socket. */
  maxBackpressure: number;
  /** Seconds without traffic before the socket is closed; pings are sent automatically before that. */
  idleTimeoutSeconds: number;
  /** Returns the socket's user data, or an HTTP status to refuse the upgrade with. */
  upgrade(info: UpgradeInfo): T | { refuse: number };
  open(socket: SocketHandle<T>): void;
  /** `data` is only valid during the call: decode or copy it synchronously. */
  message(socket: SocketHandle<T>, data: Uint8Array, isBinary: boolean): void;
  drain(socket: SocketHandle<T>): void;
  close(socket: SocketHandle<T>, code: number, reason: string): void;
}

export interface ServerOptions<T> {
  host: string;
  port: number;
  /** Bodies above this are refused with 413 before any handler runs. */
  maxBodyBytes: number;
  /** Use X-Forwarded-For for the client address. */
  trustProxy: boolean;
  http(req: Request, info: HttpInfo): Promise<Response>;
  websocket?: WebSocketOptions<T>;
  onError(err: unknown): void;
}

export interface RunningServer {
  readonly port: number;
  /** Publishes a frame to every socket subscribed to `topic` (native fan-out). */
  publish(topic: string, bytes: Uint8Array): boolean;
  numSubscribers(topic: string): number;
  /** Stops accepting connections. Open sockets stay until closed. */
  stopListening(): void;
}

const decoder = new TextDecoder();
const text = (ab: ArrayBuffer): string => decoder.decode(ab);

/** uWS prints IPv4-mapped IPv6 addresses in full; normalise to dotted IPv4. */
export function normaliseAddress(raw: string): string {
  const m = /^(?:0000:){5}ffff:([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(raw) ?? /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(raw);
  if (m) {
    const a = parseInt(m[1]!, 16);
    const b = parseInt(m[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return raw.replace(/^::ffff:/i, '');
}

/**
 * With a trusted proxy, the last X-Forwarded-For entry is the address the proxy saw;
 * earlier entries are whatever the client wrote and must not pick its rate-limit bucket.
 */
function clientAddress(socketAddress: string, headers: Record<string, string>, trustProxy: boolean): string {
  const forwarded = trustProxy ? headers['x-forwarded-for']?.split(',').at(-1)?.trim() : undefined;
  return forwarded || socketAddress;
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE']);
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

function plainError(res: UWS.HttpResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.cork(() => res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json; charset=utf-8').end(body, true));
}

export function startServer<T>(options: ServerOptions<T>): Promise<RunningServer> {
  const app = uws.App();

  if (options.websocket) attachWebSocket(app, options.websocket, options.trustProxy);

  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const query = req.getQuery();
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    });
    const rawPath = req.getUrl();
    // The URL carries no Host: a Host header must never change what the path means (the router reads `rawPath`).
    const url = `http://localhost${rawPath}${query ? `?${query}` : ''}`;
    const remoteAddress = clientAddress(normaliseAddress(text(res.getRemoteAddressAsText())), headers, options.trustProxy);
    if (!KNOWN_METHODS.has(method)) return plainError(res, 501, 'not_implemented', `${method} is not supported`);
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });

    const respond = (response: Response, body: Uint8Array | null) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(response.status));
        response.headers.forEach((value, key) => {
          if (key !== 'content-length') res.writeHeader(key, value);
        });
        if (method === 'HEAD') {
          // endWithoutBody(length) leaves this uWS waiting for that many bytes and the connection dies; say it ourselves
          res.writeHeader('content-length', response.headers.get('content-length') ?? String(body?.byteLength ?? 0));
          res.endWithoutBody();
        } else res.end(body ?? new Uint8Array(0));
      });
    };
    const dispatch = (body: Uint8Array<ArrayBuffer> | null) => {
      let request: Request;
      try {
        request = new Request(url, { method, headers, ...(body ? { body } : {}) });
      } catch {
        // e.g. a header value that is not Latin-1: the client's mistake, not ours
        const msg = JSON.stringify({ error: { code: 'bad_request', message: 'Malformed request' } });
        respond(
          new Response(msg, { status: 400, headers: { 'content-type': 'application/json; charset=utf-8' } }),
          new TextEncoder().encode(msg),
        );
        return;
      }
      options
        .http(request, { remoteAddress, rawPath })
        .then(async (response) => respond(response, response.body ? new Uint8Array(await response.arrayBuffer()) : null))
        .catch((err: unknown) => {
          options.onError(err);
          respond(new Response(null, { status: 500 }), null);
        });
    };

    const declared = Number(headers['content-length'] ?? 0);
    const hasBody = !METHODS_WITHOUT_BODY.has(method) || declared > 0 || 'transfer-encoding' in headers;
    if (!hasBody) return dispatch(null);
    if (declared > options.maxBodyBytes) {
      return plainError(res, 413, 'payload_too_large', `Request body exceeds ${options.maxBodyBytes} bytes`);
    }
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (aborted || size < 0) return;
      size += chunk.byteLength;
      if (size > options.maxBodyBytes) {
        size = -1;
        return plainError(res, 413, 'payload_too_large', `Request body exceeds ${options.maxBodyBytes} bytes`);
      }
      chunks.push(new Uint8Array(chunk.slice(0)));
      if (isLast) dispatch(chunks.length === 1 ? chunks[0]! : new Uint8Array(Buffer.concat(chunks)));
    });
  });

  return new Promise((resolve, reject) => {
    app.listen(options.host, options.port, (listenSocket) => {
      if (!listenSocket) return reject(new Error(`cannot listen on ${options.host}:${options.port}`));
      let listening = true;
      resolve({
        // uWS documents it for a socket "or listenSocket"; both are opaque native handles, typed alike.
        port: uws.us_socket_local_port(listenSocket),
        publish: (topic, bytes) => app.publish(topic, bytes, true),
        numSubscribers: (topic) => app.numSubscribers(topic),
        stopListening() {
          if (!listening) return;
          listening = false;
          uws.us_listen_socket_close(listenSocket);
        },
      });
    });
  });
}

interface Slot<T> {
  handle?: SocketHandleImpl<T>;
  data: T;
  remoteAddress: string;
}

class SocketHandleImpl<T> implements SocketHandle<T> {
  closed = false;
  constructor(
    private readonly ws: UWS.WebSocket<Slot<T>>,
    readonly data: T,
    readonly remoteAddress: string,
  ) {}

  send(bytes: Uint8Array): SendResult {
    if (this.closed) return 'dropped';
    const r = this.ws.send(bytes, true, false);
    return r === 1 ? 'sent' : r === 0 ? 'queued' : 'dropped';
  }
  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }
  end(code: number, reason: string): void {
    if (!this.closed) this.ws.end(code, reason);
  }
  subscribe(topic: string): void {
    if (!this.closed) this.ws.subscribe(topic);
  }
  unsubscribe(topic: string): void {
    if (!this.closed) this.ws.unsubscribe(topic);
  }
  cork(fn: () => void): void {
    if (this.closed) fn();
    else this.ws.cork(fn);
  }
}

function attachWebSocket<T>(app: UWS.TemplatedApp, ws: WebSocketOptions<T>, trustProxy: boolean): void {
  app.ws<Slot<T>>(ws.path, {
    compression: uws.DISABLED,
    maxPayloadLength: ws.maxPayloadLength,
    maxBackpressure: ws.maxBackpressure,
    idleTimeout: ws.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    upgrade(res, req, context) {
      const headers: Record<string, string> = {};
      req.forEach((k, v) => {
        headers[k] = v;
      });
      const remoteAddress = clientAddress(normaliseAddress(text(res.getRemoteAddressAsText())), headers, trustProxy);
      const decision = ws.upgrade({ url: req.getUrl(), query: req.getQuery(), headers, remoteAddress });
      if (typeof decision === 'object' && decision !== null && 'refuse' in decision) {
        res.writeStatus(statusLine(decision.refuse)).end();
        return;
      }
      res.upgrade<Slot<T>>(
        { data: decision as T, remoteAddress },
        headers['sec-websocket-key'] ?? '',
        headers['sec-websocket-protocol'] ?? '',
        headers['sec-websocket-extensions'] ?? '',
        context,
      );
    },
    open(socket) {
      const slot = socket.getUserData();
      slot.handle = new SocketHandleImpl(socket, slot.data, slot.remoteAddress);
      ws.open(slot.handle);
    },
    message(socket, message, isBinary) {
      const handle = socket.getUserData().handle;
      if (handle) ws.message(handle, new Uint8Array(message), isBinary);
    },
    drain(socket) {
      const handle = socket.getUserData().handle;
      if (handle) ws.drain(handle);
    },
    close(socket, code, message) {
      const handle = socket.getUserData().handle;
      if (!handle) return;
      handle.closed = true;
      ws.close(handle, code, text(message));
    },
  });
}
