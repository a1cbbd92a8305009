import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from './postgres.js';

notePostgresSkip('PostgreSQL test harness');

describe.skipIf(!hasPostgres)('the PostgreSQL test harness', () => {
  it('gives each test file its own empty database and drops it afterwards', async () => {
    const db = await freshDatabase('harness');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('CREATE TABLE t (x int)');
      await client.query('INSERT INTO t VALUES (1), (2)');
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM t');
      expect(rows[0].n).toBe('2');
    } finally {
      await client.end();
    }
    await db.drop();
    const again = new pg.Client({ connectionString: db.url });
    await expect(again.connect()).rejects.toThrow(/does not exist/);
    await again.end().catch(() => undefined);
  });
});
