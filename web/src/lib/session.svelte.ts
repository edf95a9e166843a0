/** Who is signed in, shared by every page; the socket re-authenticates when it changes. */
import { api, storedToken, storeToken } from './api.ts';
import { socket } from './socket.svelte.ts';

class Session {
  user = $state<{ id: string; username: string } | null>(null);
  token = $state<string | null>(null);
  ready = $state(false);

  async restore(): Promise<void> {
    this.token = storedToken();
    if (this.token) {
      try {
        const r = await socket.request({ t: 'auth', token: this.token });
        this.user = r.user;
      } catch (e) {
        // Only a refused token signs out; a lost connection is retried by the socket.
        if ((e as { code?: string }).code === 'unauthorized') this.set(null, null);
        else console.warn('session restore failed', e);
      }
    }
    this.ready = true;
  }

  set(token: string | null, user: { id: string; username: string } | null): void {
    storeToken(token);
    this.token = token;
    this.user = user;
    void socket.request({ t: 'auth', token }).catch(() => {});
  }

  async signIn(mode: 'login' | 'register', username: string, password: string): Promise<void> {
    const r = mode === 'login' ? await api.login(username, password) : await api.register(username, password);
    this.set(r.token, r.user);
  }

  async signOut(): Promise<void> {
    await api.logout().catch(() => {});
    this.set(null, null);
  }
}

export const session = new Session();
