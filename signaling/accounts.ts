import { isUniqueViolation, type Database, type User } from '@whipcast/db';
import { DUMMY_HASH, hashPassword, verifyPassword } from './auth/passwords.ts';
import { hashToken, newToken, SESSION_TOKEN_PREFIX } from './auth/tokens.ts';
import { DomainError } from './errors.ts';

export interface Session {
  token: string;
  expiresAt: Date;
  user: User;
}

export interface Accounts {
  register(username: string, password: string): Promise<Session>;
  login(username: string, password: string): Promise<Session>;
  logout(token: string): Promise<void>;
  /** The user of an unexpired session token, or null. */
  authenticate(token: string): Promise<User | null>;
}

export function createAccounts(db: Database, opts: { sessionTtlMs: number }): Accounts {
  async function openSession(user: User): Promise<Session> {
    const token = newToken(SESSION_TOKEN_PREFIX);
    const expiresAt = new Date(Date.now() + opts.sessionTtlMs);
    await db.sessions.create(user.id, hashToken(token), expiresAt);
    return { token, expiresAt, user };
  }

  return {
    async register(username, password) {
      const hash = await hashPassword(password);
      try {
        const user = await db.users.create(username, hash);
        return await openSession(user);
      } catch (err) {
        if (isUniqueViolation(err)) throw new DomainError('username_taken', 'That username is taken');
        throw err;
      }
    },

    async login(username, password) {
      const user = await db.users.findByUsername(username);
      const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
      if (!user || !ok) throw new DomainError('invalid_credentials', 'Wrong username or password');
      return openSession({ id: user.id, username: user.username, createdAt: user.createdAt });
    },

    async logout(token) {
      await db.sessions.delete(hashToken(token));
    },

    async authenticate(token) {
      if (!token.startsWith(SESSION_TOKEN_PREFIX)) return null;
      return db.sessions.findUser(hashToken(token));
    },
  };
}
