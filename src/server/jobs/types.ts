/**
 * Jobs any replica can run: one interface (JobQueue), two ways of delivering them. On PostgreSQL pg-boss
 * hands a job to one replica and, when that replica dies, hands it to another once it expires (pg-boss.ts);
 * on SQLite (one process) the server's own runner claims the rows (local.ts). Either way the job row in the
 * store is what the API shows: state, progress, result, error.
 */
import type { JobRow } from '../store/index.js';

export interface JobContext {
  job: JobRow;
  /** Records progress (0 to 1) and what it is doing; also the heartbeat the API's "updated" time shows. */
  progress(fraction: number, stage: string): Promise<void>;
  /** Aborted when the server stops or another runner took the job over: stop the heavy work. */
  signal: AbortSignal;
}

/** Does the job's work (the heavy part off the event loop: a worker thread) and returns its result. */
export type JobHandler = (input: unknown, ctx: JobContext) => Promise<unknown>;

export interface JobKind {
  handler: JobHandler;
  /**
   * Longest run (seconds): on PostgreSQL a job still running after this is taken as held by a dead replica
   * and is given to another (pg-boss's expiry; it has no heartbeat), so set it above the slowest honest run.
   */
  expireSeconds: number;
  /** Attempts after the first when a runner dies or the job expires (PostgreSQL). Default 2. */
  retries?: number;
}

export interface JobQueue {
  /** This runner's name (the job row's owner while it runs). */
  readonly owner: string;
  /** Where jobs run: 'postgres' (pg-boss, any replica) or 'local' (this process). */
  readonly kind: 'postgres' | 'local';
  /** Adds a kind of job this runner can run; before start(). */
  register(kind: string, spec: JobKind): void;
  /** Stores a queued job and hands it to a runner; resolves with its row at once. */
  submit(kind: string, input: unknown): Promise<JobRow>;
  /** Starts taking jobs. */
  start(): Promise<void>;
  /** Stops taking jobs; a job running here is given up (local: failed; PostgreSQL: left for another replica). */
  close(): Promise<void>;
}

/** The message a job fails with when its handler throws. */
export function failureMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message || 'The job failed without a message.';
}
