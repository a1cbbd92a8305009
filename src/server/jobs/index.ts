/** The job queue the server runs jobs through: pg-boss on PostgreSQL, its own runner on SQLite. */
import type { CaseStore } from '../store/index.js';
import { LocalJobQueue } from './local.js';
import { PgBossJobQueue } from './pg-boss.js';
import type { JobQueue } from './types.js';

export type { JobContext, JobHandler, JobKind, JobQueue } from './types.js';
export { LocalJobQueue, RESTARTED } from './local.js';
export { PgBossJobQueue } from './pg-boss.js';

export interface JobQueueOptions {
  /** postgres://…: pg-boss in that database; otherwise this process runs the store's jobs. */
  databaseUrl?: string;
  /** PostgreSQL: seconds between pg-boss's looks for jobs held by dead replicas (default 30). */
  superviseSeconds?: number;
  /** Seconds between an idle runner's looks for a job (default 2; SQLite 1). */
  pollSeconds?: number;
}

export function createJobQueue(store: CaseStore, options: JobQueueOptions): JobQueue {
  if (options.databaseUrl)
    return new PgBossJobQueue(store, {
      url: options.databaseUrl,
      superviseSeconds: options.superviseSeconds,
      pollSeconds: options.pollSeconds,
    });
  return new LocalJobQueue(store, (options.pollSeconds ?? 1) * 1000);
}
