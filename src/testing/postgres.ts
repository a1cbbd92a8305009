import pg from 'pg';
import { skipNote } from './shared.js';

/**
 * The PostgreSQL server the tests may use: `HV_TEST_DATABASE_URL` (`.ci/run` starts a throw-away cluster with
 * scripts/pg-cluster.sh and sets it). Unset or unreachable: PostgreSQL tests skip with a message.
 */
export const TEST_DATABASE_URL = process.env.HV_TEST_DATABASE_URL ?? '';

async function reachable(url: string): Promise<boolean> {
  if (!url) return false;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Resolved once per test file: whether a PostgreSQL server answers at HV_TEST_DATABASE_URL. */
export const hasPostgres: boolean = await reachable(TEST_DATABASE_URL);

/** Call at the top of a PostgreSQL test file: says why it skips. */
export function notePostgresSkip(what: string): void {
  if (hasPostgres) return;
  skipNote(
    what,
    TEST_DATABASE_URL
      ? `a PostgreSQL server at HV_TEST_DATABASE_URL (${TEST_DATABASE_URL} did not answer)`
      : 'HV_TEST_DATABASE_URL (start one: eval "$(bash scripts/pg-cluster.sh start)")',
  );
}

/**
 * A fresh, empty database on the test server for one test file, dropped by the returned `drop()`. Each file
 * gets its own so files can run in parallel.
 */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
