/**
 * Route tests run once per case-store backend: on SQLite, and again on PostgreSQL when a test server answers
 * (HV_TEST_DATABASE_URL). A file runs `describe.each(BACKENDS)`, calls `databasePerDescribe` in it, and builds
 * each test's app on `databaseUrl` after `emptyDatabase()` (ES module exports are live bindings, so the
 * importing file sees the running describe's URL).
 */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { freshDatabase, hasPostgres } from './postgres.js';

export const BACKENDS = [
  { name: 'SQLite', postgres: false },
  ...(hasPostgres ? [{ name: 'PostgreSQL', postgres: true }] : []),
];

/** The PostgreSQL database of the running describe, or undefined on SQLite. */
export let databaseUrl: string | undefined;

/** In a describe run per backend: on PostgreSQL, a database of its own, made before its tests and dropped after. */
export function databasePerDescribe(postgres: boolean, prefix: string): void {
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  beforeAll(async () => {
    db = postgres ? await freshDatabase(prefix) : undefined;
    databaseUrl = db?.url;
  });
  afterAll(async () => {
    databaseUrl = undefined;
    await db?.drop();
  });
}

/**
 * Empties the running describe's database (nothing on SQLite): each test starts from an empty database, as
 * each starts from an empty data folder on SQLite.
 */
export async function emptyDatabase(): Promise<void> {
  if (!databaseUrl) return;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  } finally {
    await client.end();
  }
}
