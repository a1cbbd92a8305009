/**
 * Job rows and model versions in SQLite (migration 7): the same contract as postgres-jobs.ts, and the same row
 * shapes (job-rows.ts).
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { modelValues, rowToJob, rowToModel, type JobRecord, type ModelRecord } from './job-rows.js';
import type { JobOutcome, JobRow, JobRows, ModelRows, ModelVersion } from './types.js';

const now = () => new Date().toISOString();

const CLAIM = `UPDATE jobs SET state = 'running', owner = @owner, attempts = attempts + 1,
    started_at = coalesce(started_at, @now), updated_at = @now
  WHERE id = @id AND state IN ('queued', 'running') RETURNING *`;

export class SqliteJobRows implements JobRows {
  constructor(private readonly db: Database.Database) {}

  async create(kind: string, input: unknown): Promise<JobRow> {
    const t = now();
    const row = this.db
      .prepare(
        `INSERT INTO jobs (id, kind, state, input, created_at, updated_at)
         VALUES (?, ?, 'queued', ?, ?, ?) RETURNING *`,
      )
      .get(randomUUID(), kind, JSON.stringify(input ?? null), t, t) as JobRecord;
    return rowToJob(row);
  }

  async get(id: string): Promise<JobRow | undefined> {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRecord | undefined;
    return row && rowToJob(row);
  }

  async list(filter: { kind?: string; unfinished?: boolean; limit: number }): Promise<JobRow[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM jobs WHERE (@kind IS NULL OR kind = @kind)
           AND (@unfinished = 0 OR state IN ('queued', 'running'))
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      )
      .all({
        kind: filter.kind ?? null,
        unfinished: filter.unfinished ? 1 : 0,
        limit: filter.limit,
      }) as JobRecord[];
    return rows.map(rowToJob);
  }

  async claim(id: string, owner: string): Promise<JobRow | undefined> {
    const row = this.db.prepare(CLAIM).get({ id, owner, now: now() }) as JobRecord | undefined;
    return row && rowToJob(row);
  }

  async claimNext(kinds: string[], owner: string): Promise<JobRow | undefined> {
    if (kinds.length === 0) return undefined;
    // One process per data folder (the data lock): a transaction is enough to claim once.
    return this.db
      .transaction(() => {
        const next = this.db
          .prepare(
            `SELECT id FROM jobs WHERE state = 'queued' AND kind IN (${kinds.map(() => '?').join(',')})
             ORDER BY created_at, rowid LIMIT 1`,
          )
          .get(...kinds) as { id: string } | undefined;
        if (!next) return undefined;
        const row = this.db.prepare(CLAIM).get({ id: next.id, owner, now: now() }) as JobRecord;
        return rowToJob(row);
      })
      .immediate();
  }

  async progress(id: string, owner: string, progress: number, stage: string | null): Promise<boolean> {
    const r = this.db
      .prepare(
        `UPDATE jobs SET progress = ?, stage = ?, updated_at = ?
         WHERE id = ? AND owner = ? AND state = 'running'`,
      )
      .run(progress, stage, now(), id, owner);
    return r.changes === 1;
  }

  async finish(id: string, owner: string, outcome: JobOutcome): Promise<boolean> {
    const t = now();
    const r = this.db
      .prepare(
        `UPDATE jobs SET state = ?, result = ?, error = ?, progress = CASE WHEN ? = 'succeeded' THEN 1
           ELSE progress END, updated_at = ?, finished_at = ?
         WHERE id = ? AND owner = ? AND state = 'running'`,
      )
      .run(
        outcome.state,
        outcome.state === 'succeeded' ? JSON.stringify(outcome.result ?? null) : null,
        outcome.state === 'failed' ? outcome.error : null,
        outcome.state,
        t,
        t,
        id,
        owner,
      );
    return r.changes === 1;
  }

  async failRunning(error: string, owner?: string): Promise<number> {
    const t = now();
    return this.db
      .prepare(
        `UPDATE jobs SET state = 'failed', error = ?, updated_at = ?, finished_at = ?
         WHERE state = 'running' AND (? IS NULL OR owner = ?)`,
      )
      .run(error, t, t, owner ?? null, owner ?? null).changes;
  }

  async failUnfinished(id: string, error: string): Promise<boolean> {
    const t = now();
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = 'failed', error = ?, updated_at = ?, finished_at = ?
           WHERE id = ? AND state IN ('queued', 'running')`,
        )
        .run(error, t, t, id).changes === 1
    );
  }
}

const MODEL_COLUMNS = 'version, sha256, name, card, source, job_id, created_at';

export class SqliteModelRows implements ModelRows {
  constructor(private readonly db: Database.Database) {}

  async add(input: Parameters<ModelRows['add']>[0]): Promise<ModelVersion> {
    return this.db
      .transaction(() => {
        const existing = this.db
          .prepare(`SELECT ${MODEL_COLUMNS} FROM model_versions WHERE sha256 = ?`)
          .get(input.sha256) as ModelRecord | undefined;
        if (existing) return rowToModel(existing);
        const row = this.db
          .prepare(
            `INSERT INTO model_versions (version, sha256, name, card, onnx, source, job_id, created_at)
             VALUES ((SELECT coalesce(max(version), 0) + 1 FROM model_versions), ?, ?, ?, ?, ?, ?, ?)
             RETURNING ${MODEL_COLUMNS}`,
          )
          .get(...modelValues(input), now()) as ModelRecord;
        return rowToModel(row);
      })
      .immediate();
  }

  async list(): Promise<ModelVersion[]> {
    const rows = this.db
      .prepare(`SELECT ${MODEL_COLUMNS} FROM model_versions ORDER BY version`)
      .all() as ModelRecord[];
    return rows.map(rowToModel);
  }

  async get(version: number): Promise<ModelVersion | undefined> {
    const row = this.db
      .prepare(`SELECT ${MODEL_COLUMNS} FROM model_versions WHERE version = ?`)
      .get(version) as ModelRecord | undefined;
    return row && rowToModel(row);
  }

  async readOnnx(version: number): Promise<Buffer | undefined> {
    const row = this.db.prepare('SELECT onnx FROM model_versions WHERE version = ?').get(version) as
      { onnx: Buffer } | undefined;
    return row?.onnx;
  }

  async activate(version: number): Promise<void> {
    this.db
      .prepare('INSERT INTO model_activations (version, activated_at) VALUES (?, ?)')
      .run(version, now());
  }

  async activations(limit: number): Promise<{ version: number; activatedAt: string }[]> {
    return this.db
      .prepare('SELECT version, activated_at AS activatedAt FROM model_activations ORDER BY id DESC LIMIT ?')
      .all(limit) as { version: number; activatedAt: string }[];
  }
}
