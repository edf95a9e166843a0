import type { Sql } from './connect.ts';

export interface User {
  id: string;
  username: string;
  createdAt: Date;
}

export interface UserWithPassword extends User {
  passwordHash: string;
}

export function usersQueries(sql: Sql) {
  return {
    /** Throws a unique violation (see `isUniqueViolation`) when the name is taken, case-insensitively. */
    async create(username: string, passwordHash: string): Promise<User> {
      const [row] = await sql<User[]>`
        INSERT INTO users (username, password_hash) VALUES (${username}, ${passwordHash})
        RETURNING id, username, created_at`;
      return row!;
    },

    async findByUsername(username: string): Promise<UserWithPassword | null> {
      const [row] = await sql<UserWithPassword[]>`
        SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = lower(${username})`;
      return row ?? null;
    },

    async findById(id: string): Promise<User | null> {
      const [row] = await sql<User[]>`SELECT id, username, created_at FROM users WHERE id = ${id}`;
      return row ?? null;
    },
  };
}
