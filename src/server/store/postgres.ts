import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import pg from 'pg';
import { HematoError } from '../../errors.js';
import type { HeatmapData } from '../../pipeline.js';
import { CaseBlobs, removeStaleTemps, sha256, type BlobKind } from './blobs.js';
import { casesInPages } from './case-pages.js';
import { migratePostgres } from './postgres-migrate.js';
import { isForeignKeyViolation, PostgresBlobStore } from './postgres-blobs.js';
import {
  ADD_REVIEW,
  ATTACH_HEATMAP,
  INSERT_CASE,
  isoText,
  ORDER,
  SELECT_CASE,
  touchSpecimen,
  whereClause,
} from './postgres-rows.js';
import * as specimens from './postgres-specimens.js';
import { PostgresExportFiles } from './postgres-exports.js';
import { PostgresJobRows, PostgresModelRows } from './postgres-jobs.js';
import { PostgresAccountStore } from './postgres-accounts.js';
import { PostgresRateCounters } from './postgres-rate-counters.js';
import { rowToCase, type CaseRow } from './sqlite-rows.js';
import type {
  AppliedMigration,
  CaseFilter,
  CaseStore,
  NewCase,
  NewSpecimen,
  Review,
  Signoff,
  Specimen,
  SpecimenDeleteOutcome,
  SpecimenFields,
  SpecimenFilter,
  StoredCase,
} from './types.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` (libpq's URL form, as `pg` reads it). */
  url: string;
  /** A local folder for upload temp files (created if missing). */
  tmpDir: string;
  /** Connections in the pool (default 10). */
  maxConnections?: number;
}

/** Attempts of a write that lost a race for shared bytes to a concurrent delete (retryBlobRace). */
const BLOB_RACE_ATTEMPTS = 3;

/**
 * Cases, their review history and their image and heat-map bytes in one PostgreSQL database, through a
 * `pg.Pool`. Nothing that matters is held in the process: any number of replicas can share the database.
 * A case and the bytes it uses commit in one statement, and the foreign keys from cases to blobs keep
 * bytes that any case (on any replica, committed or not) uses, where the SQLite store needs an in-memory
 * guard.
 */
export class PostgresCaseStore extends CaseBlobs implements CaseStore {
  readonly tmpDir: string;
  readonly jobs: PostgresJobRows;
  readonly models: PostgresModelRows;
  readonly accounts: PostgresAccountStore;
  readonly rateCounters: PostgresRateCounters;
  private readonly exportFiles: PostgresExportFiles;
  protected readonly blobs: PostgresBlobStore;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    tmpDir: string,
  ) {
    super();
    this.tmpDir = tmpDir;
    this.blobs = new PostgresBlobStore(pool);
    this.exportFiles = new PostgresExportFiles(pool);
    this.jobs = new PostgresJobRows(pool);
    this.models = new PostgresModelRows(pool);
    this.accounts = new PostgresAccountStore(pool);
    this.rateCounters = new PostgresRateCounters(pool);
  }

  /** Connects, applies pending migrations (under an advisory lock), and clears stale upload temp files. */
  static async open(options: PostgresStoreOptions): Promise<PostgresCaseStore> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      // A database that does not answer fails the request instead of holding it forever.
      connectionTimeoutMillis: 10_000,
    });
    // An idle connection the server drops (restart, failover) is an event, not a crash: the pool replaces it.
    pool.on('error', () => undefined);
    try {
      await migratePostgres(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof HematoError) throw err;
      throw new HematoError(
        `Cannot open the case database at ${redactUrl(options.url)}: ${(err as Error).message}`,
        'database_unavailable',
        500,
      );
    }
    mkdirSync(options.tmpDir, { recursive: true });
    removeStaleTemps(options.tmpDir);
    return new PostgresCaseStore(pool, options.tmpDir);
  }

  async migrations(): Promise<AppliedMigration[]> {
    const { rows } = await this.pool.query<AppliedMigration>(
      `SELECT version, name, ${isoText('applied_at')} AS "appliedAt" FROM schema_migrations ORDER BY version`,
    );
    return rows;
  }

  /**
   * The bytes and the row commit together, in one statement (INSERT_CASE): an acknowledged case is never a
   * row without its image.
   */
  async add(input: NewCase): Promise<StoredCase> {
    const p = input.prediction;
    const params = [
      randomUUID(),
      new Date().toISOString(),
      input.file,
      sha256(input.image),
      input.imageType,
      input.image.length,
      input.width,
      input.height,
      input.heatmapPng ? sha256(input.heatmapPng) : null,
      input.model.name,
      input.model.version,
      input.model.tta === true,
      p.label,
      p.confidence,
      p.needsReview,
      JSON.stringify(p.reviewReasons),
      JSON.stringify(p.probabilities),
      JSON.stringify(p.cells),
      p.message ?? null,
      input.heatmapData ? JSON.stringify(input.heatmapData) : null,
      input.image,
      input.heatmapPng ?? null,
      input.specimenId ?? null,
      input.model.sha256 ?? null,
      input.clinic ?? null,
    ];
    const { rows } = await this.retryBlobRace(() => this.pool.query<CaseRow>(INSERT_CASE, params));
    return rowToCase(rows[0]);
  }

  async get(id: string): Promise<StoredCase | undefined> {
    const { rows } = await this.pool.query<CaseRow>(`${SELECT_CASE} WHERE c.id = $1`, [id]);
    return rows[0] ? rowToCase(rows[0]) : undefined;
  }

  async list(
    filter: CaseFilter & { limit: number; offset: number },
  ): Promise<{ cases: StoredCase[]; total: number }> {
    const { where, params } = whereClause(filter);
    const n = params.length;
    const [count, page] = await Promise.all([
      this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM cases c ${where}`, params),
      this.pool.query<CaseRow>(
        `${SELECT_CASE} ${where} ORDER BY ${ORDER[filter.sort ?? 'newest']} LIMIT $${n + 1} OFFSET $${n + 2}`,
        [...params, filter.limit, filter.offset],
      ),
    ]);
    return { cases: page.rows.map(rowToCase), total: Number(count.rows[0].n) };
  }

  /** The matching ids first (a snapshot, in order), then their rows a page at a time (casesInPages). */
  async *iterate(filter: CaseFilter = {}): AsyncIterable<StoredCase> {
    const { where, params } = whereClause(filter);
    const ids = (
      await this.pool.query<{ id: string }>(
        `SELECT c.id FROM cases c ${where} ORDER BY ${ORDER[filter.sort ?? 'newest']}`,
        params,
      )
    ).rows.map((r) => r.id);
    yield* casesInPages(
      ids,
      async (page) => (await this.pool.query<CaseRow>(`${SELECT_CASE} WHERE c.id = ANY($1)`, [page])).rows,
    );
  }

  async probabilityClasses(): Promise<string[]> {
    // Byte order, as SQLite sorts: the server's collation must not reorder CSV columns.
    const { rows } = await this.pool.query<{ k: string }>(
      'SELECT DISTINCT j.k COLLATE "C" AS k FROM cases, json_object_keys(cases.probabilities) AS j(k) ORDER BY 1',
    );
    return rows.map((r) => r.k);
  }

  async addReview(
    id: string,
    review: { label: string; reviewer: string; note?: string; cell?: number },
  ): Promise<StoredCase | undefined> {
    const { rowCount } = await this.pool.query(ADD_REVIEW, [
      review.label,
      review.reviewer,
      review.note ?? '',
      new Date().toISOString(),
      id,
      review.cell ?? 0,
    ]);
    return rowCount ? this.get(id) : undefined;
  }

  async reviews(id: string): Promise<(Review & { cell: number })[]> {
    const { rows } = await this.pool.query<Review & { cell: number }>(
      `SELECT label, reviewer, note, ${isoText('reviewed_at')} AS "reviewedAt", cell_index AS cell
       FROM reviews WHERE case_id = $1 ORDER BY id`,
      [id],
    );
    return rows;
  }

  async addSpecimen(input: NewSpecimen): Promise<Specimen | undefined> {
    return specimens.addSpecimen(this.pool, input);
  }

  async getSpecimen(id: string): Promise<Specimen | undefined> {
    return specimens.getSpecimen(this.pool, id);
  }

  async listSpecimens(filter: SpecimenFilter): Promise<{ specimens: Specimen[]; total: number }> {
    return specimens.listSpecimens(this.pool, filter);
  }

  async updateSpecimen(id: string, fields: SpecimenFields): Promise<Specimen | undefined> {
    return specimens.updateSpecimen(this.pool, id, fields);
  }

  async softDeleteSpecimen(
    id: string,
    by: { actor: string; reason: string },
  ): Promise<SpecimenDeleteOutcome> {
    return specimens.softDeleteSpecimen(this.pool, id, by);
  }

  async restoreSpecimen(id: string): Promise<boolean> {
    return specimens.restoreSpecimen(this.pool, id);
  }

  async signoffs(specimenId: string): Promise<Signoff[]> {
    return specimens.signoffs(this.pool, specimenId);
  }

  async addSignoff(specimenId: string, signoff: Signoff & { pdf: Buffer }): Promise<boolean> {
    return specimens.addSignoff(this.pool, specimenId, signoff);
  }

  async readSignedReport(specimenId: string, revision: number): Promise<Buffer | null> {
    return specimens.readSignedReport(this.pool, specimenId, revision);
  }

  async softDelete(id: string, by: { actor: string; reason: string }): Promise<boolean> {
    return this.changeCase(
      'deleted_at = $2, deleted_by = $3, delete_reason = $4 WHERE id = $1 AND deleted_at IS NULL',
      [id, new Date().toISOString(), by.actor, by.reason],
    );
  }

  async restore(id: string): Promise<boolean> {
    return this.changeCase(
      'deleted_at = NULL, deleted_by = NULL, delete_reason = NULL WHERE id = $1 AND deleted_at IS NOT NULL',
      [id],
    );
  }

  /** An UPDATE of case $1 (`SET …` given) and its specimen's new version, in one statement. */
  private async changeCase(set: string, params: unknown[]): Promise<boolean> {
    const { rows } = await this.pool.query(
      `WITH u AS (UPDATE cases SET ${set} RETURNING specimen_id),
         touched AS (${touchSpecimen('(SELECT specimen_id FROM u)', 'now()')})
       SELECT 1 FROM u`,
      params,
    );
    return rows.length > 0;
  }

  /** Removes the case (its reviews cascade; its specimen's version grows), then its bytes unless another case uses them. */
  async delete(id: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ image_sha256: string; heatmap_sha256: string | null }>(
      `WITH d AS (DELETE FROM cases WHERE id = $1 RETURNING image_sha256, heatmap_sha256, specimen_id),
         touched AS (${touchSpecimen('(SELECT specimen_id FROM d)', '$2')})
       SELECT image_sha256, heatmap_sha256 FROM d`,
      [id, new Date().toISOString()],
    );
    if (rows.length === 0) return false;
    await this.removeIfUnused('image', rows[0].image_sha256);
    if (rows[0].heatmap_sha256) await this.removeIfUnused('heatmap', rows[0].heatmap_sha256);
    return true;
  }

  putExportFile(jobId: string, owner: string, bytes: Buffer): Promise<string> {
    return this.exportFiles.put(jobId, owner, bytes);
  }

  async sweepExports(kinds: string[], finishedBefore: Date): Promise<{ jobs: number; files: number }> {
    return this.exportFiles.sweep(kinds, finishedBefore);
  }

  async readHeatmapData(id: string): Promise<HeatmapData | null> {
    // json columns arrive parsed (pg's type parser).
    const { rows } = await this.pool.query<{ heatmap_data: HeatmapData | null }>(
      'SELECT heatmap_data FROM cases WHERE id = $1',
      [id],
    );
    return rows[0]?.heatmap_data ?? null;
  }

  /**
   * Stores a drawn heat map and points the case at it, in one statement. The first one attached wins
   * (also across replicas: the UPDATE's row lock orders them); a losing render's bytes are removed again
   * unless a case uses them. Undefined if the case was deleted meanwhile.
   */
  async attachHeatmap(id: string, png: Buffer): Promise<StoredCase | undefined> {
    const sha = sha256(png);
    const { rowCount } = await this.retryBlobRace(() => this.pool.query(ATTACH_HEATMAP, [sha, id, png]));
    if (!rowCount) await this.removeIfUnused('heatmap', sha);
    return this.get(id);
  }

  /**
   * Rejects when the database cannot take a write now (a standby after failover, a read-only session);
   * writes nothing. For a readiness check (GET /ready).
   */
  async checkWritable(): Promise<void> {
    const { rows } = await this.pool.query<{ standby: boolean; readOnly: string }>(
      `SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS "readOnly"`,
    );
    if (rows[0].standby || rows[0].readOnly === 'on') {
      throw new HematoError('The case database is read-only (a standby?).', 'database_read_only', 503);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /**
   * A foreign-key failure on cases means a concurrent delete removed shared bytes between our
   * `INSERT … ON CONFLICT DO NOTHING` (which found them) and the check of our row (which references them):
   * the statement failed whole, and is run again, storing the bytes again.
   */
  private async retryBlobRace<T>(statement: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await statement();
      } catch (err) {
        // A missing specimen is no race: only the foreign keys to blobs are.
        const specimen = (err as { constraint?: string }).constraint === 'cases_specimen_id_fkey';
        if (attempt >= BLOB_RACE_ATTEMPTS || specimen || !isForeignKeyViolation(err, 'cases')) throw err;
      }
    }
  }

  /** The caller's check is only a hint; the foreign keys decide (PostgresBlobStore.remove). */
  private async removeIfUnused(kind: BlobKind, sha: string): Promise<void> {
    const { rows } = await this.pool.query<{ used: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM cases WHERE image_sha256 = $1)
           OR EXISTS (SELECT 1 FROM cases WHERE heatmap_sha256 = $1) AS used`,
      [sha],
    );
    if (!rows[0].used) await this.blobs.remove(kind, sha);
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}
