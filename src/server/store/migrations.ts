import type Database from 'better-sqlite3';
import { HematoError } from '../../errors.js';

/**
 * One schema step, written once per database: this list owns the versions and names, so SQLite and PostgreSQL
 * go through the same steps and record the same history. PostgreSQL types are the native ones (timestamptz,
 * boolean, json, bytea); the stores read both into the same rows.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

/**
 * Append only: never edit or remove a shipped migration, only add the next number, so that opening an
 * existing database never loses data.
 */
export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'cases and review history',
    sqlite: `
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
    // Image and heat-map bytes live in the database itself (blobs), content-addressed, so every replica reads
    // them. The foreign keys are what keeps bytes a case uses: a blob cannot be deleted while a case (even
    // one still being inserted by another transaction) references it. json, not jsonb: the text is kept as
    // written (key order included), and nothing is indexed inside it. seq orders cases stored in the same
    // millisecond, as SQLite's rowid does.
    postgres: `
      CREATE TABLE blobs (
        sha256 text PRIMARY KEY,
        bytes  bytea NOT NULL
      );
      -- JPEG and PNG bytes are compressed already: stored out of line as they are, not compressed again.
      ALTER TABLE blobs ALTER COLUMN bytes SET STORAGE EXTERNAL;
      CREATE TABLE cases (
        id             text PRIMARY KEY,
        seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        created_at     timestamptz NOT NULL,
        file_name      text NOT NULL,
        image_sha256   text NOT NULL REFERENCES blobs (sha256),
        image_type     text NOT NULL,
        image_bytes    integer NOT NULL,
        width          integer NOT NULL,
        height         integer NOT NULL,
        heatmap_sha256 text REFERENCES blobs (sha256),
        model_name     text NOT NULL,
        model_version  text NOT NULL,
        label          text,
        confidence     double precision NOT NULL,
        needs_review   boolean NOT NULL,
        probabilities  json NOT NULL,
        cells          json NOT NULL,
        message        text
      );
      CREATE INDEX cases_created ON cases (created_at DESC, seq DESC);
      CREATE INDEX cases_label ON cases (label);
      CREATE INDEX cases_image ON cases (image_sha256);
      CREATE INDEX cases_heatmap ON cases (heatmap_sha256);
      CREATE TABLE reviews (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_id     text NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        label       text NOT NULL,
        reviewer    text NOT NULL,
        note        text NOT NULL DEFAULT '',
        reviewed_at timestamptz NOT NULL
      );
      CREATE INDEX reviews_case ON reviews (case_id, id);
    `,
  },
  {
    version: 2,
    // Heat maps are rendered on first request from these maps instead of at predict time.
    name: 'heat-map data for rendering on demand',
    sqlite: `ALTER TABLE cases ADD COLUMN heatmap_data TEXT;`,
    postgres: `ALTER TABLE cases ADD COLUMN heatmap_data json;`,
  },
  {
    version: 3,
    // Cases analysed before it were all one view per cell.
    name: 'test-time augmentation flag per case',
    sqlite: `ALTER TABLE cases ADD COLUMN tta INTEGER NOT NULL DEFAULT 0 CHECK (tta IN (0, 1));`,
    postgres: `ALTER TABLE cases ADD COLUMN tta boolean NOT NULL DEFAULT false;`,
  },
  {
    version: 4,
    // A JSON array of review reasons; NULL for cases stored before, whose reasons are derived on read.
    name: 'review reasons per case',
    sqlite: `ALTER TABLE cases ADD COLUMN review_reasons TEXT;`,
    postgres: `ALTER TABLE cases ADD COLUMN review_reasons json;`,
  },
  {
    version: 5,
    // A specimen is the lab's unit of work (one slide); its id is the lab's accession text, unique whatever
    // its case. `version` grows with every change to the specimen, its cases or their reviews, so a
    // sign-off knows whether its report is still current. Reviews older than this are image-level: they
    // count as the first cell's (cell_index 0).
    name: 'specimens, per-cell reviews and signed report revisions',
    sqlite: `
      CREATE TABLE specimens (
        id           TEXT PRIMARY KEY COLLATE NOCASE,
        source       TEXT,
        note         TEXT,
        target_count INTEGER NOT NULL DEFAULT 100 CHECK (target_count IN (100, 200)),
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        version      INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX specimens_created ON specimens (created_at DESC);
      ALTER TABLE cases ADD COLUMN specimen_id TEXT REFERENCES specimens (id);
      CREATE INDEX cases_specimen ON cases (specimen_id, created_at);
      ALTER TABLE reviews ADD COLUMN cell_index INTEGER NOT NULL DEFAULT 0 CHECK (cell_index >= 0);
      CREATE INDEX reviews_cell ON reviews (case_id, cell_index, id);
      CREATE TABLE specimen_signoffs (
        specimen_id      TEXT NOT NULL REFERENCES specimens (id),
        revision         INTEGER NOT NULL CHECK (revision >= 1),
        reviewer         TEXT NOT NULL,
        signed_at        TEXT NOT NULL,
        specimen_version INTEGER NOT NULL,
        report_pdf       BLOB NOT NULL,
        PRIMARY KEY (specimen_id, revision)
      ) STRICT;
    `,
    // The id is kept as typed; a unique index on lower(id) makes it unique whatever its case (SQLite's
    // COLLATE NOCASE), and the store looks specimens up by lower(id). seq orders specimens created in the
    // same millisecond, as SQLite's rowid does.
    postgres: `
      CREATE TABLE specimens (
        id           text PRIMARY KEY,
        seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        source       text,
        note         text,
        target_count integer NOT NULL DEFAULT 100 CHECK (target_count IN (100, 200)),
        created_at   timestamptz NOT NULL,
        updated_at   timestamptz NOT NULL,
        version      integer NOT NULL DEFAULT 0
      );
      CREATE UNIQUE INDEX specimens_id_any_case ON specimens (lower(id));
      CREATE INDEX specimens_created ON specimens (created_at DESC);
      ALTER TABLE cases ADD COLUMN specimen_id text REFERENCES specimens (id);
      CREATE INDEX cases_specimen ON cases (specimen_id, created_at);
      ALTER TABLE reviews ADD COLUMN cell_index integer NOT NULL DEFAULT 0 CHECK (cell_index >= 0);
      CREATE INDEX reviews_cell ON reviews (case_id, cell_index, id);
      CREATE TABLE specimen_signoffs (
        specimen_id      text NOT NULL REFERENCES specimens (id),
        revision         integer NOT NULL CHECK (revision >= 1),
        reviewer         text NOT NULL,
        signed_at        timestamptz NOT NULL,
        specimen_version integer NOT NULL,
        report_pdf       bytea NOT NULL,
        PRIMARY KEY (specimen_id, revision)
      );
      -- A PDF is compressed already: stored out of line as it is.
      ALTER TABLE specimen_signoffs ALTER COLUMN report_pdf SET STORAGE EXTERNAL;
    `,
  },
  {
    version: 6,
    // Accounts (issue 15): users with argon2 password hashes, sessions and API tokens stored as sha256 of
    // their random secret (a stolen database gives no usable secret), an append-only audit trail (triggers
    // refuse UPDATE and DELETE), the clinic a case or specimen belongs to (clinic accounts see only theirs;
    // NULL: uploaded without one) and soft delete (deleted_at set: hidden from lists, recoverable).
    name: 'accounts, sessions, API tokens, audit trail, clinics and soft delete',
    sqlite: `
      CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name  TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('clinic', 'reviewer', 'admin')),
        clinic        TEXT,
        password_hash TEXT,
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at    TEXT NOT NULL
      ) STRICT;
      CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users (id),
        created_at   TEXT NOT NULL,
        expires_at   TEXT NOT NULL
      ) STRICT;
      CREATE INDEX sessions_expiry ON sessions (expires_at);
      CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        user_id      TEXT NOT NULL REFERENCES users (id),
        name         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
      ) STRICT;
      CREATE TABLE audit_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          TEXT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id   TEXT NOT NULL,
        detail      TEXT NOT NULL DEFAULT ''
      ) STRICT;
      CREATE INDEX audit_target ON audit_log (target_type, target_id, id);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
      ALTER TABLE cases ADD COLUMN clinic TEXT;
      ALTER TABLE cases ADD COLUMN deleted_at TEXT;
      ALTER TABLE cases ADD COLUMN deleted_by TEXT;
      ALTER TABLE cases ADD COLUMN delete_reason TEXT;
      CREATE INDEX cases_clinic ON cases (clinic, created_at);
      ALTER TABLE specimens ADD COLUMN clinic TEXT;
    `,
    postgres: `
      CREATE TABLE users (
        id            text PRIMARY KEY,
        name          text NOT NULL,
        display_name  text NOT NULL,
        role          text NOT NULL CHECK (role IN ('clinic', 'reviewer', 'admin')),
        clinic        text,
        password_hash text,
        disabled      boolean NOT NULL DEFAULT false,
        created_at    timestamptz NOT NULL
      );
      CREATE UNIQUE INDEX users_name_any_case ON users (lower(name));
      CREATE TABLE sessions (
        token_sha256 text PRIMARY KEY,
        user_id      text NOT NULL REFERENCES users (id),
        created_at   timestamptz NOT NULL,
        expires_at   timestamptz NOT NULL
      );
      CREATE INDEX sessions_expiry ON sessions (expires_at);
      CREATE TABLE api_tokens (
        id           text PRIMARY KEY,
        token_sha256 text NOT NULL UNIQUE,
        user_id      text NOT NULL REFERENCES users (id),
        name         text NOT NULL,
        created_at   timestamptz NOT NULL,
        revoked_at   timestamptz
      );
      CREATE TABLE audit_log (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          timestamptz NOT NULL,
        actor       text NOT NULL,
        action      text NOT NULL,
        target_type text NOT NULL,
        target_id   text NOT NULL,
        detail      text NOT NULL DEFAULT ''
      );
      CREATE INDEX audit_target ON audit_log (target_type, target_id, id);
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $fn$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $fn$;
      CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
      ALTER TABLE cases ADD COLUMN clinic text;
      ALTER TABLE cases ADD COLUMN deleted_at timestamptz;
      ALTER TABLE cases ADD COLUMN deleted_by text;
      ALTER TABLE cases ADD COLUMN delete_reason text;
      CREATE INDEX cases_clinic ON cases (clinic, created_at);
      ALTER TABLE specimens ADD COLUMN clinic text;
    `,
  },
  {
    version: 7,
    // Jobs (adaptations, …) any replica can run: the row is what the API shows; on PostgreSQL pg-boss carries
    // the delivery and the retry after a replica's death, on SQLite the server's own runner claims rows.
    // Model versions keep their bytes in the database so every replica can load the one made active; the
    // activations are a log, so a roll back knows what was active before. Cases made before this have no
    // model sha256 (NULL).
    name: 'jobs, model versions and the model sha256 per case',
    sqlite: `
      CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
        progress    REAL NOT NULL DEFAULT 0,
        stage       TEXT,
        input       TEXT NOT NULL,
        result      TEXT,
        error       TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        owner       TEXT,
        created_at  TEXT NOT NULL,
        started_at  TEXT,
        updated_at  TEXT NOT NULL,
        finished_at TEXT
      ) STRICT;
      CREATE INDEX jobs_state ON jobs (state, created_at);
      CREATE INDEX jobs_kind ON jobs (kind, created_at DESC);
      CREATE TABLE model_versions (
        version    INTEGER PRIMARY KEY,
        sha256     TEXT NOT NULL UNIQUE,
        name       TEXT NOT NULL,
        card       TEXT NOT NULL,
        onnx       BLOB NOT NULL,
        source     TEXT NOT NULL,
        job_id     TEXT,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE model_activations (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        version      INTEGER NOT NULL REFERENCES model_versions (version),
        activated_at TEXT NOT NULL
      ) STRICT;
      ALTER TABLE cases ADD COLUMN model_sha256 TEXT;
    `,
    postgres: `
      CREATE TABLE jobs (
        id          text PRIMARY KEY,
        kind        text NOT NULL,
        state       text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
        progress    double precision NOT NULL DEFAULT 0,
        stage       text,
        input       json NOT NULL,
        result      json,
        error       text,
        attempts    integer NOT NULL DEFAULT 0,
        owner       text,
        created_at  timestamptz NOT NULL,
        started_at  timestamptz,
        updated_at  timestamptz NOT NULL,
        finished_at timestamptz
      );
      CREATE INDEX jobs_state ON jobs (state, created_at);
      CREATE INDEX jobs_kind ON jobs (kind, created_at DESC);
      CREATE TABLE model_versions (
        version    integer PRIMARY KEY,
        sha256     text NOT NULL UNIQUE,
        name       text NOT NULL,
        card       json NOT NULL,
        onnx       bytea NOT NULL,
        source     text NOT NULL,
        job_id     text,
        created_at timestamptz NOT NULL
      );
      ALTER TABLE model_versions ALTER COLUMN onnx SET STORAGE EXTERNAL;
      CREATE TABLE model_activations (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        version      integer NOT NULL REFERENCES model_versions (version),
        activated_at timestamptz NOT NULL
      );
      ALTER TABLE cases ADD COLUMN model_sha256 text;
    `,
  },
  {
    version: 8,
    // Sign-ins (and their failures) are audited with the client address they came from, so an admin sees
    // who tried which account from where; entries made before this, and the CLI's, have none (NULL).
    name: 'client address on audit entries',
    sqlite: `ALTER TABLE audit_log ADD COLUMN ip TEXT;`,
    postgres: `ALTER TABLE audit_log ADD COLUMN ip text;`,
  },
  {
    version: 9,
    // A specimen can be deleted as a case can (issue 14): softly, with who and why, restorable. Its images
    // keep pointing at it, so a restore brings the whole slide back.
    name: 'soft delete of specimens',
    sqlite: `
      ALTER TABLE specimens ADD COLUMN deleted_at TEXT;
      ALTER TABLE specimens ADD COLUMN deleted_by TEXT;
      ALTER TABLE specimens ADD COLUMN delete_reason TEXT;
    `,
    postgres: `
      ALTER TABLE specimens ADD COLUMN deleted_at timestamptz, ADD COLUMN deleted_by text,
        ADD COLUMN delete_reason text;
    `,
  },
  {
    version: 10,
    // Rate-limit counters shared by every replica (server/shared-rate-limits.ts), so N replicas allow each
    // limit once, not N times. SQLite means one process, whose in-memory counters are already the only ones:
    // nothing to share, no table. UNLOGGED on PostgreSQL: a counter is worth no WAL write per request, and
    // losing them in a database crash only restarts the windows.
    name: 'shared rate-limit counters',
    sqlite: `-- none: one process, counters in its memory`,
    postgres: `
      CREATE UNLOGGED TABLE rate_limits (
        key        text PRIMARY KEY,
        count      integer NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);
    `,
  },
  {
    version: 11,
    // Export files are swept with their jobs (export-retention.ts): each export job names the file it stored,
    // recorded in the same step that stores it, so a sweep never removes a file a job still needs, also one a
    // job is storing right now (identical bytes of another export). On PostgreSQL the reference is a foreign
    // key to blobs: a delete of bytes any job (committed or not) references is refused. On SQLite the files
    // are in the data folder's exports/ and one process orders the writes. Jobs that finished before this
    // step get their file's sha256 from their result.
    name: 'export files referenced by their jobs',
    sqlite: `
      ALTER TABLE jobs ADD COLUMN file_sha256 TEXT;
      UPDATE jobs SET file_sha256 = json_extract(result, '$.sha256')
        WHERE kind LIKE 'export-%' AND state = 'succeeded';
      CREATE INDEX jobs_file ON jobs (file_sha256) WHERE file_sha256 IS NOT NULL;
      CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    `,
    postgres: `
      ALTER TABLE jobs ADD COLUMN file_sha256 text REFERENCES blobs (sha256);
      UPDATE jobs SET file_sha256 = result->>'sha256'
        WHERE kind LIKE 'export-%' AND state = 'succeeded'
          AND EXISTS (SELECT 1 FROM blobs WHERE sha256 = jobs.result->>'sha256');
      CREATE INDEX jobs_file ON jobs (file_sha256) WHERE file_sha256 IS NOT NULL;
      CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** A database of a newer schema is left untouched: this version would not know what its columns mean. */
export function databaseTooNew(current: number): HematoError {
  return new HematoError(
    `The case database was written by a newer HematoVision (schema ${current}, this one knows ${SCHEMA_VERSION}); ` +
      'upgrade HematoVision instead of opening it with this version.',
    'database_too_new',
    500,
  );
}

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
    if (current > SCHEMA_VERSION) throw databaseTooNew(current);
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sqlite);
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
