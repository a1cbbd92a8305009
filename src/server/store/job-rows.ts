/**
 * Job and model-version rows as both stores select them (sqlite-jobs.ts, postgres-jobs.ts): ISO-8601 text
 * times and JSON as text, so one function per table owns turning a row into what the server sees (and
 * the values of a new row).
 */
import { HematoError } from '../../errors.js';
import type { JobRow, JobState, ModelRows, ModelVersion } from './types.js';

/** A `jobs` row. */
export interface JobRecord {
  id: string;
  kind: string;
  state: JobState;
  progress: number;
  stage: string | null;
  input: string;
  result: string | null;
  error: string | null;
  attempts: number;
  owner: string | null;
  created_at: string;
  started_at: string | null;
  updated_at: string;
  finished_at: string | null;
}

export function rowToJob(r: JobRecord): JobRow {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    progress: r.progress,
    stage: r.stage,
    input: JSON.parse(r.input) as unknown,
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    error: r.error,
    attempts: r.attempts,
    owner: r.owner,
    createdAt: r.created_at,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

/** putExportFile for a job that is not running under this runner (taken over, finished, or never was). */
export function notHeld(jobId: string, owner: string): HematoError {
  return new HematoError(
    `Job ${JSON.stringify(jobId)} is not running under ${JSON.stringify(owner)}: its file is not stored.`,
    'job_not_held',
    409,
  );
}

/** A `model_versions` row without its ONNX bytes (read apart, only when a model is loaded). */
export interface ModelRecord {
  version: number;
  sha256: string;
  name: string;
  card: string;
  source: string;
  job_id: string | null;
  created_at: string;
}

export function rowToModel(r: ModelRecord): ModelVersion {
  return {
    version: r.version,
    sha256: r.sha256,
    name: r.name,
    card: JSON.parse(r.card) as unknown,
    source: r.source,
    jobId: r.job_id,
    createdAt: r.created_at,
  };
}

/** A new `model_versions` row's values: sha256, name, card, onnx, source, job_id (each store adds its time). */
export function modelValues(input: Parameters<ModelRows['add']>[0]): unknown[] {
  return [
    input.sha256,
    input.name,
    JSON.stringify(input.card),
    input.onnx,
    input.source,
    input.jobId ?? null,
  ];
}
