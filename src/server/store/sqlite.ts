import { randomUUID } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { HeatmapData } from '../../pipeline.js';
import { CaseBlobs, FolderBlobStore, sha256, type BlobKind } from './blobs.js';
import { checkIntegrity, migrate } from './migrations.js';
import { SqliteExportFiles } from './sqlite-exports.js';
import { SqliteJobRows, SqliteModelRows } from './sqlite-jobs.js';
import { SqliteAccountStore } from './sqlite-accounts.js';
import { casesInPages } from './case-pages.js';
import {
  INSERT_CASE,
  ORDER,
  rowToCase,
  RESTORE,
  SELECT_CASE,
  SOFT_DELETE,
  TOUCH_SPECIMEN,
  whereClause,
  type CaseRow,
} from './sqlite-rows.js';
import { SqliteSpecimens } from './sqlite-specimens.js';
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

/**
 * Cases in SQLite (WAL, synchronous=FULL) and their image and heat-map bytes in a content-addressed folder
 * (blobs.ts): identical bytes are stored once.
 * A case keeps the heat map of the model that made it: its class activation maps are stored with the row and
 * the PNG rendered from them is stored on first use (older cases have only the PNG), never recomputed.
 * One process per data folder: the guard that keeps a blob a concurrent insert still needs is in memory.
 */
export class SqliteCaseStore extends CaseBlobs implements CaseStore {
  readonly dataDir: string;
  /** Same file system as the blobs, so a rename into place is atomic. */
  readonly tmpDir: string;
  readonly jobs: SqliteJobRows;
  readonly models: SqliteModelRows;
  readonly accounts: SqliteAccountStore;
  private readonly db: Database.Database;
  private readonly exportFiles: SqliteExportFiles;
  protected readonly blobs: FolderBlobStore;
  private readonly specimens: SqliteSpecimens;
  /** sha256 → inserts in flight that will reference it; delete must not remove those files. */
  private readonly pending = new Map<string, number>();
  private readonly statements = new Map<string, Database.Statement>();
  /** Rows waiting for the next group commit. */
  private readonly inserts: { row: Record<string, unknown>; done: () => void; fail: (e: unknown) => void }[] =
    [];

  private constructor(blobs: FolderBlobStore, db: Database.Database) {
    super();
    this.dataDir = blobs.dataDir;
    this.tmpDir = blobs.tmpDir;
    this.blobs = blobs;
    this.exportFiles = new SqliteExportFiles(db, blobs);
    this.db = db;
    this.jobs = new SqliteJobRows(db);
    this.models = new SqliteModelRows(db);
    this.accounts = new SqliteAccountStore(db);
    this.specimens = new SqliteSpecimens(db, (sql) => this.stmt(sql));
  }

  /** Opens (creating if needed) the store in dataDir and applies pending migrations in one transaction. */
  static open(dataDir: string): SqliteCaseStore {
    const blobs = new FolderBlobStore(dataDir);
    const dbPath = join(dataDir, 'hematovision.db');
    const db = new Database(dbPath);
    try {
      // Before the WAL exists: SQLite gives its -wal and -shm files the database file's mode.
      chmodSync(dbPath, 0o640);
      checkIntegrity(db, dbPath);
      db.pragma('journal_mode = WAL');
      // FULL: a committed case survives power loss, not only a crash of the process.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    blobs.removeStaleTemps();
    return new SqliteCaseStore(blobs, db);
  }

  async migrations(): Promise<AppliedMigration[]> {
    return this.db
      .prepare('SELECT version, name, applied_at AS appliedAt FROM schema_migrations ORDER BY version')
      .all() as AppliedMigration[];
  }

  imagePath(sha: string): string {
    return this.blobs.path('image', sha);
  }

  heatmapPath(sha: string): string {
    return this.blobs.path('heatmap', sha);
  }

  /**
   * Stores the image (and heat map) durably, then inserts the row; resolves only once both are on disk, so
   * an acknowledged case is never a row without its image.
   */
  async add(input: NewCase): Promise<StoredCase> {
    const imageSha = sha256(input.image);
    const heatmapSha = input.heatmapPng ? sha256(input.heatmapPng) : null;
    this.hold(imageSha);
    if (heatmapSha) this.hold(heatmapSha);
    try {
      await this.blobs.put('image', imageSha, input.image);
      if (heatmapSha && input.heatmapPng) await this.blobs.put('heatmap', heatmapSha, input.heatmapPng);
      const id = randomUUID();
      const p = input.prediction;
      await this.insertCase({
        id,
        createdAt: new Date().toISOString(),
        file: input.file,
        imageSha,
        imageType: input.imageType,
        imageBytes: input.image.length,
        width: input.width,
        height: input.height,
        heatmapSha,
        modelName: input.model.name,
        modelVersion: input.model.version,
        modelSha256: input.model.sha256 ?? null,
        tta: input.model.tta ? 1 : 0,
        label: p.label,
        confidence: p.confidence,
        needsReview: p.needsReview ? 1 : 0,
        reviewReasons: JSON.stringify(p.reviewReasons),
        probabilities: JSON.stringify(p.probabilities),
        cells: JSON.stringify(p.cells),
        message: p.message ?? null,
        heatmapData: input.heatmapData ? JSON.stringify(input.heatmapData) : null,
        specimenId: input.specimenId ?? null,
        clinic: input.clinic ?? null,
      });
      return this.getNow(id) as StoredCase;
    } finally {
      this.release(imageSha);
      if (heatmapSha) this.release(heatmapSha);
    }
  }

  async get(id: string): Promise<StoredCase | undefined> {
    return this.getNow(id);
  }

  private getNow(id: string): StoredCase | undefined {
    const row = this.stmt(`${SELECT_CASE} WHERE c.id = ?`).get(id) as CaseRow | undefined;
    return row ? rowToCase(row) : undefined;
  }

  /** Newest first. */
  async list(
    filter: CaseFilter & { limit: number; offset: number },
  ): Promise<{ cases: StoredCase[]; total: number }> {
    const { where, params } = whereClause(filter);
    const total = (this.db.prepare(`SELECT count(*) AS n FROM cases c ${where}`).get(params) as { n: number })
      .n;
    const rows = this.db
      .prepare(
        `${SELECT_CASE} ${where} ORDER BY ${ORDER[filter.sort ?? 'newest']} LIMIT @limit OFFSET @offset`,
      )
      .all({ ...params, limit: filter.limit, offset: filter.offset }) as CaseRow[];
    return { cases: rows.map(rowToCase), total };
  }

  /** The matching ids first (a snapshot, in order), then their rows a page at a time (casesInPages). */
  async *iterate(filter: CaseFilter = {}): AsyncIterable<StoredCase> {
    const { where, params } = whereClause(filter);
    const ids = this.db
      .prepare(`SELECT c.id FROM cases c ${where} ORDER BY ${ORDER[filter.sort ?? 'newest']}`)
      .pluck()
      .all(params) as string[];
    yield* casesInPages(
      ids,
      (page) =>
        this.db
          .prepare(`${SELECT_CASE} WHERE c.id IN (${page.map(() => '?').join(',')})`)
          .all(...page) as CaseRow[],
    );
  }

  async probabilityClasses(): Promise<string[]> {
    const rows = this.db
      .prepare('SELECT DISTINCT j.key AS k FROM cases, json_each(cases.probabilities) j ORDER BY k')
      .all() as { k: string }[];
    return rows.map((r) => r.k);
  }

  async addReview(
    id: string,
    review: { label: string; reviewer: string; note?: string; cell?: number },
  ): Promise<StoredCase | undefined> {
    const now = new Date().toISOString();
    const changes = this.db.transaction(() => {
      const info = this.stmt(
        `INSERT INTO reviews (case_id, label, reviewer, note, reviewed_at, cell_index)
         SELECT id, ?, ?, ?, ?, ? FROM cases WHERE id = ?`,
      ).run(review.label, review.reviewer, review.note ?? '', now, review.cell ?? 0, id);
      if (info.changes > 0) this.touchSpecimenOf(id, now);
      return info.changes;
    })();
    return changes === 0 ? undefined : this.getNow(id);
  }

  async reviews(id: string): Promise<(Review & { cell: number })[]> {
    return this.db
      .prepare(
        `SELECT label, reviewer, note, reviewed_at AS reviewedAt, cell_index AS cell
         FROM reviews WHERE case_id = ? ORDER BY id`,
      )
      .all(id) as (Review & { cell: number })[];
  }

  async addSpecimen(input: NewSpecimen): Promise<Specimen | undefined> {
    return this.specimens.add(input);
  }

  async getSpecimen(id: string): Promise<Specimen | undefined> {
    return this.specimens.get(id);
  }

  async listSpecimens(filter: SpecimenFilter): Promise<{ specimens: Specimen[]; total: number }> {
    return this.specimens.list(filter);
  }

  async updateSpecimen(id: string, fields: SpecimenFields): Promise<Specimen | undefined> {
    return this.specimens.update(id, fields);
  }

  async softDeleteSpecimen(
    id: string,
    by: { actor: string; reason: string },
  ): Promise<SpecimenDeleteOutcome> {
    return this.specimens.softDelete(id, by);
  }

  async restoreSpecimen(id: string): Promise<boolean> {
    return this.specimens.restore(id);
  }

  async signoffs(specimenId: string): Promise<Signoff[]> {
    return this.specimens.signoffs(specimenId);
  }

  async addSignoff(specimenId: string, signoff: Signoff & { pdf: Buffer }): Promise<boolean> {
    return this.specimens.addSignoff(specimenId, signoff);
  }

  async readSignedReport(specimenId: string, revision: number): Promise<Buffer | null> {
    return this.specimens.readSignedReport(specimenId, revision);
  }

  private touchSpecimenOf(caseId: string, now: string): void {
    const sid = this.stmt('SELECT specimen_id FROM cases WHERE id = ?').pluck().get(caseId) as
      string | null | undefined;
    if (sid) this.stmt(TOUCH_SPECIMEN).run({ specimenId: sid, now });
  }

  async softDelete(id: string, by: { actor: string; reason: string }): Promise<boolean> {
    return this.changeCase(id, SOFT_DELETE, { ...by, id });
  }

  async restore(id: string): Promise<boolean> {
    return this.changeCase(id, RESTORE, { id });
  }

  private changeCase(id: string, sql: string, params: Record<string, unknown>): boolean {
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      const changed = this.stmt(sql).run({ ...params, now }).changes > 0;
      if (changed) this.touchSpecimenOf(id, now);
      return changed;
    })();
  }

  /**
   * Removes the case (and its review history); removes its image and heat map files only when no other case
   * references the same bytes. No await inside on purpose: nothing runs between the reference check and the
   * unlink.
   */
  async delete(id: string): Promise<boolean> {
    const found = this.db.transaction(() => {
      const row = this.db.prepare('SELECT image_sha256, heatmap_sha256 FROM cases WHERE id = ?').get(id) as
        { image_sha256: string; heatmap_sha256: string | null } | undefined;
      if (!row) return undefined;
      this.touchSpecimenOf(id, new Date().toISOString());
      this.db.prepare('DELETE FROM cases WHERE id = ?').run(id);
      const imageRefs = this.db
        .prepare('SELECT count(*) AS n FROM cases WHERE image_sha256 = ?')
        .get(row.image_sha256) as { n: number };
      const heatmapRefs = row.heatmap_sha256
        ? (this.db
            .prepare('SELECT count(*) AS n FROM cases WHERE heatmap_sha256 = ?')
            .get(row.heatmap_sha256) as {
            n: number;
          })
        : { n: 1 };
      return {
        image: imageRefs.n === 0 ? row.image_sha256 : null,
        heatmap: heatmapRefs.n === 0 ? row.heatmap_sha256 : null,
      };
    })();
    if (!found) return false;
    if (found.image) this.removeUnheld('image', found.image);
    if (found.heatmap) this.removeUnheld('heatmap', found.heatmap);
    return true;
  }

  putExportFile(jobId: string, owner: string, bytes: Buffer): Promise<string> {
    return this.exportFiles.put(jobId, owner, bytes);
  }

  async sweepExports(kinds: string[], finishedBefore: Date): Promise<{ jobs: number; files: number }> {
    return this.exportFiles.sweep(kinds, finishedBefore);
  }

  async readHeatmapData(id: string): Promise<HeatmapData | null> {
    const row = this.stmt('SELECT heatmap_data FROM cases WHERE id = ?').get(id) as
      { heatmap_data: string | null } | undefined;
    return row?.heatmap_data ? (JSON.parse(row.heatmap_data) as HeatmapData) : null;
  }

  /**
   * Stores a heat map rendered after the case was created (durably, content-addressed) and points the case
   * at it. The first one attached wins: a concurrent render of the same case finds the row taken and its
   * file, if no case uses it, is removed again. Returns the case, or undefined if it was deleted meanwhile.
   */
  async attachHeatmap(id: string, png: Buffer): Promise<StoredCase | undefined> {
    const sha = sha256(png);
    this.hold(sha);
    try {
      await this.blobs.put('heatmap', sha, png);
      const unused = this.db.transaction(() => {
        const { changes } = this.stmt(
          'UPDATE cases SET heatmap_sha256 = ? WHERE id = ? AND heatmap_sha256 IS NULL',
        ).run(sha, id);
        if (changes > 0) return false;
        const refs = this.stmt('SELECT count(*) AS n FROM cases WHERE heatmap_sha256 = ?').get(sha) as {
          n: number;
        };
        return refs.n === 0;
      })();
      // Only our own hold left on it: nobody else is about to reference this file.
      if (unused && this.pending.get(sha) === 1) this.blobs.removeNow('heatmap', sha);
      return this.getNow(id);
    } finally {
      this.release(sha);
    }
  }

  /** Takes the database's write lock and lets it go (nothing written): throws when it cannot be written. */
  async checkWritable(): Promise<void> {
    if (this.db.readonly) throw new Error('The case database is open read-only.');
    this.db.exec('BEGIN IMMEDIATE');
    this.db.exec('ROLLBACK');
  }

  async close(): Promise<void> {
    this.closeNow();
  }

  /** Synchronous, for a failed start-up that must not leave the file open. */
  closeNow(): void {
    if (!this.db.open) return;
    this.commitInserts();
    this.db.close();
  }

  /** Prepared once: compiling the SQL again on every request is measurable at 100 requests/s. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * Resolves once the row is committed. Rows that become ready in the same turn of the event loop share one
   * transaction: with synchronous=FULL each commit is an fsync that blocks the event loop, so concurrent
   * predicts pay for one instead of one each, and each is still acknowledged only after it is durable.
   */
  private insertCase(row: Record<string, unknown>): Promise<void> {
    return new Promise((done, fail) => {
      if (this.inserts.push({ row, done, fail }) === 1) setImmediate(() => this.commitInserts());
    });
  }

  private commitInserts(): void {
    const batch = this.inserts.splice(0);
    if (batch.length === 0) return;
    try {
      this.db.transaction(() => {
        for (const b of batch) this.insertRow(b.row);
      })();
    } catch {
      // One bad row must not fail the others: each alone, in its own transaction.
      for (const b of batch) {
        try {
          this.db.transaction(() => this.insertRow(b.row))();
          b.done();
        } catch (err) {
          b.fail(err);
        }
      }
      return;
    }
    for (const b of batch) b.done();
  }

  private insertRow(row: Record<string, unknown>): void {
    this.stmt(INSERT_CASE).run(row);
    if (row.specimenId) this.stmt(TOUCH_SPECIMEN).run({ specimenId: row.specimenId, now: row.createdAt });
  }

  private hold(sha: string): void {
    this.pending.set(sha, (this.pending.get(sha) ?? 0) + 1);
  }

  private release(sha: string): void {
    const n = (this.pending.get(sha) ?? 1) - 1;
    if (n <= 0) this.pending.delete(sha);
    else this.pending.set(sha, n);
  }

  /** A concurrent insert about to reference the bytes keeps them. */
  private removeUnheld(kind: BlobKind, sha: string): void {
    if (!this.pending.has(sha)) this.blobs.removeNow(kind, sha);
  }
}
