import type { User } from '@whipcast/db';
import type { Accounts, Session } from '../../accounts.ts';
import { Credentials, LoginCredentials, type ApiAuthResult } from '../../api.ts';
import { HashQueue, HashQueueFullError } from '../../auth/hash-queue.ts';
import { bearerToken, readJson } from '../body.ts';
import { asHttpError, errorResponse, HttpError, jsonResponse } from '../errors.ts';
import { addressBucket, createRateLimiter, type RateLimiter } from '../rate-limit.ts';
import type { Route } from '../types.ts';
import { err, JSON_BODY_ERRORS } from './docs.ts';

const toApi = (s: Session): ApiAuthResult => ({
  token: s.token,
  expiresAt: s.expiresAt.toISOString(),
  user: { id: s.user.id, username: s.user.username },
});

/** Resolves the signed-in user of a request or throws 401. */
export function userAuthenticator(accounts: Accounts) {
  return async (req: Request): Promise<User> => {
    const token = bearerToken(req);
    const user = token ? await accounts.authenticate(token) : null;
    if (!user) {
      throw new HttpError(
        401,
        token ? 'invalid_token' : 'unauthenticated',
        token ? 'The session token is invalid or expired' : 'Sign in first (Authorization: Bearer <token>)',
        {
          'www-authenticate': `Bearer realm="whipcast"${token ? ', error="invalid_token"' : ''}`,
        },
      );
    }
    return user;
  };
}

/** Limits on sign-in and sign-up (see `signaling/config.ts`). */
export interface AuthLimits {
  /** Sign-in attempts per client address per minute. */
  loginPerMinute: number;
  /** Failed sign-ins per account per 15 minutes. */
  loginFailuresPerAccount: number;
  /** Sign-ups per client address per hour. */
  registerPerHour: number;
  /** Password hashes computed at once. */
  hashConcurrency: number;
  /** Sign-ins/sign-ups waiting for a hashing slot. */
  hashQueue: number;
}

const ACCOUNT_WINDOW_MS = 15 * 60_000;
const NO_STORE = { 'cache-control': 'no-store' };
const TOO_MANY = err('Too many attempts (per address, or for this account); see Retry-After');
const BUSY = err('Too many sign-ins being checked right now; see Retry-After');

function invalidCredentials(): HttpError {
  return new HttpError(401, 'invalid_credentials', 'Wrong username or password');
}

function limit(limiter: RateLimiter, key: string, message: string): void {
  const retry = limiter.hit(key);
  if (retry) throw new HttpError(429, 'rate_limited', message, { 'retry-after': String(retry) });
}

export function authRoutes(accounts: Accounts, limits: AuthLimits): Route[] {
  const loginPerAddress = createRateLimiter(limits.loginPerMinute, 60_000);
  const failuresPerAccount = createRateLimiter(limits.loginFailuresPerAccount, ACCOUNT_WINDOW_MS);
  const registerPerAddress = createRateLimiter(limits.registerPerHour, 3600_000);
  const hashing = new HashQueue({ concurrency: limits.hashConcurrency, queueLimit: limits.hashQueue });

  /** Every scrypt runs through the queue: a flood of sign-ins waits or is refused instead of starving the process. */
  async function hashed<T>(address: string, job: () => Promise<T>): Promise<T> {
    try {
      return await hashing.run(address, job);
    } catch (e) {
      if (e instanceof HashQueueFullError) throw new HttpError(503, 'busy', e.message, { 'retry-after': '1' });
      throw e;
    }
  }

  const routes: Route[] = [
    {
      method: 'POST',
      path: '/api/auth/register',
      maxBodyBytes: 4096,
      doc: {
        tags: ['auth'],
        summary: 'Create an account and sign in',
        request: { contentType: 'application/json', schema: 'Credentials' },
        responses: {
          '201': { description: 'Signed in', schema: 'AuthResult' },
          ...JSON_BODY_ERRORS,
          '409': err('Username taken'),
          '429': err('Too many sign-ups from this address; see Retry-After'),
          '503': BUSY,
        },
      },
      async handler(req, ctx) {
        const { username, password } = await readJson(req, Credentials);
        const address = addressBucket(ctx.remoteAddress);
        limit(registerPerAddress, address, 'Too many sign-ups from this address; try again later');
        return jsonResponse(toApi(await hashed(address, () => accounts.register(username, password))), 201);
      },
    },
    {
      method: 'POST',
      path: '/api/auth/login',
      maxBodyBytes: 4096,
      doc: {
        tags: ['auth'],
        summary: 'Sign in',
        request: { contentType: 'application/json', schema: 'LoginCredentials' },
        responses: {
          '200': { description: 'Signed in', schema: 'AuthResult' },
          ...JSON_BODY_ERRORS,
          '401': err('Wrong username or password'),
          '429': TOO_MANY,
          '503': BUSY,
        },
      },
      async handler(req, ctx) {
        const { username, password } = await readJson(req, LoginCredentials);
        const address = addressBucket(ctx.remoteAddress);
        limit(loginPerAddress, address, 'Too many sign-in attempts from this address; try again later');
        // a name that could not have been registered has no account to guess at, and costs no hashing
        if (!Credentials.shape.username.safeParse(username).success) throw invalidCredentials();
        const account = username.toLowerCase();
        // counted before checking, so parallel guesses cannot all slip in; a right password takes its count back
        limit(failuresPerAccount, account, 'Too many failed sign-ins for this account; try again later');
        if (!Credentials.shape.password.safeParse(password).success) throw invalidCredentials();
        const session = await hashed(address, () => accounts.login(username, password));
        failuresPerAccount.forgive(account);
        return jsonResponse(toApi(session));
      },
    },
    {
      method: 'POST',
      path: '/api/auth/logout',
      doc: {
        tags: ['auth'],
        summary: 'End the current session (idempotent)',
        auth: 'session',
        responses: { '204': { description: 'Signed out' } },
      },
      async handler(req) {
        const token = bearerToken(req);
        if (token) await accounts.logout(token);
        return new Response(null, { status: 204 });
      },
    },
  ];
  // Tokens and credential errors must never sit in a cache.
  return routes.map((r) => ({
    ...r,
    async handler(req, ctx) {
      let res: Response;
      try {
        res = await r.handler(req, ctx);
      } catch (err) {
        const e = asHttpError(err);
        if (!e) throw err;
        res = errorResponse(e.status, e.code, e.message, e.headers);
      }
      for (const [k, v] of Object.entries(NO_STORE)) res.headers.set(k, v);
      return res;
    },
  }));
}
