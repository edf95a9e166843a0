/**
 * Socket test helpers shared by the /ws test files: connected WebSocket
 * clients and signed-in users, all closed together at the end of a file.
 */
import { SocketClient } from '@whipcast/testkit';
import type { TestServer } from './testing.ts';

/** The clients one test file opened, so afterAll can close every one. */
export class TestSockets {
  readonly #clients: SocketClient[] = [];
  /** The server used when a call names none (usually the file's beforeAll server). */
  readonly #defaultServer: () => TestServer;

  constructor(defaultServer: () => TestServer) {
    this.#defaultServer = defaultServer;
  }

  /** A client connected to `srv` that has received its `hello`. */
  async connect(srv = this.#defaultServer()): Promise<SocketClient> {
    const c = await SocketClient.connect(srv.url);
    this.#clients.push(c);
    await c.waitFor('hello');
    return c;
  }

  /** A registered user with a channel (room) and a signed-in socket. */
  async userWithSocket(srv = this.#defaultServer()) {
    const u = await srv.register();
    const me = (await (await srv.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
    const socket = await this.connect(srv);
    await socket.request({ t: 'auth', token: u.token });
    return { ...u, room: me.id, socket };
  }

  /** Closes these clients with the rest at close(). */
  track(...clients: SocketClient[]): void {
    this.#clients.push(...clients);
  }

  /** Closes every client; idempotent. */
  close(): void {
    for (const c of this.#clients.splice(0)) c.close();
  }
}
