import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HematoError } from '../../errors.js';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../../testing/postgres.js';
import { describeStoreContract, newCase, prediction } from './contract.js';
import { PostgresCaseStore } from './postgres.js';
import { migratePostgres } from './postgres-migrate.js';
import { MIGRATIONS } from './migrations.js';

notePostgresSkip('PostgreSQL case store');

/** A database of its own for this file; `reset` empties it (schema and all) between tests. */
async function database(prefix: string) {
  const db = await freshDatabase(prefix);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => undefined); // its idle connection may be dropped on purpose (a test below)
  const tmp = mkdtempSync(join(tmpdir(), 'hv-pg-store-'));
  return {
    url: db.url,
    pool,
    tmp,
    reset: async () => {
      await pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    },
    open: () => PostgresCaseStore.open({ url: db.url, tmpDir: tmp }),
    dispose: async () => {
      await pool.end();
      await db.drop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

if (hasPostgres) {
  describeStoreContract('PostgreSQL', async () => {
    const db = await database('store_contract');
    return {
      reset: db.reset,
      open: db.open,
      hasBlob: async (_kind, sha) =>
        (await db.pool.query('SELECT 1 FROM blobs WHERE sha256 = $1', [sha])).rowCount === 1,
      recordMigration: async (version) => {
        await db.pool.query("INSERT INTO schema_migrations VALUES ($1, 'future', '2099-01-01')", [version]);
      },
      makeLegacyReasons: async (id, cells) => {
        await db.pool.query(
          'UPDATE cases SET review_reasons = NULL, needs_review = false, cells = $1 WHERE id = $2',
          [JSON.stringify(cells), id],
        );
      },
      runSql: async (sql) => {
        await db.pool.query(sql);
      },
      dispose: db.dispose,
    };
  });
}

describe.skipIf(!hasPostgres)('PostgresCaseStore (its own: replicas, locks, foreign keys)', () => {
  let db: Awaited<ReturnType<typeof database>>;
  beforeAll(async () => {
    db = await database('store_pg');
  });
  afterAll(async () => {
    await db?.dispose();
  });
  beforeEach(async () => {
    await db.reset();
  });

  it('lets replicas that start together on an empty database migrate it once', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => db.open()));
    try {
      for (const s of stores)
        expect((await s.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(MIGRATIONS.length);
      // One replica's case is every replica's case, image included.
      const c = await stores[0].add(newCase(Buffer.from('seen by all')));
      expect((await stores[3].readImage(c)).toString()).toBe('seen by all');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('keeps bytes that another connection is inserting a case for (not yet committed) when a case using them is deleted', async () => {
    const store = await db.open();
    const other = await db.pool.connect();
    try {
      const bytes = Buffer.from('shared across replicas');
      const first = await store.add(newCase(bytes, { heatmapPng: undefined }));
      // Another replica's insert, half done: its row references the bytes, uncommitted.
      await other.query('BEGIN');
      await other.query('INSERT INTO blobs VALUES ($1, $2) ON CONFLICT DO NOTHING', [
        first.imageSha256,
        bytes,
      ]);
      const id = '22222222-2222-4222-8222-222222222222';
      await other.query(
        `INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
           model_name, model_version, label, confidence, needs_review, probabilities, cells)
         VALUES ($1, now(), 'b.jpg', $2, 'image/jpeg', $3, 4, 4, 'm', '1', 'neutrophil', 0.8, false, $4, '[]')`,
        [id, first.imageSha256, bytes.length, JSON.stringify(prediction.probabilities)],
      );
      const deleting = store.delete(first.id);
      // The delete of the bytes waits for the other transaction's lock on them...
      for (let i = 0; i < 200; i++) {
        const { rows } = await db.pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        );
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await other.query('COMMIT');
      // ...and then leaves them to the case that now uses them.
      expect(await deleting).toBe(true);
      const second = await store.get(id);
      expect(await store.readImage(second!)).toEqual(bytes);
    } finally {
      other.release(true); // never back to the pool mid-transaction
      await store.close();
    }
  });

  it('stores the bytes again when a delete took them between its insert finding them and its row', async () => {
    const store = await db.open();
    try {
      const bytes = Buffer.from('taken away');
      const first = await store.add(newCase(bytes, { heatmapPng: undefined }));
      // Hold the next insert after its ON CONFLICT DO NOTHING found the bytes and before its foreign keys
      // are checked (triggers fire by name: "A…" before the "RI_…" constraint triggers).
      await db.pool.query(`
        CREATE FUNCTION pause_insert() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.file_name = 'paused.jpg' THEN PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$;
        CREATE TRIGGER "A_pause" AFTER INSERT ON cases FOR EACH ROW EXECUTE FUNCTION pause_insert();`);
      const pending = store.add(newCase(bytes, { file: 'paused.jpg', heatmapPng: undefined }));
      for (let i = 0; i < 200; i++) {
        const { rows } = await db.pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()",
        );
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await store.delete(first.id)).toBe(true); // the only committed user: its bytes go
      const second = await pending;
      expect(await store.readImage(second)).toEqual(bytes);
    } finally {
      await store.close();
    }
  });

  it('keeps an export file that another connection is pointing a job at (not yet committed) when a sweep removes its old job', async () => {
    const store = await db.open();
    const other = await db.pool.connect();
    try {
      const pdf = Buffer.from('%PDF exported twice');
      const old = await store.jobs.create('export-report', null);
      await store.jobs.claim(old.id, 'r');
      const sha = await store.putExportFile(old.id, 'r', pdf);
      await store.jobs.finish(old.id, 'r', { state: 'succeeded', result: { sha256: sha } });
      const again = await store.jobs.create('export-report', null);
      // Another replica's job storing the same bytes, half done: it references them, uncommitted.
      await other.query('BEGIN');
      await other.query('UPDATE jobs SET file_sha256 = $1 WHERE id = $2', [sha, again.id]);
      const sweeping = store.sweepExports(['export-report'], new Date(Date.now() + 60_000));
      await waitFor(db.pool, "wait_event_type = 'Lock'");
      await other.query('COMMIT');
      // The delete of the bytes waited for that lock, then the foreign key refused it.
      expect(await sweeping).toEqual({ jobs: 1, files: 0 });
      expect(await store.readExportFile(sha)).toEqual(pdf);
    } finally {
      other.release(true); // never back to the pool mid-transaction
      await store.close();
    }
  });

  it('stores an export file again when a sweep took it between its insert finding it and the job naming it', async () => {
    const store = await db.open();
    try {
      const pdf = Buffer.from('%PDF taken away');
      const old = await store.jobs.create('export-report', null);
      await store.jobs.claim(old.id, 'r');
      const sha = await store.putExportFile(old.id, 'r', pdf);
      await store.jobs.finish(old.id, 'r', { state: 'succeeded', result: { sha256: sha } });
      const again = await store.jobs.create('paused', null);
      await store.jobs.claim(again.id, 'r');
      // Hold the next put after its ON CONFLICT DO NOTHING found the bytes and before its foreign key is
      // checked (triggers fire by name: "A…" before the "RI_…" constraint triggers).
      await db.pool.query(`
        CREATE FUNCTION pause_put() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.kind = 'paused' THEN PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$;
        CREATE TRIGGER "A_pause" AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION pause_put();`);
      const pending = store.putExportFile(again.id, 'r', pdf);
      await waitFor(db.pool, "wait_event = 'PgSleep'");
      // The only committed job naming the bytes goes, and they with it.
      expect(await store.sweepExports(['export-report'], new Date(Date.now() + 60_000))).toEqual({
        jobs: 1,
        files: 1,
      });
      expect(await pending).toBe(sha);
      expect(await store.readExportFile(sha)).toEqual(pdf);
    } finally {
      await store.close();
    }
  });

  it('migrates export jobs that finished before migration 11 to name their files (when the bytes are there)', async () => {
    await migratePostgres(db.pool, 10);
    await db.pool.query("INSERT INTO blobs VALUES ('f1', 'old export')");
    const job = (id: string, sha: string) =>
      db.pool.query(
        `INSERT INTO jobs (id, kind, state, input, result, created_at, updated_at, finished_at)
         VALUES ($1, 'export-cases', 'succeeded', 'null', $2, now(), now(), now())`,
        [id, JSON.stringify({ sha256: sha })],
      );
    await job('kept', 'f1');
    await job('lost', 'f2'); // its bytes are not there: no reference the foreign key would refuse
    const store = await db.open();
    try {
      const { rows } = await db.pool.query('SELECT id, file_sha256 FROM jobs ORDER BY id');
      expect(rows).toEqual([
        { id: 'kept', file_sha256: 'f1' },
        { id: 'lost', file_sha256: null },
      ]);
    } finally {
      await store.close();
    }
  });

  it('migrates a schema-1 database, keeping its cases', async () => {
    await migratePostgres(db.pool, 1);
    await db.pool.query("INSERT INTO blobs VALUES ('abc', 'old image')");
    await db.pool.query(
      `INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
         model_name, model_version, label, confidence, needs_review, probabilities, cells)
       VALUES ('11111111-1111-4111-8111-111111111111', '2024-01-02T00:00:00Z', 'old.jpg', 'abc',
         'image/jpeg', 9, 16, 16, 'fake-wbc', '0.0.0-old', 'neutrophil', 0.3, true, '{"neutrophil":0.3}', '[]')`,
    );
    const store = await db.open();
    try {
      expect((await store.migrations()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
      const c = await store.get('11111111-1111-4111-8111-111111111111');
      expect(c).toMatchObject({
        createdAt: '2024-01-02T00:00:00.000Z',
        model: { name: 'fake-wbc', version: '0.0.0-old', sha256: null, tta: false },
        hasHeatmapData: false,
        needsReview: true,
        reviewReasons: ['low_confidence'], // derived: stored before reasons existed
      });
      expect((await store.readImage(c!)).toString()).toBe('old image');
    } finally {
      await store.close();
    }
  });

  it('survives its connections being dropped, and says when the database became read-only', async () => {
    const store = await db.open();
    const { rows } = await db.pool.query<{ db: string }>('SELECT current_database() AS db');
    try {
      await store.add(newCase(Buffer.from('before')));
      await store.checkWritable();
      await db.pool.query(`ALTER DATABASE ${rows[0].db} SET default_transaction_read_only = on`);
      // A restart or failover drops every connection: the pool opens new ones (and the process lives on).
      await db.pool.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      await new Promise((r) => setTimeout(r, 100));
      const error = await store.checkWritable().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((error as HematoError).code).toBe('database_read_only');
      expect((await store.list({ limit: 10, offset: 0 })).total).toBe(1);
    } finally {
      await db.pool.query(`ALTER DATABASE ${rows[0].db} RESET default_transaction_read_only`);
      await store.close();
    }
  });

  it('says which database it cannot reach, without its password', async () => {
    const error = await PostgresCaseStore.open({
      url: 'postgres://hv:s3cret@127.0.0.1:1/nowhere',
      tmpDir: db.tmp,
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(HematoError);
    expect((error as HematoError).code).toBe('database_unavailable');
    expect((error as Error).message).toContain('127.0.0.1:1/nowhere');
    expect((error as Error).message).not.toContain('s3cret');
  });
});

/** Until another connection of this database waits as `condition` (pg_stat_activity) says, for up to 2 s. */
async function waitFor(pool: pg.Pool, condition: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${condition} AND datname = current_database()`,
    );
    if (rows[0].n > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
