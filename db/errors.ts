import postgres from 'postgres';

/** True when `err` is a Postgres unique-violation, optionally on a given constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  return err instanceof postgres.PostgresError && err.code === '23505' && (constraint === undefined || err.constraint_name === constraint);
}
