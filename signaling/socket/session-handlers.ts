/** `ping` and `auth`: who is on this socket. */
import type { Accounts } from '../accounts.ts';
import { DomainError } from '../errors.ts';
import type { Handlers } from './sockets.ts';

export function sessionHandlers(accounts: Accounts): Handlers<'ping' | 'auth'> {
  return {
    ping: () => ({ now: Date.now() }),
    async auth(s, f) {
      if (f.token === null) {
        s.data.user = null;
        return { user: null };
      }
      const u = await accounts.authenticate(f.token);
      if (!u) throw new DomainError('unauthorized', 'Invalid or expired session token');
      s.data.user = u;
      return { user: { id: u.id, username: u.username } };
    },
  };
}
