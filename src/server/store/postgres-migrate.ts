/** Applies migrations.ts's PostgreSQL steps, one replica at a time. */
import type pg from 'pg';
import { databaseTooNew, MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { inTransaction } from './postgres-transaction.js';

/**
 * The advisory lock key of schema changes ("HVmg"). Replicas that start together queue on it: the first
 * applies the pending steps, the others then find nothing left to do (without it, two would both see the
 * schema missing and one would fail half way through CREATE TABLE).
 */
export const MIGRATION_LOCK = 0x48566d67;

/**
 * Applies the pending migrations (up to `upTo`, for tests of older schemas) in one transaction under the
 * advisory lock: PostgreSQL's DDL is transactional, so a failed step leaves the schema as it was. Refuses a
 * database of a newer schema without touching it.
 */
export async function migratePostgres(pool: pg.Pool, upTo = SCHEMA_VERSION): Promise<void> {
  await inTransaction(pool, async (client) => {
    // Released by COMMIT or ROLLBACK, so a replica that dies here never leaves it held.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL
    )`);
    const { rows } = await client.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM schema_migrations',
    );
    const current = rows[0].v ?? 0;
    if (current > SCHEMA_VERSION) throw databaseTooNew(current);
    for (const m of MIGRATIONS) {
      if (m.version <= current || m.version > upTo) continue;
      await client.query(m.postgres);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())', [
        m.version,
        m.name,
      ]);
    }
  });
}
