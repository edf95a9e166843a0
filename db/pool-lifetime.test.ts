/**
 * The embedded database's pool gives back the connections a burst opened even while queries keep coming (the
 * client hands each query to the connection idle longest, so none would ever be idle long enough to close):
 * each connection lives `lifetimeSeconds`, and is reopened only when no open one is free.
 */
import { afterAll, expect, it } from 'vitest';
import { connect, type Connection } from './connect.ts';

let db: Connection | undefined;
afterAll(() => db?.close());

it('a burst of 3 connections shrinks to 1 under a steady trickle of queries', { timeout: 30_000 }, async () => {
  db = await connect({ embeddedPath: ':memory:', lifetimeSeconds: 2 });
  const { sql } = db;
  const backends = async () =>
    Number((await sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'whipcast'`)[0]!.n);
  await Promise.all([1, 2, 3].map(() => sql`SELECT pg_sleep(0.3)`));
  expect(await backends()).toBe(3);
  // a query every 250 ms: each connection is used every 750 ms, never idle for idle_timeout (30 s)
  const until = Date.now() + 4000;
  while (Date.now() < until) {
    await sql`SELECT 1`;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(await backends()).toBe(1);
});
