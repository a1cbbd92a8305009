/**
 * Image and heat-map bytes in PostgreSQL (table `blobs`, bytea), content-addressed by sha256 so identical
 * bytes are stored once and every replica reads every image. The same interface as the data folder's store:
 * an S3-compatible object store could stand behind it for more data than a database should hold (README).
 */
import type pg from 'pg';
import { HematoError } from '../../errors.js';
import type { BlobKind, BlobStore } from './blobs.js';

export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/**
 * The one way bytes are stored (sha and bytes are parameter placeholders; null bytes store nothing). Also a
 * part of the statements that store a case with its bytes (postgres-rows.ts): one round trip, one commit.
 */
export function insertBlob(sha: string, bytes: string): string {
  return `INSERT INTO blobs (sha256, bytes) SELECT ${sha}, ${bytes}::bytea WHERE ${bytes}::bytea IS NOT NULL
    ON CONFLICT (sha256) DO NOTHING`;
}

/** SQLSTATE foreign_key_violation. */
export const FOREIGN_KEY_VIOLATION = '23503';

export function isForeignKeyViolation(err: unknown, table?: string): boolean {
  const e = err as { code?: string; table?: string };
  return e.code === FOREIGN_KEY_VIOLATION && (table === undefined || e.table === table);
}

export class PostgresBlobStore implements BlobStore {
  constructor(private readonly db: Queryable) {}

  /** Stores the bytes unless they are there already. Both kinds share one table: the key is the content. */
  async put(_kind: BlobKind, sha: string, bytes: Buffer): Promise<void> {
    await this.db.query(insertBlob('$1', '$2'), [sha, bytes]);
  }

  async get(_kind: BlobKind, sha: string, what: string): Promise<Buffer> {
    const { rows } = await this.db.query<{ bytes: Buffer }>('SELECT bytes FROM blobs WHERE sha256 = $1', [
      sha,
    ]);
    if (rows.length === 0) {
      throw new HematoError(`The stored ${what} is missing from the database.`, 'file_missing', 500);
    }
    return rows[0].bytes;
  }

  /**
   * Deletes the bytes unless a case references them: the foreign keys from cases refuse it (also for a case
   * another transaction is inserting right now), and that refusal means "still in use", not a failure.
   */
  async remove(_kind: BlobKind, sha: string): Promise<void> {
    try {
      await this.db.query('DELETE FROM blobs WHERE sha256 = $1', [sha]);
    } catch (err) {
      if (!isForeignKeyViolation(err)) throw err;
    }
  }
}
