import type { RouteDoc } from '../types.ts';

type Responses = RouteDoc['responses'];

/** Shared response descriptions. */
export const err = (description: string) => ({ description, schema: 'Error' });
export const UNAUTHORIZED: Responses = { '401': err('Missing, invalid or expired session token') };
export const JSON_BODY_ERRORS: Responses = {
  '400': err('Malformed JSON or invalid fields'),
  '413': err('Body too large'),
  '415': err('Not application/json'),
};
