/**
 * Job rows and model versions in PostgreSQL (migration 7): the same contract as sqlite-jobs.ts. Times are read
 * as SQLite stores them (isoText), json columns as their text, so job-rows.ts maps both stores' rows.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { modelValues, rowToJob, rowToModel, type JobRecord, type ModelRecord } from './job-rows.js';
import { isoText } from './postgres-rows.js';
import { inTransaction } from './postgres-transaction.js';
import type { JobOutcome, JobRow, JobRows, ModelRows, ModelVersion } from './types.js';

const JOB_COLUMNS = `id, kind, state, progress, stage, input::text AS input, result::text AS result, error,
  attempts, owner, ${isoText('created_at')} AS created_at, ${isoText('started_at')} AS started_at,
  ${isoText('updated_at')} AS updated_at, ${isoText('finished_at')} AS finished_at`;

const CLAIM = `UPDATE jobs SET state = 'running', owner = $2, attempts = attempts + 1,
    started_at = coalesce(started_at, now()), updated_at = now()
  WHERE id = $1 AND state IN ('queued', 'running') RETURNING ${JOB_COLUMNS}`;

export class PostgresJobRows implements JobRows {
  constructor(private readonly pool: pg.Pool) {}

  async create(kind: string, input: unknown): Promise<JobRow> {
    const { rows } = await this.pool.query<JobRecord>(
      `INSERT INTO jobs (id, kind, state, input, created_at, updated_at)
       VALUES ($1, $2, 'queued', $3, clock_timestamp(), clock_timestamp()) RETURNING ${JOB_COLUMNS}`,
      [randomUUID(), kind, JSON.stringify(input ?? null)],
    );
    return rowToJob(rows[0]);
  }

  async get(id: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRecord>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
    return rows[0] && rowToJob(rows[0]);
  }

  async list(filter: { kind?: string; unfinished?: boolean; limit: number }): Promise<JobRow[]> {
    const { rows } = await this.pool.query<JobRecord>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR kind = $1)
         AND (NOT $3::boolean OR state IN ('queued', 'running'))
       ORDER BY jobs.created_at DESC, id DESC LIMIT $2`,
      [filter.kind ?? null, filter.limit, filter.unfinished === true],
    );
    return rows.map(rowToJob);
  }

  async claim(id: string, owner: string): Promise<JobRow | undefined> {
    const { rows } = await this.pool.query<JobRecord>(CLAIM, [id, owner]);
    return rows[0] && rowToJob(rows[0]);
  }

  async claimNext(kinds: string[], owner: string): Promise<JobRow | undefined> {
    // SKIP LOCKED: two runners asking at once take different jobs instead of waiting on each other.
    const { rows } = await this.pool.query<JobRecord>(
      `UPDATE jobs SET state = 'running', owner = $2, attempts = attempts + 1,
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND kind = ANY($1)
                   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING ${JOB_COLUMNS}`,
      [kinds, owner],
    );
    return rows[0] && rowToJob(rows[0]);
  }

  async progress(id: string, owner: string, progress: number, stage: string | null): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET progress = $3, stage = $4, updated_at = now()
       WHERE id = $1 AND owner = $2 AND state = 'running'`,
      [id, owner, progress, stage],
    );
    return rowCount === 1;
  }

  async finish(id: string, owner: string, outcome: JobOutcome): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET state = $3, result = $4, error = $5,
         progress = CASE WHEN $3 = 'succeeded' THEN 1 ELSE progress END,
         updated_at = now(), finished_at = now()
       WHERE id = $1 AND owner = $2 AND state = 'running'`,
      [
        id,
        owner,
        outcome.state,
        outcome.state === 'succeeded' ? JSON.stringify(outcome.result ?? null) : null,
        outcome.state === 'failed' ? outcome.error : null,
      ],
    );
    return rowCount === 1;
  }

  async failRunning(error: string, owner?: string): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET state = 'failed', error = $1, updated_at = now(), finished_at = now()
       WHERE state = 'running' AND ($2::text IS NULL OR owner = $2)`,
      [error, owner ?? null],
    );
    return rowCount ?? 0;
  }

  async failUnfinished(id: string, error: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE jobs SET state = 'failed', error = $2, updated_at = now(), finished_at = now()
       WHERE id = $1 AND state IN ('queued', 'running')`,
      [id, error],
    );
    return rowCount === 1;
  }
}

const MODEL_COLUMNS = `version, sha256, name, card::text AS card, source, job_id,
  ${isoText('created_at')} AS created_at`;

export class PostgresModelRows implements ModelRows {
  constructor(private readonly pool: pg.Pool) {}

  async add(input: Parameters<ModelRows['add']>[0]): Promise<ModelVersion> {
    return inTransaction(this.pool, async (client) => {
      // Numbers are handed out one at a time: two replicas adding at once get 2 and 3, not a conflict.
      await client.query('LOCK TABLE model_versions IN SHARE ROW EXCLUSIVE MODE');
      const found = await client.query<ModelRecord>(
        `SELECT ${MODEL_COLUMNS} FROM model_versions WHERE sha256 = $1`,
        [input.sha256],
      );
      const { rows } = found.rows[0]
        ? found
        : await client.query<ModelRecord>(
            `INSERT INTO model_versions (version, sha256, name, card, onnx, source, job_id, created_at)
             VALUES ((SELECT coalesce(max(version), 0) + 1 FROM model_versions), $1, $2, $3, $4, $5, $6,
               now())
             RETURNING ${MODEL_COLUMNS}`,
            modelValues(input),
          );
      return rowToModel(rows[0]);
    });
  }

  async list(): Promise<ModelVersion[]> {
    const { rows } = await this.pool.query<ModelRecord>(
      `SELECT ${MODEL_COLUMNS} FROM model_versions ORDER BY version`,
    );
    return rows.map(rowToModel);
  }

  async get(version: number): Promise<ModelVersion | undefined> {
    const { rows } = await this.pool.query<ModelRecord>(
      `SELECT ${MODEL_COLUMNS} FROM model_versions WHERE version = $1`,
      [version],
    );
    return rows[0] && rowToModel(rows[0]);
  }

  async readOnnx(version: number): Promise<Buffer | undefined> {
    const { rows } = await this.pool.query<{ onnx: Buffer }>(
      'SELECT onnx FROM model_versions WHERE version = $1',
      [version],
    );
    return rows[0]?.onnx;
  }

  async activate(version: number): Promise<void> {
    await this.pool.query(
      'INSERT INTO model_activations (version, activated_at) VALUES ($1, clock_timestamp())',
      [version],
    );
  }

  async activations(limit: number): Promise<{ version: number; activatedAt: string }[]> {
    const { rows } = await this.pool.query<{ version: number; activatedAt: string }>(
      `SELECT version, ${isoText('activated_at')} AS "activatedAt" FROM model_activations
       ORDER BY id DESC LIMIT $1`,
      [limit],
    );
    return rows;
  }
}
