/**
 * Export files in the data folder's exports/ and the job that names each one (jobs.file_sha256, migration 11):
 * the same contract as postgres-exports.ts. One process holds the data folder (the data lock), so ordering
 * the steps inside it is the guard: a job's reference is recorded before its file is written, and a sweep
 * checks and unlinks without an await in between, so no job can take a file between the check and the unlink.
 */
import type Database from 'better-sqlite3';
import { sha256, type FolderBlobStore } from './blobs.js';
import { notHeld } from './job-rows.js';

export class SqliteExportFiles {
  constructor(
    private readonly db: Database.Database,
    private readonly blobs: FolderBlobStore,
  ) {}

  async put(jobId: string, owner: string, bytes: Buffer): Promise<string> {
    const sha = sha256(bytes);
    const job = this.db
      .prepare(`SELECT file_sha256 FROM jobs WHERE id = ? AND owner = ? AND state = 'running'`)
      .get(jobId, owner) as { file_sha256: string | null } | undefined;
    if (!job) throw notHeld(jobId, owner);
    // Before the first await: from here on a sweep sees the reference and leaves the file (or the one it
    // removed a moment ago is written again below).
    this.db.prepare('UPDATE jobs SET file_sha256 = ? WHERE id = ?').run(sha, jobId);
    // A retried job that made other bytes (new cases meanwhile): its earlier file is no longer anyone's.
    if (job.file_sha256 && job.file_sha256 !== sha) this.removeUnreferenced(job.file_sha256);
    await this.blobs.put('export', sha, bytes);
    return sha;
  }

  sweep(kinds: string[], finishedBefore: Date): { jobs: number; files: number } {
    if (kinds.length === 0) return { jobs: 0, files: 0 };
    // Files are unlinked inside the transaction that deletes their jobs, and no await anywhere: nothing can
    // reference a file between these checks and the unlinks. Should the commit fail (or the process die)
    // after an unlink, the jobs stay and the next sweep deletes them (a file gone already is fine); the
    // other order could leave files that no job names, which no sweep would ever find.
    return this.db.transaction(() => {
      const gone = this.db
        .prepare(
          `DELETE FROM jobs WHERE kind IN (${kinds.map(() => '?').join(',')})
             AND state IN ('succeeded', 'failed') AND finished_at < ?
           RETURNING file_sha256`,
        )
        .all(...kinds, finishedBefore.toISOString()) as { file_sha256: string | null }[];
      let files = 0;
      for (const sha of new Set(gone.map((r) => r.file_sha256))) {
        if (sha && this.removeUnreferenced(sha)) files++;
      }
      return { jobs: gone.length, files };
    })();
  }

  /** Removes the file unless a job names it; whether it did. */
  private removeUnreferenced(sha: string): boolean {
    if (this.db.prepare('SELECT 1 FROM jobs WHERE file_sha256 = ? LIMIT 1').get(sha)) return false;
    this.blobs.removeNow('export', sha);
    return true;
  }
}
