import type Database from 'better-sqlite3';
import { HematoError } from '../../errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Append only: never edit or remove a shipped migration, only add the next number, so that opening an
 * existing database never loses data.
 */
export const MIGRATIONS: Migration[] = [
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

/** Applies the pending migrations in one transaction; refuses a database of a newer schema. */
export function migrate(db: Database.Database): void {
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

/**
 * Refuses a damaged database before anything is read from or written into it (a corrupt file would otherwise
 * start, answer health checks and take new cases into it). `quick_check` reads every page: O(size), once.
 */
export function checkIntegrity(db: Database.Database, path: string): void {
  let problems: string[];
  try {
    problems = (db.pragma('quick_check(5)') as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (err) {
    problems = [err instanceof Error ? err.message : String(err)];
  }
  if (problems.length === 1 && problems[0] === 'ok') return;
  throw new HematoError(
    `The case database ${path} is damaged (${problems.join('; ').slice(0, 300)}); the server will not ` +
      'start on it. Restore hematovision.db from a backup of the data folder, or move it aside to start ' +
      'with an empty one (its images stay in images/).',
    'corrupt_database',
    500,
  );
}
