/**
 * One transaction on one pooled connection: BEGIN, the work, COMMIT; on any failure ROLLBACK (its own failure
 * ignored: the connection is going back either way) and the first error thrown again. The connection always
 * returns to the pool. The one place the PostgreSQL store writes this dance.
 */
import type pg from 'pg';

export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
}
