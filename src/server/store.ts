import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { HematoError } from '../errors.js';
import {
  orderReasons,
  type CellPrediction,
  type ImagePrediction,
  type ReviewReason,
} from '../model/types.js';
import type { HeatmapData } from '../pipeline.js';

/** A reviewer's verdict, kept beside the model's prediction (never over it). */
export interface Review {
  label: string;
  reviewer: string;
  note: string;
  reviewedAt: string;
}

/** One analysed image as stored. */
export interface StoredCase {
  id: string;
  file: string;
  createdAt: string;
  imageSha256: string;
  imageType: string;
  imageBytes: number;
  width: number;
  height: number;
  /** A rendered heat map stored on disk (at predict time by older versions, or on first request). */
  heatmapSha256: string | null;
  /** The class activation maps are stored (readHeatmapData): a heat map can be rendered on demand. */
  hasHeatmapData: boolean;
  model: CaseModel;
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  /** Why it needs review (model/types.ts REVIEW_REASONS); empty when it does not. */
  reviewReasons: ReviewReason[];
  cells: CellPrediction[];
  message: string | null;
  /** The latest review, or null when nobody has reviewed the case. */
  review: Review | null;
}

/** The model that analysed a case, and whether it averaged each cell's 8 flips and turns (tta). */
export interface CaseModel {
  name: string;
  version: string;
  tta: boolean;
}

export interface NewCase {
  file: string;
  image: Buffer;
  imageType: string;
  width: number;
  height: number;
  model: CaseModel;
  prediction: ImagePrediction;
  /** A heat map rendered already. */
  heatmapPng?: Buffer;
  /** The maps to render one from later (`attachHeatmap` stores the result). */
  heatmapData?: HeatmapData;
}

export interface CaseFilter {
  /** The model's predicted label (not the review label). */
  label?: string;
  /** true: reviewed at least once; false: never reviewed. */
  reviewed?: boolean;
  /** true: the image or any of its cells needs review (older rows: read from their cells too). */
  needsReview?: boolean;
  /** Part of the file name, any case. */
  file?: string;
  sort?: CaseSort;
}

export type CaseSort = 'newest' | 'oldest' | 'least-confident' | 'most-confident';

const ORDER: Record<CaseSort, string> = {
  newest: 'c.created_at DESC, c.rowid DESC',
  oldest: 'c.created_at ASC, c.rowid ASC',
  'least-confident': 'c.confidence ASC, c.created_at DESC, c.rowid DESC',
  'most-confident': 'c.confidence DESC, c.created_at DESC, c.rowid DESC',
};

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Append only: never edit or remove a shipped migration, only add the next number, so that opening an
 * existing database never loses data.
 */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'cases and review history',
    sql: `
      CREATE TABLE cases (
        id             TEXT PRIMARY KEY,
        created_at     TEXT NOT NULL,
        file_name      TEXT NOT NULL,
        image_sha256   TEXT NOT NULL,
        image_type     TEXT NOT NULL,
        image_bytes    INTEGER NOT NULL,
        width          INTEGER NOT NULL,
        height         INTEGER NOT NULL,
        heatmap_sha256 TEXT,
        model_name     TEXT NOT NULL,
        model_version  TEXT NOT NULL,
        label          TEXT,
        confidence     REAL NOT NULL,
        needs_review   INTEGER NOT NULL CHECK (needs_review IN (0, 1)),
        probabilities  TEXT NOT NULL,
        cells          TEXT NOT NULL,
        message        TEXT
      ) STRICT;
      CREATE INDEX cases_created ON cases (created_at DESC, id);
      CREATE INDEX cases_label ON cases (label);
      CREATE INDEX cases_image ON cases (image_sha256);
      CREATE INDEX cases_heatmap ON cases (heatmap_sha256);
      CREATE TABLE reviews (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id     TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        reviewer    TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT '',
        reviewed_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX reviews_case ON reviews (case_id, id);
    `,
  },
  {
    version: 2,
    // Heat maps are rendered on first request from these maps instead of at predict time.
    name: 'heat-map data for rendering on demand',
    sql: `ALTER TABLE cases ADD COLUMN heatmap_data TEXT;`,
  },
  {
    version: 3,
    // Cases analysed before it were all one view per cell.
    name: 'test-time augmentation flag per case',
    sql: `ALTER TABLE cases ADD COLUMN tta INTEGER NOT NULL DEFAULT 0 CHECK (tta IN (0, 1));`,
  },
  {
    version: 4,
    // A JSON array of review reasons; NULL for cases stored before, whose reasons are derived on read.
    name: 'review reasons per case',
    sql: `ALTER TABLE cases ADD COLUMN review_reasons TEXT;`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

interface CaseRow {
  id: string;
  created_at: string;
  file_name: string;
  image_sha256: string;
  image_type: string;
  image_bytes: number;
  width: number;
  height: number;
  heatmap_sha256: string | null;
  model_name: string;
  model_version: string;
  tta: number;
  label: string | null;
  confidence: number;
  needs_review: number;
  review_reasons: string | null;
  probabilities: string;
  cells: string;
  message: string | null;
  has_heatmap_data: number;
  review_label: string | null;
  reviewer: string | null;
  review_note: string | null;
  reviewed_at: string | null;
}

// The latest review per case is the one with the highest id (ids only grow: AUTOINCREMENT). The heat-map
// data itself is read only when a heat map is rendered (readHeatmapData).
const SELECT_CASE = `
  SELECT c.id, c.created_at, c.file_name, c.image_sha256, c.image_type, c.image_bytes, c.width, c.height,
    c.heatmap_sha256, c.model_name, c.model_version, c.tta, c.label, c.confidence, c.needs_review,
    c.review_reasons, c.probabilities, c.cells, c.message, c.heatmap_data IS NOT NULL AS has_heatmap_data,
    r.label AS review_label, r.reviewer AS reviewer, r.note AS review_note, r.reviewed_at AS reviewed_at
  FROM cases c
  LEFT JOIN reviews r ON r.id = (SELECT max(id) FROM reviews WHERE case_id = c.id)`;

const INSERT_CASE = `
  INSERT INTO cases (id, created_at, file_name, image_sha256, image_type, image_bytes, width, height,
    heatmap_sha256, model_name, model_version, tta, label, confidence, needs_review, review_reasons,
    probabilities, cells, message, heatmap_data)
  VALUES (@id, @createdAt, @file, @imageSha, @imageType, @imageBytes, @width, @height, @heatmapSha,
    @modelName, @modelVersion, @tta, @label, @confidence, @needsReview, @reviewReasons, @probabilities,
    @cells, @message, @heatmapData)`;

const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * A case's review flag, reasons and cells. Cases stored before reasons existed were flagged for low
 * confidence (or no cell) only, and their image flag ignored the other cells: both are derived again here,
 * so an old field whose second cell was doubtful now shows as needing review too.
 */
function reviewOf(row: CaseRow): Pick<StoredCase, 'needsReview' | 'reviewReasons' | 'cells'> {
  const stored = JSON.parse(row.cells) as (Omit<CellPrediction, 'reviewReasons'> & {
    reviewReasons?: ReviewReason[];
  })[];
  const cells: CellPrediction[] = stored.map((c) => ({
    ...c,
    reviewReasons: c.reviewReasons ?? (c.needsReview ? ['low_confidence'] : []),
  }));
  if (row.review_reasons !== null) {
    const reviewReasons = JSON.parse(row.review_reasons) as ReviewReason[];
    return { needsReview: row.needs_review === 1, reviewReasons, cells };
  }
  const own: ReviewReason[] =
    row.needs_review === 1 ? [row.label === null ? 'no_cell' : 'low_confidence'] : [];
  const reviewReasons = orderReasons([...own, ...cells.flatMap((c) => c.reviewReasons)]);
  return { needsReview: reviewReasons.length > 0, reviewReasons, cells };
}

function rowToCase(row: CaseRow): StoredCase {
  return {
    id: row.id,
    file: row.file_name,
    createdAt: row.created_at,
    imageSha256: row.image_sha256,
    imageType: row.image_type,
    imageBytes: row.image_bytes,
    width: row.width,
    height: row.height,
    heatmapSha256: row.heatmap_sha256,
    hasHeatmapData: row.has_heatmap_data === 1,
    model: { name: row.model_name, version: row.model_version, tta: row.tta === 1 },
    label: row.label,
    confidence: row.confidence,
    probabilities: JSON.parse(row.probabilities) as Record<string, number>,
    ...reviewOf(row),
    message: row.message,
    review:
      row.review_label === null
        ? null
        : {
            label: row.review_label,
            reviewer: row.reviewer ?? '',
            note: row.review_note ?? '',
            reviewedAt: row.reviewed_at ?? '',
          },
  };
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Cases in SQLite (WAL, synchronous=FULL) and their image and heat-map bytes on disk, content-addressed under
 * `<dataDir>/images/<sha256[0..2]>/<sha256>` and `<dataDir>/heatmaps/...`: identical bytes are stored once.
 * A case keeps the heat map of the model that made it: its class activation maps are stored with the row and
 * the PNG rendered from them is stored on first use (older cases have only the PNG), never recomputed.
 * One process per data folder: the guard that keeps a blob a concurrent insert still needs is in memory.
 */
export class CaseStore {
  readonly dataDir: string;
  /** Same file system as the blobs, so a rename into place is atomic. */
  readonly tmpDir: string;
  private readonly db: Database.Database;
  /** sha256 → inserts in flight that will reference it; delete must not remove those files. */
  private readonly pending = new Map<string, number>();
  private readonly statements = new Map<string, Database.Statement>();
  /** Rows waiting for the next group commit. */
  private readonly inserts: { row: Record<string, unknown>; done: () => void; fail: (e: unknown) => void }[] =
    [];

  private constructor(dataDir: string, db: Database.Database) {
    this.dataDir = dataDir;
    this.tmpDir = join(dataDir, 'tmp');
    this.db = db;
  }

  /** Opens (creating if needed) the store in dataDir and applies pending migrations in one transaction. */
  static open(dataDir: string): CaseStore {
    mkdirSync(dataDir, { recursive: true });
    for (const sub of ['images', 'heatmaps', 'tmp']) mkdirSync(join(dataDir, sub), { recursive: true });
    const db = new Database(join(dataDir, 'hematovision.db'));
    try {
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
    const store = new CaseStore(dataDir, db);
    store.removeStaleTemps();
    return store;
  }

  /** Applied migrations, oldest first. */
  migrations(): { version: number; name: string; appliedAt: string }[] {
    return this.db
      .prepare('SELECT version, name, applied_at AS appliedAt FROM schema_migrations ORDER BY version')
      .all() as { version: number; name: string; appliedAt: string }[];
  }

  imagePath(sha: string): string {
    return join(this.dataDir, 'images', sha.slice(0, 2), sha);
  }

  heatmapPath(sha: string): string {
    return join(this.dataDir, 'heatmaps', sha.slice(0, 2), sha);
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
      await this.writeBlob(this.imagePath(imageSha), input.image);
      if (heatmapSha && input.heatmapPng)
        await this.writeBlob(this.heatmapPath(heatmapSha), input.heatmapPng);
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
        tta: input.model.tta ? 1 : 0,
        label: p.label,
        confidence: p.confidence,
        needsReview: p.needsReview ? 1 : 0,
        reviewReasons: JSON.stringify(p.reviewReasons),
        probabilities: JSON.stringify(p.probabilities),
        cells: JSON.stringify(p.cells),
        message: p.message ?? null,
        heatmapData: input.heatmapData ? JSON.stringify(input.heatmapData) : null,
      });
      return this.get(id) as StoredCase;
    } finally {
      this.release(imageSha);
      if (heatmapSha) this.release(heatmapSha);
    }
  }

  get(id: string): StoredCase | undefined {
    const row = this.stmt(`${SELECT_CASE} WHERE c.id = ?`).get(id) as CaseRow | undefined;
    return row ? rowToCase(row) : undefined;
  }

  /** Newest first. */
  list(filter: CaseFilter & { limit: number; offset: number }): { cases: StoredCase[]; total: number } {
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

  /** Every matching case, newest first, without loading them all at once. */
  *iterate(filter: CaseFilter = {}): IterableIterator<StoredCase> {
    const { where, params } = whereClause(filter);
    const stmt = this.db.prepare(`${SELECT_CASE} ${where} ORDER BY ${ORDER[filter.sort ?? 'newest']}`);
    for (const row of stmt.iterate(params) as IterableIterator<CaseRow>) yield rowToCase(row);
  }

  /** Class names seen in stored probabilities, for CSV columns of cases made by other model versions. */
  probabilityClasses(): string[] {
    const rows = this.db
      .prepare('SELECT DISTINCT j.key AS k FROM cases, json_each(cases.probabilities) j ORDER BY k')
      .all() as { k: string }[];
    return rows.map((r) => r.k);
  }

  /** Appends a review to the case's history; returns the updated case, or undefined if there is no such case. */
  addReview(id: string, review: { label: string; reviewer: string; note?: string }): StoredCase | undefined {
    const info = this.db
      .prepare(
        `INSERT INTO reviews (case_id, label, reviewer, note, reviewed_at)
         SELECT id, ?, ?, ?, ? FROM cases WHERE id = ?`,
      )
      .run(review.label, review.reviewer, review.note ?? '', new Date().toISOString(), id);
    return info.changes === 0 ? undefined : this.get(id);
  }

  /** Every review of a case, oldest first. */
  reviews(id: string): Review[] {
    return this.db
      .prepare(
        `SELECT label, reviewer, note, reviewed_at AS reviewedAt FROM reviews WHERE case_id = ? ORDER BY id`,
      )
      .all(id) as Review[];
  }

  /**
   * Removes the case (and its review history); removes its image and heat map files only when no other case
   * references the same bytes. Synchronous on purpose: no await between the reference check and the unlink.
   */
  delete(id: string): boolean {
    const found = this.db.transaction(() => {
      const row = this.db.prepare('SELECT image_sha256, heatmap_sha256 FROM cases WHERE id = ?').get(id) as
        { image_sha256: string; heatmap_sha256: string | null } | undefined;
      if (!row) return undefined;
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
    if (found.image && !this.pending.has(found.image)) unlinkQuietly(this.imagePath(found.image));
    if (found.heatmap && !this.pending.has(found.heatmap)) unlinkQuietly(this.heatmapPath(found.heatmap));
    return true;
  }

  async readImage(c: StoredCase): Promise<Buffer> {
    return readBlob(this.imagePath(c.imageSha256), `image of case ${c.id}`);
  }

  async readHeatmap(c: StoredCase): Promise<Buffer | null> {
    return c.heatmapSha256 ? readBlob(this.heatmapPath(c.heatmapSha256), `heat map of case ${c.id}`) : null;
  }

  /** The maps stored at predict time, to render the case's heat map from; null when there are none. */
  readHeatmapData(id: string): HeatmapData | null {
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
      await this.writeBlob(this.heatmapPath(sha), png);
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
      if (unused && this.pending.get(sha) === 1) unlinkQuietly(this.heatmapPath(sha));
      return this.get(id);
    } finally {
      this.release(sha);
    }
  }

  close(): void {
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
      const insert = this.stmt(INSERT_CASE);
      this.db.transaction(() => {
        for (const b of batch) insert.run(b.row);
      })();
    } catch {
      // One bad row must not fail the others: each alone, in its own transaction.
      for (const b of batch) {
        try {
          this.stmt(INSERT_CASE).run(b.row);
          b.done();
        } catch (err) {
          b.fail(err);
        }
      }
      return;
    }
    for (const b of batch) b.done();
  }

  private hold(sha: string): void {
    this.pending.set(sha, (this.pending.get(sha) ?? 0) + 1);
  }

  private release(sha: string): void {
    const n = (this.pending.get(sha) ?? 1) - 1;
    if (n <= 0) this.pending.delete(sha);
    else this.pending.set(sha, n);
  }

  /** temp file → write → fsync → rename → fsync dir: the final path only ever holds complete bytes. */
  private async writeBlob(path: string, bytes: Buffer): Promise<void> {
    const existing = await stat(path).catch(() => null);
    if (existing?.isFile() && existing.size === bytes.length) return;
    const dir = dirname(path);
    const created = await mkdir(dir, { recursive: true });
    const tmp = join(this.tmpDir, `${randomUUID()}.part`);
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fsyncDir(dir);
    if (created) await fsyncDir(dirname(dir));
  }

  /** Leftovers of a crash (or an interrupted upload); recent ones may belong to a request in flight. */
  private removeStaleTemps(): void {
    const now = Date.now();
    for (const name of readdirSync(this.tmpDir)) {
      const p = join(this.tmpDir, name);
      try {
        if (now - statSync(p).mtimeMs > STALE_TEMP_MS) unlinkSync(p);
      } catch {
        // Already gone or not ours to remove: neither matters.
      }
    }
  }
}

function migrate(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  db.transaction(() => {
    const current =
      (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new HematoError(
        `The case database was written by a newer HematoVision (schema ${current}, this one knows ${SCHEMA_VERSION}); ` +
          'upgrade HematoVision instead of opening it with this version.',
        'database_too_new',
        500,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    }
  }).immediate();
}

function whereClause(filter: CaseFilter): { where: string; params: Record<string, unknown> } {
  const conds: string[] = [];
  const params: Record<string, unknown> = {};
  if (filter.label !== undefined) {
    conds.push('c.label = @label');
    params.label = filter.label;
  }
  if (filter.reviewed !== undefined) {
    conds.push(`${filter.reviewed ? '' : 'NOT '}EXISTS (SELECT 1 FROM reviews WHERE case_id = c.id)`);
  }
  if (filter.file !== undefined) {
    // A literal substring: LIKE's wildcards in the query are escaped.
    conds.push(`c.file_name LIKE @file ESCAPE '\\'`); // LIKE ignores ASCII case
    params.file = `%${filter.file.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
  }
  if (filter.needsReview !== undefined) {
    // Rows stored before review reasons flagged the image by its first cell only: ask the cells too.
    const flagged = `(c.needs_review = 1 OR EXISTS (SELECT 1 FROM json_each(c.cells) WHERE json_extract(value, '$.needsReview') = 1))`;
    conds.push(filter.needsReview ? flagged : `NOT ${flagged}`);
  }
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function readBlob(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(path)) {
      throw new HematoError(`The stored ${what} is missing from the data folder.`, 'file_missing', 500);
    }
    throw err;
  }
}
