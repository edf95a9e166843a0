import type { User } from '@whipcast/db';
import type { Accounts, Session } from '../../accounts.ts';
import { Credentials, type ApiAuthResult } from '../../api.ts';
import { bearerToken, readJson } from '../body.ts';
import { HttpError, jsonResponse } from '../errors.ts';
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

export function authRoutes(accounts: Accounts): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/auth/register',
      maxBodyBytes: 4096,
      doc: {
        tags: ['auth'],
        summary: 'Create an account and sign in',
        request: { contentType: 'application/json', schema: 'Credentials' },
        responses: { '201': { description: 'Signed in', schema: 'AuthResult' }, ...JSON_BODY_ERRORS, '409': err('Username taken') },
      },
      async handler(req) {
        const { username, password } = await readJson(req, Credentials);
        return jsonResponse(toApi(await accounts.register(username, password)), 201);
      },
    },
    {
      method: 'POST',
      path: '/api/auth/login',
      maxBodyBytes: 4096,
      doc: {
        tags: ['auth'],
        summary: 'Sign in',
        request: { contentType: 'application/json', schema: 'Credentials' },
        responses: {
          '200': { description: 'Signed in', schema: 'AuthResult' },
          ...JSON_BODY_ERRORS,
          '401': err('Wrong username or password'),
        },
      },
      async handler(req) {
        const { username, password } = await readJson(req, Credentials);
        return jsonResponse(toApi(await accounts.login(username, password)));
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
}
