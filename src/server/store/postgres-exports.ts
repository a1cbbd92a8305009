/**
 * Export files in PostgreSQL's blobs and the job that names each one (jobs.file_sha256, migration 11): the
 * same contract as sqlite-exports.ts, across replicas. The bytes and the job's reference commit in one
 * statement, and the foreign key from jobs to blobs is the guard: a sweep's delete of bytes that any job
 * references, also one whose transaction has not committed yet (it holds a key-share lock on the row), is
 * refused, and that refusal means "still in use".
 */
import type pg from 'pg';
import { sha256 } from './blobs.js';
import { notHeld } from './job-rows.js';
import { isForeignKeyViolation, type Queryable } from './postgres-blobs.js';
import { inTransaction } from './postgres-transaction.js';

/** The job, while this runner ($4) holds it. */
const HELD = `SELECT id, file_sha256 FROM jobs WHERE id = $1 AND owner = $4 AND state = 'running'`;

/**
 * Stores the bytes (unless there) and points the job at them; the job's earlier file, if it named another.
 * The bytes are stored only for a job this runner holds, so none are left that no job names, and a runner
 * that lost the job (another took it over) changes nothing of it.
 */
const PUT = `WITH stored AS (
    INSERT INTO blobs (sha256, bytes) SELECT $2, $3::bytea WHERE EXISTS (${HELD})
    ON CONFLICT (sha256) DO NOTHING
  )
  UPDATE jobs j SET file_sha256 = $2 FROM (${HELD} FOR UPDATE) old
  WHERE j.id = old.id RETURNING old.file_sha256 AS old`;

/** Removes bytes no job and no case names; the foreign keys refuse it if one does after all (uncommitted). */
const REMOVE_UNREFERENCED = `DELETE FROM blobs WHERE sha256 = $1
  AND NOT EXISTS (SELECT 1 FROM jobs WHERE file_sha256 = $1)
  AND NOT EXISTS (SELECT 1 FROM cases WHERE image_sha256 = $1 OR heatmap_sha256 = $1)`;

/** Attempts of a put that lost a race to a sweep (see put). */
const ATTEMPTS = 3;

export class PostgresExportFiles {
  constructor(private readonly pool: pg.Pool) {}

  async put(jobId: string, owner: string, bytes: Buffer): Promise<string> {
    const sha = sha256(bytes);
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await this.pool.query<{ old: string | null }>(PUT, [jobId, sha, bytes, owner]);
        if (rows.length === 0) throw notHeld(jobId, owner);
        if (rows[0].old && rows[0].old !== sha) await this.removeUnreferenced(rows[0].old);
        return sha;
      } catch (err) {
        // A sweep removed the bytes between our INSERT … DO NOTHING (which found them) and the foreign-key
        // check of our UPDATE: the statement failed whole, and is run again, storing them again.
        if (attempt >= ATTEMPTS || !isForeignKeyViolation(err, 'jobs')) throw err;
      }
    }
  }

  /**
   * One transaction, so the jobs and their files go together: a replica that dies half way leaves both for
   * the next sweep, never files that no job names (which no sweep would find again). Each file's delete is
   * under a savepoint: the foreign key's refusal (a job naming it after all) undoes only that delete.
   */
  async sweep(kinds: string[], finishedBefore: Date): Promise<{ jobs: number; files: number }> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ file_sha256: string | null }>(
        `DELETE FROM jobs WHERE kind = ANY($1) AND state IN ('succeeded', 'failed') AND finished_at < $2
         RETURNING file_sha256`,
        [kinds, finishedBefore],
      );
      let files = 0;
      for (const sha of new Set(rows.map((r) => r.file_sha256))) {
        if (sha && (await removeUnreferenced(client, sha, true))) files++;
      }
      return { jobs: rows.length, files };
    });
  }

  private removeUnreferenced(sha: string): Promise<boolean> {
    return removeUnreferenced(this.pool, sha, false);
  }
}

/** Whether it removed the bytes; `savepoint`: inside the caller's transaction, which a refusal must not end. */
async function removeUnreferenced(db: Queryable, sha: string, savepoint: boolean): Promise<boolean> {
  if (savepoint) await db.query('SAVEPOINT remove_file');
  try {
    const { rowCount } = await db.query(REMOVE_UNREFERENCED, [sha]);
    if (savepoint) await db.query('RELEASE SAVEPOINT remove_file');
    return rowCount === 1;
  } catch (err) {
    if (!isForeignKeyViolation(err)) throw err;
    if (savepoint) await db.query('ROLLBACK TO SAVEPOINT remove_file');
    return false;
  }
}
